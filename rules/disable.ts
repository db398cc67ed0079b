/**
 * `rules.disable` in the configuration: rule ids to leave out, built-in or not. A disabled rule
 * stays loaded and checked (a broken edit to it is still reported) but is never evaluated, as
 * if its file said `enabled: false`: the way to silence one built-in rule without copying its
 * pack. An id no loaded rule has is reported, with the closest one, rather than ignored: a typo
 * there would otherwise leave the noisy rule running.
 */
import { closest } from '../agent/config/suggest'
import type { CompiledRule } from './compiled'

export interface Disabled {
  rules: CompiledRule[]
  /** Ids in `disable` that no rule has, each with the closest loaded id when one is close. */
  unknown: Array<{ id: string; suggestion?: string }>
}

export function disableRules(rules: CompiledRule[], disable: readonly string[]): Disabled {
  if (disable.length === 0) return { rules, unknown: [] }
  const off = new Set(disable)
  const ids = new Set(rules.map((c) => c.rule.id))
  const unknown = disable.filter((id) => !ids.has(id)).map((id) => {
    const suggestion = closest(id, ids)
    return suggestion === undefined ? { id } : { id, suggestion }
  })
  return { rules: rules.map((c) => (off.has(c.rule.id) && c.rule.enabled ? { ...c, rule: { ...c.rule, enabled: false } } : c)), unknown }
}
