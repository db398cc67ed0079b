/**
 * `logwarden rules check [PATH...]`: validate rule files for CI. Every problem is printed, one
 * per line (`file:line:column: LW_RULE_...: key: what. What to do.`), then a summary; `ok` is
 * false (the CLI exits non-zero) on any problem.
 */
import { loadRules } from './load'

export interface RulesCheckResult {
  ok: boolean
  /** The text to print: one line per problem, then the summary line. */
  output: string
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

export function rulesCheck(paths: string[]): RulesCheckResult {
  if (paths.length === 0) {
    return { ok: false, output: 'LW_RULE_READ: no rule files given. Pass rule files or directories: logwarden rules check rules/ my-rules.yaml' }
  }
  const { rules, problems, files } = loadRules(paths)
  const lines = problems.map((problem) => problem.format())
  if (problems.length === 0) {
    lines.push(`${plural(rules.length, 'rule')} in ${plural(files.length, 'file')} OK`)
    return { ok: true, output: lines.join('\n') }
  }
  lines.push(`${plural(problems.length, 'problem')} (${plural(rules.length, 'rule')} in ${plural(files.length, 'file')} loaded without one)`)
  return { ok: false, output: lines.join('\n') }
}
