/**
 * `ratio`: the share of a base set that matches the rule's condition, in a sliding window, per
 * group key — "5xx above 5% of requests". The base condition picks the denominator; the rule's
 * own condition picks the numerator among those entries. The rule fires when the share is above
 * the threshold (a fraction: 0.05 for 5%) and the base count is at least `min_count`, so three
 * requests with one error at night do not page anyone.
 *
 * The share is checked on every base entry (a success can complete `min_count` as well as an
 * error can raise the share). As with frequency, a firing group repeats once per window and
 * resolves on tick when the share is no longer above the threshold or the base falls below
 * `min_count`.
 */
import type { CompiledRule } from '../compiled'
import type { AlertEvent, Millis, RatioRule } from '../model'
import { digest, groupEvent, type EntryScope, entryEventId, formatDuration, formatPercent, type RuleRuntime, type RuntimeLimits } from './runtime'
import { GroupWindows, type WindowGroup, WindowedRuntime } from './window'

const BASE = 0
const MATCHED = 1

export class RatioRuntime extends WindowedRuntime implements RuleRuntime {
  protected readonly windows: GroupWindows
  private lastSweep = -Infinity

  constructor(public compiled: CompiledRule, limits: RuntimeLimits) {
    super()
    this.windows = new GroupWindows(this.rule.window, 2, limits.maxGroups, this.rule.group_by)
  }

  private get rule(): RatioRule {
    return this.compiled.rule as RatioRule
  }

  private above(g: WindowGroup): boolean {
    const base = g.totals[BASE]!
    return base >= this.rule.min_count && base > 0 && g.totals[MATCHED]! / base > this.rule.threshold
  }

  onEntry(scope: EntryScope): void {
    const { base, match } = this.compiled
    const entry = scope.entry
    if (base !== undefined && !base.test(entry)) return
    const rule = this.rule
    const t = scope.time()
    const g = this.windows.group(scope.groupKey(rule.group_by), t)
    this.windows.add(g, t, BASE)
    if (match.test(entry)) this.windows.add(g, t, MATCHED)
    if (g.firing || !this.above(g)) return
    g.firing = true
    g.episode = entryEventId(rule.id, entry, 'ratio')
    g.lastEmit = t
    g.repeats = 0
    g.fields = scope.alertFields()
    scope.out.push(this.event(g, g.episode, 'firing', t))
  }

  tick(clock: Millis, out: AlertEvent[]): void {
    const sweep = clock - this.lastSweep >= Math.max(this.windows.bucketMs, 1000)
    if (sweep) this.lastSweep = clock
    for (const g of this.windows.all()) {
      if (!g.firing && !sweep) continue
      this.windows.expire(g, clock)
      if (g.firing) {
        if (!this.above(g)) {
          g.firing = false
          if (this.rule.resolve) out.push(this.event(g, digest(g.episode, 'resolved'), 'resolved', clock))
          // The episode is over: its fields are not kept past the resolved event.
          g.fields = {}
        } else if (clock - g.lastEmit >= this.rule.window) {
          g.repeats++
          g.lastEmit = clock
          out.push(this.event(g, digest(g.episode, 'repeat', g.repeats), 'firing', clock))
        }
      }
      if (!g.firing && this.windows.empty(g)) this.windows.delete(g)
    }
  }

  private event(g: WindowGroup, id: string, state: 'firing' | 'resolved', at: Millis): AlertEvent {
    const rule = this.rule
    const base = g.totals[BASE]!
    const matched = g.totals[MATCHED]!
    const share = base === 0 ? 0 : matched / base
    const text = `share ${formatPercent(share)} (${matched} of ${base}) in ${formatDuration(rule.window)} (threshold ${formatPercent(rule.threshold)})`
    return groupEvent(rule, g, { id, state, at, count: matched, ratio: { share, base } }, text)
  }

}
