/**
 * `${VAR}` / `${VAR:-default}` in configuration strings, so secrets and per-host values stay in the
 * environment instead of the file. `$${` is a literal `${`. The same shell-like forms as Docker
 * Compose, so users already know them: `:-` takes the default when the variable is unset OR empty.
 *
 * This works on one string; load.ts applies it to every scalar value of the YAML document and
 * remembers which values came from the environment, so that no error message ever prints them.
 */

export type InterpolationIssue =
  /** `${NAME}` with NAME not set and no default. */
  | { kind: 'unset'; name: string; expression: string; index: number }
  /** A `${` that is not a well-formed expression. */
  | { kind: 'syntax'; expression: string; index: number; reason: string }

export interface Interpolated {
  value: string
  /** True when at least one `${...}` was replaced (by a variable or its default). */
  substituted: boolean
  /** Problems, each with the expression as written and its index in the input text. */
  issues: InterpolationIssue[]
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

function nameProblem(name: string): string {
  if (name === '') return 'the variable name is empty'
  if (name.includes(':')) return 'a default is written with ":-", as in ${NAME:-default}'
  return 'a variable name is letters, digits and _, not starting with a digit'
}

export function interpolate(text: string, env: NodeJS.ProcessEnv): Interpolated {
  // The common case — no expression at all — costs one scan. `$${` contains `${`, so it is not skipped.
  if (!text.includes('${')) return { value: text, substituted: false, issues: [] }

  const issues: InterpolationIssue[] = []
  let value = ''
  let substituted = false
  let i = 0
  while (i < text.length) {
    const dollar = text.indexOf('$', i)
    if (dollar < 0) {
      value += text.slice(i)
      break
    }
    value += text.slice(i, dollar)
    if (text.startsWith('$${', dollar)) {
      value += '${'
      i = dollar + 3
      continue
    }
    if (text[dollar + 1] !== '{') {
      value += '$'
      i = dollar + 1
      continue
    }
    const close = text.indexOf('}', dollar + 2)
    if (close < 0) {
      issues.push({ kind: 'syntax', expression: text.slice(dollar), index: dollar, reason: 'there is no closing "}"' })
      value += text.slice(dollar)
      break
    }
    const expression = text.slice(dollar, close + 1)
    const body = text.slice(dollar + 2, close)
    const separator = body.indexOf(':-')
    const name = separator < 0 ? body : body.slice(0, separator)
    i = close + 1
    if (!VARIABLE_NAME.test(name)) {
      issues.push({ kind: 'syntax', expression, index: dollar, reason: nameProblem(name) })
      continue
    }
    const fromEnv = env[name]
    if (separator >= 0) {
      value += fromEnv === undefined || fromEnv === '' ? body.slice(separator + 2) : fromEnv
    } else if (fromEnv === undefined) {
      issues.push({ kind: 'unset', name, expression, index: dollar })
      continue
    } else {
      value += fromEnv
    }
    substituted = true
  }
  return { value, substituted, issues }
}
