/**
 * `match`: every entry the condition matches is an alert. Stateless; the alert pipeline's dedup
 * window (`realert`) and grouping keep a flood of matches down to a few messages.
 */
import { describeEntry } from '../alert-fields'
import type { CompiledRule } from '../compiled'
import type { AlertEvent, Millis } from '../model'
import { type EntryScope, entryEventId, groupKeyRecord, makeEvent, type RuleRuntime } from './runtime'
import { splitKey } from './window'

export class MatchRuntime implements RuleRuntime {
  constructor(public compiled: CompiledRule) {}

  onEntry(scope: EntryScope): void {
    if (!this.compiled.match.test(scope.entry)) return
    const rule = this.compiled.rule
    const key = scope.groupKey(rule.group_by)
    const fields = scope.alertFields()
    const exception = scope.exception()
    scope.out.push(makeEvent(rule, {
      id: entryEventId(rule.id, scope.entry, 'match'),
      state: 'firing',
      fingerprintKey: key,
      groupKey: groupKeyRecord(rule.group_by, splitKey(key, rule.group_by.length)),
      at: scope.time(),
      count: 1,
      fields,
      summary: describeEntry(fields),
      ...(exception === undefined ? {} : { exception }),
    }))
  }

  tick(_clock: Millis, _out: AlertEvent[]): void {
    // Nothing closes: a match is an alert the moment it happens.
  }

  exportState(): unknown {
    return null
  }

  importState(_state: unknown): void {
    // No state to restore.
  }

  size(): number {
    return 0
  }

  overflowed(): number {
    return 0
  }
}
