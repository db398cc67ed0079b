/**
 * `new_value`: the first time a value of `field` is seen (per group key, when there is one) — a
 * new exception fingerprint, a new admin IP. With `regression_after`, a value that comes back
 * after being quiet that long fires again, flagged a regression (Sentry's "regressed issue").
 *
 * The seen-set is bounded (see SeenSet): values quiet for `forget_after` are forgotten, and past
 * the engine's `maxSeen` the least recently seen is evicted. It is exported with the engine state,
 * so a restart does not make every value new again.
 *
 * On `error.fingerprint` (derived by the engine when the entry lacks it) the alert carries the
 * exception's type, message, frames, count, first and last sighting.
 */
import type { CompiledRule } from '../compiled'
import { exceptionInfo } from '../fingerprint'
import type { AlertEvent, ExceptionInfo, Millis, NewValueRule } from '../model'
import { type EntryScope, entryEventId, FINGERPRINT_FIELD, formatDuration, groupKeyRecord, makeEvent, type RuleRuntime, type RuntimeLimits } from './runtime'
import { SeenSet } from './seen-set'
import { KEY_SEPARATOR, splitKey } from './window'

/** Forgetting runs at most this often: it walks from the front of the set. */
const PRUNE_EVERY: Millis = 60_000

export class NewValueRuntime implements RuleRuntime {
  private readonly seen: SeenSet
  private lastPrune = -Infinity

  constructor(public compiled: CompiledRule, limits: RuntimeLimits) {
    this.seen = new SeenSet(limits.maxSeen, this.rule.forget_after)
  }

  private get rule(): NewValueRule {
    return this.compiled.rule as NewValueRule
  }

  onEntry(scope: EntryScope): void {
    if (!this.compiled.match.test(scope.entry)) return
    const rule = this.rule
    const value = scope.text(rule.field)
    if (value === undefined) return
    const group = scope.groupKey(rule.group_by)
    const seenKey = group === '' ? value : group + KEY_SEPARATOR + value
    const t = scope.time()
    const previous = this.seen.see(seenKey, t)
    const isNew = Number.isNaN(previous)
    const regression = !isNew && rule.regression_after !== undefined && t - previous >= rule.regression_after
    if (!isNew && !regression) return

    const groupKey = groupKeyRecord(rule.group_by, splitKey(group, rule.group_by.length))
    const shown = groupKeyRecord([rule.field], [value])[rule.field]!
    groupKey[rule.field] = shown
    let exception: ExceptionInfo | undefined
    let what = `${rule.field} ${shown}`
    const signature = rule.field === FINGERPRINT_FIELD ? scope.signature() : undefined
    if (signature !== undefined && signature.fingerprint === value) {
      exception = exceptionInfo(signature, this.seen.get(seenKey)!, regression)
      what = `exception ${describe(exception)}`
    } else {
      exception = scope.exception()
    }
    scope.out.push(makeEvent(rule, {
      id: entryEventId(rule.id, scope.entry, regression ? 'regression' : 'new'),
      state: 'firing',
      fingerprintKey: seenKey,
      groupKey,
      at: t,
      count: 1,
      fields: scope.alertFields(),
      summary: regression ? `${what} is back after ${formatDuration(t - previous)} quiet (regression)` : `new ${what}`,
      ...(exception === undefined ? {} : { exception }),
    }))
  }

  tick(clock: Millis, _out: AlertEvent[]): void {
    if (clock - this.lastPrune < PRUNE_EVERY) return
    this.lastPrune = clock
    this.seen.prune(clock)
  }

  exportState(): unknown {
    return { seen: this.seen.export(), evicted: this.seen.evicted }
  }

  importState(state: unknown): void {
    const s = state as { seen?: unknown; evicted?: unknown } | null
    this.seen.import(s?.seen)
    if (typeof s?.evicted === 'number') this.seen.evicted = s.evicted
  }

  size(): number {
    return this.seen.size
  }

  overflowed(): number {
    return this.seen.evicted
  }
}

/** `TypeError: x is not a function`, the (already redacted) message cut to a line. */
function describe(e: ExceptionInfo): string {
  const message = e.message === undefined ? '' : e.message.replace(/\s+/g, ' ').trim().slice(0, 160)
  if (e.type === undefined) return message
  return message === '' ? e.type : `${e.type}: ${message}`
}
