/**
 * `absence`: something that should happen did not. Two modes.
 *
 * Correlated (`end` given): an entry matching the rule's condition (the start) opens a deadline
 * `within` ahead for its `key` value; an entry matching `end` with the same key value closes it.
 * A deadline the clock passes fires — "deposit 123 created 2h ago and not verified". If the end
 * comes later after all, the alert resolves (when the rule asks). A second start for a key that is
 * already waiting does not move its deadline. Pending keys are bounded (`maxPending`); starts
 * beyond it are counted as overflowed and not tracked.
 *
 * Flatline (no `end`): fewer than `min_count` matches in `window` fires, per group key (without
 * group_by: one group for the rule). A group is watched from when it was first seen (the rule's
 * one from when the rule started) and fires only after a whole window of watching, so a restart
 * or a new rule does not cry wolf. It resolves when the count is back to `min_count`.
 */
import { LwError } from '../../agent/errors'
import type { FieldValue } from '../../agent/entry'
import type { CompiledRule } from '../compiled'
import type { AbsenceRule, AlertEvent, CompiledCondition, Millis } from '../model'
import { digest, groupEvent, type EntryScope, entryEventId, formatDuration, groupKeyRecord, makeEvent, type RuleRuntime, type RuntimeLimits } from './runtime'
import { GroupWindows, KEY_SEPARATOR, splitKey, type WindowGroup, WindowedRuntime } from './window'

/** A start waiting for its end (or fired and waiting to be resolved). */
interface Pending {
  /** The correlation key's value. */
  value: string
  /** The group-by values of the start entry. */
  values: string[]
  started: Millis
  deadline: Millis
  /** Derived from the start entry's position: the firing event's id. */
  id: string
  fields: Record<string, FieldValue>
}

type PendingState = [string, string[], Millis, Millis, string, Record<string, FieldValue>]

function toState(p: Pending): PendingState {
  return [p.value, p.values, p.started, p.deadline, p.id, p.fields]
}

function fromState(s: unknown): Pending | undefined {
  if (!Array.isArray(s) || s.length !== 6) return undefined
  const [value, values, started, deadline, id, fields] = s as unknown[]
  if (typeof value !== 'string' || !Array.isArray(values) || typeof started !== 'number' || typeof deadline !== 'number' ||
      typeof id !== 'string' || fields === null || typeof fields !== 'object') return undefined
  return { value, values: values.map(String), started, deadline, id, fields: fields as Record<string, FieldValue> }
}

/** Starts and ends pair within a group: the same key value in two groups is two waits. */
function pendingKey(group: string, value: string): string {
  return group === '' ? value : group + KEY_SEPARATOR + value
}

function rulesOf(compiled: CompiledRule): AbsenceRule {
  return compiled.rule as AbsenceRule
}

/** Correlated absence: start, then end within `within`, matched by `key`. */
export class CorrelatedAbsenceRuntime implements RuleRuntime {
  /** Waiting starts in arrival order (deadlines roughly ascending: see tick). */
  private readonly pending = new Map<string, Pending>()
  /** Fired starts, kept for one more `within` so a late end can resolve them. */
  private readonly fired = new Map<string, Pending>()
  private dropped = 0
  private readonly key: string
  private readonly within: Millis
  private readonly end: CompiledCondition

  constructor(public compiled: CompiledRule, private readonly limits: RuntimeLimits) {
    const rule = rulesOf(compiled)
    if (compiled.end === undefined || rule.key === undefined || rule.within === undefined) {
      throw new LwError('LW_INTERNAL', `rule ${rule.id}: a correlated absence rule reached the engine without end, key or within`)
    }
    this.key = rule.key
    this.within = rule.within
    this.end = compiled.end
  }

  private get rule(): AbsenceRule {
    return rulesOf(this.compiled)
  }

  onEntry(scope: EntryScope): void {
    const entry = scope.entry
    const rule = this.rule
    if (this.end.test(entry)) {
      const value = scope.text(this.key)
      if (value !== undefined) {
        const mapKey = pendingKey(scope.groupKey(rule.group_by), value)
        if (!this.pending.delete(mapKey)) {
          const fired = this.fired.get(mapKey)
          if (fired !== undefined) {
            this.fired.delete(mapKey)
            if (rule.resolve) {
              const t = scope.time()
              scope.out.push(this.event(fired, digest(fired.id, 'resolved'), 'resolved', t,
                `ended ${formatDuration(t - fired.started)} after it started (limit ${formatDuration(this.within)})`))
            }
          }
        }
      }
    }
    if (!this.compiled.match.test(entry)) return
    const value = scope.text(this.key)
    if (value === undefined) {
      // A start without the key cannot be correlated with its end.
      this.dropped++
      return
    }
    const group = scope.groupKey(rule.group_by)
    const mapKey = pendingKey(group, value)
    if (this.pending.has(mapKey) || this.fired.has(mapKey)) return
    if (this.pending.size + this.fired.size >= this.limits.maxPending) {
      this.dropped++
      return
    }
    const t = scope.time()
    this.pending.set(mapKey, {
      value,
      values: splitKey(group, rule.group_by.length),
      started: t,
      deadline: t + this.within,
      id: entryEventId(rule.id, entry, 'absence'),
      fields: scope.alertFields(),
    })
  }

  /**
   * Fires the starts whose deadline has passed. Starts arrive roughly in time order, so the scan
   * stops at the first one not yet due; a start read out of order fires at most that much late.
   */
  tick(clock: Millis, out: AlertEvent[]): void {
    for (const [mapKey, p] of this.pending) {
      if (p.deadline > clock) break
      this.pending.delete(mapKey)
      this.fired.set(mapKey, p)
      out.push(this.event(p, p.id, 'firing', p.deadline,
        `started ${formatDuration(clock - p.started)} ago and did not end within ${formatDuration(this.within)}`))
    }
    for (const [mapKey, p] of this.fired) {
      if (p.deadline + this.within > clock) break
      this.fired.delete(mapKey)
    }
  }

  /** `summary` follows the key and its value: "deposit.id 123 <summary>". */
  private event(p: Pending, id: string, state: 'firing' | 'resolved', at: Millis, summary: string): AlertEvent {
    const rule = this.rule
    const groupKey = groupKeyRecord(rule.group_by, p.values)
    groupKey[this.key] = groupKeyRecord([this.key], [p.value])[this.key]!
    return makeEvent(rule, {
      id, state, at,
      summary: `${this.key} ${groupKey[this.key]} ${summary}`,
      count: 1,
      fingerprintKey: pendingKey(p.values.join(KEY_SEPARATOR), p.value),
      groupKey,
      fields: p.fields,
    })
  }

  exportState(): unknown {
    return {
      pending: [...this.pending.values()].map(toState),
      fired: [...this.fired.values()].map(toState),
      dropped: this.dropped,
    }
  }

  importState(state: unknown): void {
    this.pending.clear()
    this.fired.clear()
    const s = state as { pending?: unknown; fired?: unknown; dropped?: unknown } | null
    const restore = (list: unknown, into: Map<string, Pending>): void => {
      if (!Array.isArray(list)) return
      for (const item of list) {
        const p = fromState(item)
        if (p === undefined || this.pending.size + this.fired.size >= this.limits.maxPending) continue
        into.set(pendingKey(p.values.join(KEY_SEPARATOR), p.value), p)
      }
    }
    restore(s?.pending, this.pending)
    restore(s?.fired, this.fired)
    if (typeof s?.dropped === 'number') this.dropped = s.dropped
  }

  size(): number {
    return this.pending.size + this.fired.size
  }

  overflowed(): number {
    return this.dropped
  }
}

/** The fields that say where an entry came from: what a flatline alert can show of the silence. */
const WHERE_FIELDS = ['service.name', 'service.environment', 'host.name', 'log.file.path'] as const

function whereFields(fields: Record<string, FieldValue>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {}
  for (const name of WHERE_FIELDS) if (fields[name] !== undefined) out[name] = fields[name]!
  return out
}

/** Flatline absence: fewer than `min_count` matches in `window`. */
export class FlatlineRuntime extends WindowedRuntime implements RuleRuntime {
  protected readonly windows: GroupWindows
  private readonly window: Millis
  private readonly minCount: number

  constructor(public compiled: CompiledRule, limits: RuntimeLimits) {
    super()
    const rule = rulesOf(compiled)
    if (rule.window === undefined) {
      throw new LwError('LW_INTERNAL', `rule ${rule.id}: a flatline absence rule reached the engine without a window`)
    }
    this.window = rule.window
    this.minCount = rule.min_count ?? 1
    this.windows = new GroupWindows(rule.window, 1, limits.maxGroups, rule.group_by)
  }

  private get rule(): AbsenceRule {
    return rulesOf(this.compiled)
  }

  onEntry(scope: EntryScope): void {
    if (!this.compiled.match.test(scope.entry)) return
    const t = scope.time()
    const g = this.windows.group(scope.groupKey(this.rule.group_by), t)
    // The entry that starts a group (or restarts it after a quiet spell) tells where the
    // silence is (service, host, file): only those fields, as every group keeps them.
    if (g.buckets.length === 0) g.fields = whereFields(scope.alertFields())
    this.windows.add(g, t, 0)
  }

  tick(clock: Millis, out: AlertEvent[]): void {
    const rule = this.rule
    // Without group_by the rule watches one group from the moment it runs.
    if (rule.group_by.length === 0 && this.windows.size === 0) this.windows.group('', clock)
    for (const g of this.windows.all()) {
      this.windows.expire(g, clock)
      const count = g.totals[0]!
      if (!g.firing) {
        if (count < this.minCount && clock - g.since >= this.window) {
          g.firing = true
          g.episode = digest(rule.id, g.key, 'flatline', clock)
          g.lastEmit = clock
          g.repeats = 0
          out.push(this.event(g, g.episode, 'firing', clock, count))
        }
      } else if (count >= this.minCount) {
        g.firing = false
        if (rule.resolve) out.push(this.event(g, digest(g.episode, 'resolved'), 'resolved', clock, count))
      } else if (clock - g.lastEmit >= this.window) {
        g.repeats++
        g.lastEmit = clock
        out.push(this.event(g, digest(g.episode, 'repeat', g.repeats), 'firing', clock, count))
      }
    }
  }

  private event(g: WindowGroup, id: string, state: 'firing' | 'resolved', at: Millis, count: number): AlertEvent {
    const rule = this.rule
    const counted = `${count} ${count === 1 ? 'match' : 'matches'} in ${formatDuration(this.window)} (expected at least ${this.minCount})`
    return groupEvent(rule, g, { id, state, at, count }, counted)
  }

}
