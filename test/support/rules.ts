/** Rules built by hand for the engine's tests: what the loader would produce, without YAML. */
import type { FieldValue } from '../../agent/entry'
import type { CompiledCondition, Rule } from '../../rules/model'

export const S = 1000
export const M = 60 * S
export const H = 60 * M
export const T0 = Date.UTC(2024, 0, 1)

/** The settings every rule type shares, with the loader's defaults; `over` changes some. */
export function ruleBase(id: string, over: Partial<Omit<Rule, 'type'>> = {}): Omit<Rule, 'type'> {
  return {
    id, name: id, severity: 'warning', enabled: true, group_by: [], labels: {}, route: 'default',
    group_wait: 0, group_interval: 5 * M, realert: 5 * M, realert_backoff: 1, realert_max: H,
    resolve: false, source: 'test.yaml:1:1', ...over,
  }
}

/** A condition on one field, as the compiler would make it. */
export function where(field: string, test: (v: FieldValue) => boolean): CompiledCondition {
  return { test: (e) => e.fields[field] !== undefined && test(e.fields[field]!), fields: [field], required: [field] }
}
