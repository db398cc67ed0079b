/**
 * What the rule types share: the interface the engine drives them through, the per-entry scope
 * (field reads, the entry's event time, its exception and alert fields — each worked out at most
 * once per entry, and only when a rule needs it), the event clock, and how events, ids and
 * summaries are made.
 */
import { createHash } from 'node:crypto'
import type { Entry, FieldValue } from '../../agent/entry'
import { epochToMs, parseIsoLike } from '../../agent/parsers/time'
import { alertFields } from '../alert-fields'
import type { CompiledRule } from '../compiled'
import { compileField, fieldOf } from '../fields'
import { ExceptionHistory, fingerprintError, type ExceptionSignature } from '../fingerprint'
import type { AlertEvent, ExceptionInfo, Millis, Rule } from '../model'
import { redactValue } from '../redact'
import { KEY_SEPARATOR } from './window'

/**
 * A field the engine derives when a rule asks for it and the entry does not have it: the
 * exception fingerprint (rules/fingerprint.ts), for `new_value` on new exceptions and for
 * grouping by exception.
 */
export const FINGERPRINT_FIELD = 'error.fingerprint'

/** Bounds on the state one rule keeps (see the engine options). */
export interface RuntimeLimits {
  maxGroups: number
  maxPending: number
  maxSeen: number
}

/** A rule type's state machine, driven by the engine. */
export interface RuleRuntime {
  /** Replaced by setRules when the rule's definition changed only in what does not affect state. */
  compiled: CompiledRule
  /** Called for each entry the rule is a candidate for; pushes events to scope.out. */
  onEntry(scope: EntryScope): void
  /** Called with the event clock: windows closing, deadlines, flatlines, resolutions. */
  tick(clock: Millis, out: AlertEvent[]): void
  exportState(): unknown
  importState(state: unknown): void
  /** Group keys, pending keys or seen values held. */
  size(): number
  /** Keys that did not fit the bounds (folded into the overflow group, or dropped). */
  overflowed(): number
}

/**
 * The time alerts and windows run on.
 *
 * An entry's time is its own `@timestamp` when that lies between `now - maxLag` and `now`, else
 * the arrival time `now`. Why the entry's own time: an entry read late (a slow flush, a backlog
 * after a restart) then counts in the window it belongs to, so a backlog read in seconds is not
 * mistaken for a burst, and a replay gives the same windows. Why only within `maxLag` (30
 * minutes unless configured) and never in the future: a timestamp hours off is a wrong time zone
 * (zones are whole hours apart) or a bad clock, not a late read, and believing it would put every
 * entry of that file outside every window, for good. The price: after a downtime longer than
 * `maxLag`, the older part of the backlog counts at arrival.
 *
 * The clock that ticks (deadlines, windows closing) follows the entries too: it is the newest
 * event time of the entries rules matched, advanced from there at twice the wall time elapsed
 * since that entry was seen (never past `now`, never backwards). While live it is `now`; while a
 * backlog is read (far faster than twice real time) it is the backlog's time, so a deadline does
 * not fire before the entries that would have met it are read; once no more old entries come, it
 * catches up with `now` in as long as it lagged. After importState it resumes from the saved
 * event time rather than jumping over the downtime.
 */
/** How much faster than the wall clock the event clock runs when no newer entry moves it. */
const CATCH_UP = 2

export class EventClock {
  private watermark = -Infinity
  /** The wall time at which the watermark was set; NaN right after a restore. */
  private seenAt = 0
  private last = -Infinity

  constructor(readonly useEntryTime: boolean, readonly maxLag: Millis) {}

  /** The event time of an entry whose `@timestamp` is `stamp` (NaN when it has none), seen at `now`. */
  entryTime(stamp: Millis, now: Millis): Millis {
    const t = this.useEntryTime && stamp >= now - this.maxLag && stamp <= now ? stamp : now
    if (Number.isNaN(this.seenAt)) this.seenAt = now
    if (t > this.watermark) {
      this.watermark = t
      this.seenAt = now
    }
    return t
  }

  /** The clock at wall time `now`. */
  at(now: Millis): Millis {
    if (Number.isNaN(this.seenAt)) this.seenAt = now
    const c = this.watermark === -Infinity ? now : Math.min(now, this.watermark + CATCH_UP * (now - this.seenAt))
    if (c > this.last) this.last = c
    return this.last
  }

  export(): { watermark: number | null; last: number | null } {
    return { watermark: Number.isFinite(this.watermark) ? this.watermark : null, last: Number.isFinite(this.last) ? this.last : null }
  }

  import(state: { watermark?: unknown; last?: unknown }): void {
    if (typeof state.watermark === 'number') this.watermark = state.watermark
    if (typeof state.last === 'number') this.last = state.last
    this.seenAt = NaN
  }
}

/** A field of an entry (see fieldOf) as a FieldValue (see fieldValue). */
function readField(entry: Entry, path: string): FieldValue | undefined {
  return fieldValue(fieldOf(entry, path))
}

/** The accessor of @timestamp, compiled once: every windowed rule reads it on every entry it counts. */
const TIMESTAMP = compileField('@timestamp')

/**
 * What a field holds as a FieldValue: null is no value; a list of scalars becomes a list of
 * strings; an object (a rule pointed at a whole sub-object) its JSON text.
 */
function fieldValue(v: unknown): FieldValue | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v
  if (Array.isArray(v)) return v.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)))
  return JSON.stringify(v)
}

const NO_ENTRY: Entry = { sourceId: '', offset: 0, end: 0, text: '', fields: {} }

/**
 * One entry as the rules see it. The engine keeps a single scope and resets it per entry, so
 * evaluating an entry no rule matches allocates nothing; what a firing rule needs (time,
 * exception, alert fields) is computed on first use and shared by every rule that fires.
 */
export class EntryScope {
  entry: Entry = NO_ENTRY
  now: Millis = 0
  out: AlertEvent[] = []
  private time_ = NaN
  private signature_: ExceptionSignature | null | undefined
  private exception_: ExceptionInfo | null | undefined
  private fields_: Record<string, FieldValue> | undefined

  constructor(
    private readonly clock: EventClock,
    private readonly history: ExceptionHistory,
    private readonly sourceFields: ((entry: Entry) => Record<string, FieldValue> | undefined) | undefined,
  ) {}

  reset(entry: Entry, now: Millis): void {
    this.entry = entry
    this.now = now
    this.time_ = NaN
    this.signature_ = undefined
    this.exception_ = undefined
    this.fields_ = undefined
  }

  /** A field's value: the entry's own, or the derived exception fingerprint. */
  value(path: string): FieldValue | undefined {
    const v = readField(this.entry, path)
    if (v !== undefined || path !== FINGERPRINT_FIELD) return v
    return this.signature()?.fingerprint
  }

  /** A field's value as text (lists joined with commas); undefined when absent or empty. */
  text(path: string): string | undefined {
    const v = this.value(path)
    if (v === undefined) return undefined
    const s = typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : String(v)
    return s.length === 0 ? undefined : s
  }

  /** The entry's event time (see EventClock). */
  time(): Millis {
    if (Number.isNaN(this.time_)) {
      const stamp = this.clock.useEntryTime ? stampOf(fieldValue(TIMESTAMP(this.entry))) : NaN
      this.time_ = this.clock.entryTime(stamp, this.now)
    }
    return this.time_
  }

  /** The entry's exception signature, when it carries an error. */
  signature(): ExceptionSignature | undefined {
    if (this.signature_ === undefined) {
      const type = this.value('error.type')
      const message = this.value('error.message')
      const stack = this.value('error.stack_trace')
      this.signature_ = fingerprintError({
        type: typeof type === 'string' && type.length > 0 ? type : undefined,
        message: typeof message === 'string' && message.length > 0 ? message : undefined,
        stack: typeof stack === 'string' && stack.length > 0 ? stack : undefined,
      }) ?? null
    }
    return this.signature_ ?? undefined
  }

  /** The entry's exception with its history, recorded once per entry however many rules fire. */
  exception(): ExceptionInfo | undefined {
    if (this.exception_ === undefined) {
      const signature = this.signature()
      this.exception_ = signature === undefined ? null : this.history.record(signature, this.time())
    }
    return this.exception_ ?? undefined
  }

  /** The redacted key fields of the entry (shared by the events of this entry: do not mutate). */
  alertFields(): Record<string, FieldValue> {
    if (this.fields_ === undefined) {
      this.fields_ = alertFields((path) => readField(this.entry, path), this.sourceFields?.(this.entry))
    }
    return this.fields_
  }

  /** The group key string for `paths`: '' for none, the value itself for one, values joined for more. */
  groupKey(paths: readonly string[]): string {
    if (paths.length === 0) return ''
    if (paths.length === 1) return keyPart(this.text(paths[0]!))
    let key = keyPart(this.text(paths[0]!))
    for (let i = 1; i < paths.length; i++) key += KEY_SEPARATOR + keyPart(this.text(paths[i]!))
    return key
  }
}

function keyPart(text: string | undefined): string {
  if (text === undefined) return ''
  return text.includes(KEY_SEPARATOR) ? text.replaceAll(KEY_SEPARATOR, ' ') : text
}

/** `@timestamp` as epoch ms: ISO text (as parsers write it) or an epoch number; NaN otherwise. */
function stampOf(value: FieldValue | undefined): Millis {
  if (typeof value === 'string') return parseIsoLike(value, 'UTC')
  if (typeof value === 'number') return epochToMs(value)
  return NaN
}

/** A short stable hash of the parts: event ids and fingerprints. */
export function digest(...parts: Array<string | number>): string {
  // One update of the joined text hashes the same bytes as one update per part, with one call
  // into the hash instead of seven: events are made per matching entry.
  return createHash('sha1').update(parts.join('\u0000')).digest('hex').slice(0, 20)
}

/** The id of an event caused by an entry: the same entry (a replay) gives the same id. */
export function entryEventId(ruleId: string, entry: Entry, kind: string): string {
  return digest(ruleId, entry.sourceId, entry.offset, kind)
}

/** The group-key record of an event: each group-by path with its (redacted) value. */
export function groupKeyRecord(paths: readonly string[], values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < paths.length; i++) out[paths[i]!] = String(redactValue(paths[i]!, values[i] ?? ''))
  return out
}

export interface EventParts {
  id: string
  state: 'firing' | 'resolved'
  /** What the alert fingerprint is made of besides the rule id: the group key string (and the value, for new_value and absence). */
  fingerprintKey: string
  groupKey: Record<string, string>
  at: Millis
  count: number
  fields: Record<string, FieldValue>
  summary: string
  ratio?: { share: number; base: number }
  exception?: ExceptionInfo
}

/**
 * The event of one group of a windowed rule (frequency, ratio, flatline): its fingerprint and
 * group key come from the group, and a resolved notice says so before the same summary.
 */
export function groupEvent(rule: Rule, g: { key: string; values: string[]; fields: Record<string, FieldValue> },
  p: Pick<EventParts, 'id' | 'state' | 'at' | 'count' | 'ratio' | 'exception'>, summary: string): AlertEvent {
  return makeEvent(rule, {
    ...p,
    fingerprintKey: g.key,
    groupKey: groupKeyRecord(rule.group_by, g.values),
    fields: g.fields,
    summary: p.state === 'resolved' ? `resolved: ${summary}` : summary,
  })
}

export function makeEvent(rule: Rule, p: EventParts): AlertEvent {
  const event: AlertEvent = {
    id: p.id,
    ruleId: rule.id,
    severity: rule.severity,
    state: p.state,
    fingerprint: digest(rule.id, p.fingerprintKey),
    groupKey: p.groupKey,
    at: p.at,
    count: p.count,
    fields: p.fields,
    summary: p.summary,
  }
  if (p.ratio !== undefined) event.ratio = p.ratio
  if (p.exception !== undefined) event.exception = p.exception
  return event
}

const UNITS: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]]

/** `5m`, `1h30m`, `2d`, `750ms`: the two largest units, as people write durations in rules. */
export function formatDuration(ms: Millis): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`
  let rest = Math.floor(ms / 1000) * 1000
  const parts: string[] = []
  for (const [unit, size] of UNITS) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    } else if (parts.length > 0) {
      break
    }
    if (parts.length === 2) break
  }
  return parts.join('')
}

/** `7.5%`, `5%`, `0.25%`. */
export function formatPercent(share: number): string {
  const pct = share * 100
  const text = pct >= 10 ? pct.toFixed(1) : pct.toFixed(2)
  return text.replace(/\.?0+$/, '') + '%'
}
