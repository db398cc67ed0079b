/**
 * The custom formats of the configuration schema (`"format": "timezone"` and so on), shared by
 * the validator built from the schema at run time and the one generated at build time
 * (scripts/compile-schemas.js), which requires this module by name.
 */

export function isTimeZone(name: string): boolean {
  // UTC, the default, is known without ICU: asking Intl loads its zone data, megabytes of memory.
  if (name === 'UTC') return true
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name })
    return true
  } catch {
    return false
  }
}

/** Why `pattern` does not compile, without repeating the pattern itself (it may come from the environment). */
export function regexProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern)
    return undefined
  } catch (err) {
    const message = (err as Error).message
    return message.slice(message.lastIndexOf(': ') + 2)
  }
}

/** Elasticsearch's rules for index and data stream names; a date pattern is filled in later. */
export function indexNameProblem(name: string): string | undefined {
  const bare = name.replace(/%\{\+[^}]*\}/g, 'x')
  if (bare !== bare.toLowerCase()) return 'it must be lowercase'
  const forbidden = /[\\/*?"<>| ,#:]/.exec(bare)
  if (forbidden !== null) return `it must not contain ${JSON.stringify(forbidden[0])}`
  if (/^[-_+]/.test(bare)) return 'it must not start with "-", "_" or "+"'
  if (bare === '.' || bare === '..') return 'it must not be "." or ".."'
  if (Buffer.byteLength(bare) > 255) return 'it must not be longer than 255 bytes'
  return undefined
}

export const formats = {
  timezone: isTimeZone,
  regex: (text: string): boolean => regexProblem(text) === undefined,
  'index-name': (text: string): boolean => indexNameProblem(text) === undefined,
}
