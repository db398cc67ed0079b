/**
 * `frequency`: at least `threshold` matches within a sliding `window`, per group key.
 *
 * A group fires once when its count reaches the threshold. While it stays at or above it, the
 * alert is repeated once per window (with the current count) so the alert pipeline sees that it
 * keeps firing — its `realert` decides what reaches people. When the count falls below the
 * threshold (checked on tick), the episode ends, with a "resolved" event if the rule asks.
 */
import type { CompiledRule } from '../compiled'
import type { AlertEvent, FrequencyRule, Millis } from '../model'
import { digest, groupEvent, type EntryScope, entryEventId, formatDuration, type RuleRuntime, type RuntimeLimits } from './runtime'
import { GroupWindows, type WindowGroup, WindowedRuntime } from './window'

export class FrequencyRuntime extends WindowedRuntime implements RuleRuntime {
  protected readonly windows: GroupWindows
  private lastSweep = -Infinity

  constructor(public compiled: CompiledRule, limits: RuntimeLimits) {
    super()
    const rule = this.rule
    this.windows = new GroupWindows(rule.window, 1, limits.maxGroups, rule.group_by)
  }

  private get rule(): FrequencyRule {
    return this.compiled.rule as FrequencyRule
  }

  onEntry(scope: EntryScope): void {
    if (!this.compiled.match.test(scope.entry)) return
    const rule = this.rule
    const t = scope.time()
    const g = this.windows.group(scope.groupKey(rule.group_by), t)
    this.windows.add(g, t, 0)
    const count = g.totals[0]!
    if (g.firing || count < rule.threshold) return
    g.firing = true
    g.episode = entryEventId(rule.id, scope.entry, 'frequency')
    g.lastEmit = t
    g.repeats = 0
    g.fields = scope.alertFields()
    const exception = scope.exception()
    scope.out.push(this.event(g, g.episode, 'firing', t, count, exception === undefined ? {} : { exception }))
  }

  tick(clock: Millis, out: AlertEvent[]): void {
    const rule = this.rule
    const sweep = clock - this.lastSweep >= Math.max(this.windows.bucketMs, 1000)
    if (sweep) this.lastSweep = clock
    for (const g of this.windows.all()) {
      if (!g.firing && !sweep) continue
      this.windows.expire(g, clock)
      const count = g.totals[0]!
      if (g.firing) {
        if (count < rule.threshold) {
          g.firing = false
          if (rule.resolve) out.push(this.event(g, digest(g.episode, 'resolved'), 'resolved', clock, count, {}))
          // The episode is over: its fields are not kept past the resolved event.
          g.fields = {}
        } else if (clock - g.lastEmit >= rule.window) {
          g.repeats++
          g.lastEmit = clock
          out.push(this.event(g, digest(g.episode, 'repeat', g.repeats), 'firing', clock, count, {}))
        }
      }
      if (!g.firing && this.windows.empty(g)) this.windows.delete(g)
    }
  }

  private event(g: WindowGroup, id: string, state: 'firing' | 'resolved', at: Millis, count: number, extra: Pick<AlertEvent, 'exception'>): AlertEvent {
    const rule = this.rule
    const counted = `${count} ${count === 1 ? 'match' : 'matches'} in ${formatDuration(rule.window)} (threshold ${rule.threshold})`
    return groupEvent(rule, g, { id, state, at, count, ...extra }, counted)
  }

}
