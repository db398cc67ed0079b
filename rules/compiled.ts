/**
 * A rule ready to run: the rule as loaded (defaults filled, durations in ms) and its conditions
 * compiled to predicates. What rules/load.ts returns and what the rule engine and the rule index
 * take.
 */
import type { CompiledCondition, Rule } from './model'

export interface CompiledRule {
  rule: Rule
  /** The rule's own condition (`query` / `when`): the matches; for ratio the numerator, for absence the start. */
  match: CompiledCondition
  /** ratio: the base set (denominator). */
  base?: CompiledCondition
  /** absence, correlated mode: the entry that must follow the start. */
  end?: CompiledCondition
}
