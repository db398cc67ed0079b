/**
 * Grouping, with Alertmanager's timing words: the first event of a group waits `group_wait` so
 * that what arrives meanwhile goes into the same message ("and 37 more like this"); after a
 * message, the group stays open for `group_interval`, and what arrives in that time makes at
 * most one update, sent when the interval is over. A group with nothing new when its interval
 * ends is closed, so the next event starts over with `group_wait`.
 *
 * A group is per (rule, group key). Memory is bounded by `maxGroups`: past it, the oldest group
 * with nothing pending is closed early (its next update may then come sooner than
 * group_interval), or else the event is folded into the oldest pending group of its own rule,
 * whose message then counts it among its "more like this".
 *
 * This file also holds `foldNotification`, the one way two notifications become one, used when
 * the throttle or the outbox folds overflow into counts.
 */
import type { AlertEvent, Millis, Notification, RuleBase } from '../model'

export type GroupTiming = Pick<RuleBase, 'group_wait' | 'group_interval'>

/** Events on their way to becoming one message. */
export interface Batch {
  /** The group: rule and group key (see `groupKeyOf`). */
  group: string
  ruleId: string
  /** The representative event: the first of the batch. */
  first: AlertEvent
  /** Events folded in after the first. */
  more: number
  /** Sum of the events' counts. */
  total: number
  firstAt: Millis
  lastAt: Millis
}

/** One group as it is kept (and checkpointed). */
export interface GroupState {
  group: string
  ruleId: string
  /** What waits to be sent; absent while the group only holds its interval open. */
  batch?: Batch
  /** When the batch is sent; without a batch, when the group closes. */
  due: Millis
  /** `group_interval` of the rule when the group last sent, for the next `due`. */
  interval: Millis
}

export interface GrouperOptions {
  /** Groups kept at once (pending or holding their interval); see the file comment. */
  maxGroups: number
}

/** What became of an added event. */
export type AddOutcome = 'opened' | 'joined' | 'folded'

/** (rule, group key) as one string; key order in the event does not matter. */
export function groupKeyOf(event: Pick<AlertEvent, 'ruleId' | 'groupKey'>): string {
  const names = Object.keys(event.groupKey).sort()
  const pairs: string[] = new Array(names.length)
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string
    pairs[i] = JSON.stringify(name) + ':' + JSON.stringify(event.groupKey[name])
  }
  return event.ruleId + '\u0000' + pairs.join(',')
}

function batchOf(group: string, event: AlertEvent): Batch {
  return { group, ruleId: event.ruleId, first: event, more: 0, total: event.count, firstAt: event.at, lastAt: event.at }
}

function fold(batch: Batch, event: AlertEvent): void {
  batch.more++
  batch.total += event.count
  if (event.at < batch.firstAt) batch.firstAt = event.at
  if (event.at > batch.lastAt) batch.lastAt = event.at
}

export class Grouper {
  private readonly max: number
  private readonly groups = new Map<string, GroupState>()
  /** Groups without a batch, in the order they got there: the first to close early. */
  private readonly idle = new Set<string>()
  /** Per rule, the groups with a batch, oldest first: where overflow is folded. */
  private readonly pendingByRule = new Map<string, Set<string>>()
  /** No group is due before this: `due` costs nothing until then (it runs at every push). */
  private nextDue = Infinity
  private foldedCount = 0

  constructor(opts: GrouperOptions) {
    this.max = Math.max(1, opts.maxGroups)
  }

  /** Groups kept now. */
  get size(): number {
    return this.groups.size
  }

  /** Events folded into another group's message because `maxGroups` was reached (since start). */
  get folded(): number {
    return this.foldedCount
  }

  add(event: AlertEvent, now: Millis, timing: GroupTiming): AddOutcome {
    const key = groupKeyOf(event)
    const group = this.groups.get(key)
    if (group !== undefined) {
      if (group.batch !== undefined) {
        fold(group.batch, event)
        return 'joined'
      }
      // Inside its interval: the update goes out when the interval ends.
      group.batch = batchOf(key, event)
      this.idle.delete(key)
      this.markPending(group)
      return 'joined'
    }
    if (this.groups.size >= this.max && !this.evictIdle()) {
      const into = this.oldestPending(event.ruleId)
      if (into?.batch !== undefined) {
        fold(into.batch, event)
        this.foldedCount++
        return 'folded'
      }
      // No pending group of this rule to fold into: one group per rule over the bound, no more.
    }
    const created: GroupState = { group: key, ruleId: event.ruleId, batch: batchOf(key, event), due: now + timing.group_wait, interval: timing.group_interval }
    this.groups.set(key, created)
    this.markPending(created)
    if (created.due < this.nextDue) this.nextDue = created.due
    return 'opened'
  }

  /**
   * The batches due by `now`, oldest group first. `timingOf` gives the current timing of a rule
   * (rules may have been reloaded since the group opened); undefined when the rule is gone.
   */
  due(now: Millis, timingOf: (ruleId: string) => GroupTiming | undefined): Batch[] {
    const out: Batch[] = []
    if (now < this.nextDue) return out
    let next = Infinity
    for (const group of this.groups.values()) {
      if (group.due > now) {
        if (group.due < next) next = group.due
        continue
      }
      if (group.batch === undefined) {
        this.remove(group)
        continue
      }
      out.push(group.batch)
      this.unmarkPending(group)
      group.batch = undefined
      const timing = timingOf(group.ruleId)
      group.interval = timing?.group_interval ?? 0
      group.due = now + group.interval
      if (group.due < next) next = group.due
      this.idle.add(group.group)
    }
    this.nextDue = next
    return out
  }

  /**
   * Closes the group of `event` and returns what it held, so that it can be sent now: a
   * resolved notice must follow the firing message it resolves, and the next firing starts over.
   */
  take(event: Pick<AlertEvent, 'ruleId' | 'groupKey'>): Batch | undefined {
    const group = this.groups.get(groupKeyOf(event))
    if (group === undefined) return undefined
    const batch = group.batch
    this.remove(group)
    return batch
  }

  exportState(): GroupState[] {
    const out: GroupState[] = []
    for (const g of this.groups.values()) {
      out.push(g.batch === undefined ? { group: g.group, ruleId: g.ruleId, due: g.due, interval: g.interval } : { ...g, batch: { ...g.batch } })
    }
    return out
  }

  importState(groups: GroupState[]): void {
    this.groups.clear()
    this.idle.clear()
    this.pendingByRule.clear()
    this.nextDue = Infinity
    // Kept in order, so the oldest stay the first to be closed or folded into.
    for (const g of groups.slice(-this.max)) {
      const copy: GroupState = g.batch === undefined
        ? { group: g.group, ruleId: g.ruleId, due: g.due, interval: g.interval }
        : { ...g, batch: { ...g.batch } }
      this.groups.set(copy.group, copy)
      if (copy.due < this.nextDue) this.nextDue = copy.due
      if (copy.batch === undefined) this.idle.add(copy.group)
      else this.markPending(copy)
    }
  }

  private evictIdle(): boolean {
    for (const key of this.idle) {
      const group = this.groups.get(key)
      if (group !== undefined) this.remove(group)
      else this.idle.delete(key)
      return true
    }
    return false
  }

  private oldestPending(ruleId: string): GroupState | undefined {
    const keys = this.pendingByRule.get(ruleId)
    if (keys === undefined) return undefined
    for (const key of keys) return this.groups.get(key)
    return undefined
  }

  private markPending(group: GroupState): void {
    let keys = this.pendingByRule.get(group.ruleId)
    if (keys === undefined) {
      keys = new Set()
      this.pendingByRule.set(group.ruleId, keys)
    }
    keys.add(group.group)
  }

  private unmarkPending(group: GroupState): void {
    const keys = this.pendingByRule.get(group.ruleId)
    if (keys === undefined) return
    keys.delete(group.group)
    if (keys.size === 0) this.pendingByRule.delete(group.ruleId)
  }

  private remove(group: GroupState): void {
    this.groups.delete(group.group)
    this.idle.delete(group.group)
    this.unmarkPending(group)
  }
}

/**
 * `later` folded into `earlier`, as one message. The same id means `later` is a newer version of
 * the same message (an update in its dedup window): its counts, which are totals for the window,
 * replace the older ones, and its event, the latest, is the one shown. Different ids are two
 * messages becoming one: the earlier one stays the representative and counts the later one,
 * with everything folded into it, among its "more like this". (Folding happens only at a bound;
 * if the later message was an update, its window total may include events an earlier version
 * already showed: the count can then be too high, never too low.)
 */
export function foldNotification(earlier: Notification, later: Notification): Notification {
  const firstAt = Math.min(earlier.firstAt, later.firstAt)
  const lastAt = Math.max(earlier.lastAt, later.lastAt)
  if (earlier.id === later.id) return { ...later, firstAt, lastAt }
  return { ...earlier, more: earlier.more + 1 + later.more, total: earlier.total + later.total, firstAt, lastAt }
}
