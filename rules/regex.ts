/**
 * Regular expressions of rules run on every entry, on text an attacker controls (paths, user
 * agents, query strings). A backtracking engine can take exponential time on a pattern such as
 * `(a+)+$`, so every rule pattern runs on RE2 (the `re2` package, Google's automaton-based engine,
 * as a native addon): matching time is linear in the input, whatever the pattern. The price is
 * that RE2 has no lookaround and no backreferences; a pattern using them is refused at load with
 * a reason, instead of being run on a slower engine.
 *
 * A pattern that is only text, optionally anchored at the start (`sqlmap`, `^/health`), is run as
 * `includes` / `startsWith`, which is faster than any regex engine.
 */
import RE2 from 're2'

export interface SafeRegex {
  /** True when the pattern matches somewhere in `text` (unanchored, as RegExp#test). */
  test(text: string): boolean
  readonly source: string
  /** What runs it: `re2`, or `literal` when the pattern is plain text. */
  readonly engine: 're2' | 'literal'
}

export interface RegexOptions {
  ignoreCase?: boolean
}

export type RegexResult = { regex: SafeRegex; problem: undefined } | { regex: undefined; problem: string }

/** Characters with a meaning in a pattern; a backslash before any other punctuation makes it literal. */
const SPECIAL = new Set('\\^$.|?*+()[]{}')

/**
 * The text a pattern stands for when it has no operator at all, with whether it is anchored at
 * the start; undefined for a real pattern. `\.` and `\/` are literal characters; `\d` is not.
 */
function plainText(pattern: string): { text: string; anchored: boolean } | undefined {
  const anchored = pattern.startsWith('^')
  let text = ''
  for (let i = anchored ? 1 : 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '\\') {
      const next = pattern[i + 1]
      if (next === undefined || /[0-9A-Za-z]/.test(next)) return undefined
      text += next
      i++
    } else if (SPECIAL.has(c)) {
      return undefined
    } else {
      text += c
    }
  }
  return text.length > 0 ? { text, anchored } : undefined
}

/**
 * Literal text that any match must contain: one literal per top-level alternative (`sqlmap|nikto`
 * → sqlmap, nikto), the longest run of plain characters that no quantifier makes optional.
 * Undefined when some alternative has no such run of at least two characters, or the pattern has
 * constructs this reading does not follow (inline flags).
 */
export function requiredLiterals(pattern: string): readonly string[] | undefined {
  // Asked of a pattern by its test, by the rule index and by the index's gate test: read once.
  if (literalsRead.has(pattern)) return literalsRead.get(pattern)
  if (literalsRead.size >= SHARED_MAX) literalsRead.clear()
  const found = readLiterals(pattern)
  literalsRead.set(pattern, found)
  return found
}

const literalsRead = new Map<string, readonly string[] | undefined>()

function readLiterals(pattern: string): string[] | undefined {
  if (pattern.includes('(?')) return undefined
  const branches: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '\\') i++
    else if (c === '[') i = classEnd(pattern, i)
    else if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === '|' && depth === 0) {
      branches.push(pattern.slice(start, i))
      start = i + 1
    }
  }
  branches.push(pattern.slice(start))
  const literals: string[] = []
  for (const branch of branches) {
    const literal = longestRun(branch)
    if (literal === undefined || literal.length < 2) return undefined
    literals.push(literal)
  }
  return literals
}

/** Index of the `]` that closes the class opened at `open`. */
function classEnd(pattern: string, open: number): number {
  let i = open + 1
  if (pattern[i] === '^') i++
  if (pattern[i] === ']') i++
  for (; i < pattern.length; i++) {
    if (pattern[i] === '\\') i++
    else if (pattern[i] === ']') return i
  }
  return pattern.length
}

/** The longest run of literal characters in one alternative, outside groups and classes. */
function longestRun(branch: string): string | undefined {
  let best = ''
  let run = ''
  const end = (): void => {
    if (run.length > best.length) best = run
    run = ''
  }
  for (let i = 0; i < branch.length; i++) {
    const c = branch[i]!
    let literal: string | undefined
    let width = 1
    if (c === '\\') {
      const next = branch[i + 1]
      if (next === undefined) return undefined
      literal = /[0-9A-Za-z]/.test(next) ? undefined : next
      width = escapeWidth(branch, i)
    } else if (c === '{') {
      // A counted quantifier `{2,5}`: its digits are not text of the match.
      const close = branch.indexOf('}', i)
      width = close === -1 ? 1 : close - i + 1
    } else if (c === '[') {
      width = classEnd(branch, i) - i + 1
    } else if (c === '(') {
      // A group may be optional or repeated: its text is not required as written.
      let depth = 0
      let j = i
      for (; j < branch.length; j++) {
        if (branch[j] === '\\') j++
        else if (branch[j] === '[') j = classEnd(branch, j)
        else if (branch[j] === '(') depth++
        else if (branch[j] === ')' && --depth === 0) break
      }
      width = j - i + 1
    } else if (!SPECIAL.has(c)) {
      literal = c
    }
    const quantifier = branch[i + width]
    if (literal !== undefined && (quantifier === '?' || quantifier === '*' || quantifier === '{')) {
      // Optional (or of unknown count): the run ends before it.
      end()
    } else if (literal !== undefined) {
      run += literal
      if (quantifier === '+') end()
    } else {
      end()
    }
    i += width - 1
  }
  end()
  return best.length > 0 ? best : undefined
}

/** Characters an escape at `at` spans: `\\x41`, `\\u0041`, `\\u{1F600}`, `\\p{L}`, `\\pL`, `\\cA`, `\\d`. */
function escapeWidth(pattern: string, at: number): number {
  const kind = pattern[at + 1]
  const braced = pattern[at + 2] === '{' ? pattern.indexOf('}', at) : -1
  if (braced !== -1 && (kind === 'x' || kind === 'u' || kind === 'p' || kind === 'P')) return braced - at + 1
  if (kind === 'x') return 4
  if (kind === 'u') return 6
  if (kind === 'p' || kind === 'P' || kind === 'c') return 3
  return 2
}

/** RE2's own words for what it cannot do, said in terms of what to change. */
function explain(message: string): string {
  if (/invalid perl operator: \(\?<?[=!]/.test(message)) {
    return 'lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported, because RE2 guarantees linear time'
  }
  if (/invalid escape sequence: \\[1-9]/.test(message)) {
    return 'backreferences (\\1 ...) are not supported, because RE2 guarantees linear time'
  }
  return message
}

/** Only ASCII: lower-casing it is exact, so a lower-case literal check cannot miss a case-insensitive match. */
const ASCII = /^[\x00-\x7f]*$/

function escapeLiteral(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** RE2 objects kept for reuse, by flags and pattern; started over when this many are kept. */
const SHARED_MAX = 2000
const shared = new Map<string, RE2>()

/**
 * One RE2 object per pattern and flags, however many tests use it. Rules share patterns (the
 * security pack tests each of its patterns in the path, the query, the user agent and the
 * referrer), and every RE2 object keeps its own compiled program and DFA cache, which grows with
 * the texts it sees. A test leaves the object as it was (no global or sticky flag), so one serves
 * them all. Throws what RE2 throws for a pattern it refuses.
 */
function sharedRe2(pattern: string, flags: string): RE2 {
  const key = flags + '/' + pattern
  let re = shared.get(key)
  if (re === undefined) {
    re = new RE2(pattern, flags)
    if (shared.size >= SHARED_MAX) shared.clear()
    shared.set(key, re)
  }
  return re
}

/**
 * Compiles `pattern` (JavaScript syntax; RE2 also takes inline flags such as `(?i)` and `(?s)`).
 * Never throws: a pattern that does not compile, or needs backtracking, comes back as `problem`.
 *
 * Each call into RE2 costs the conversion of the text to UTF-8 (about 0.7 µs for a user agent),
 * twenty times a JavaScript regex; most text a rule sees does not match. So when every match must
 * contain one of a few literals (`sqlmap|nikto`, `union\s+select`), a plain `includes` runs first
 * and RE2 only on text that has one.
 */
export function compileRegex(pattern: string, options: RegexOptions = {}): RegexResult {
  const ignoreCase = options.ignoreCase === true
  const plain = ignoreCase ? undefined : plainText(pattern)
  if (plain !== undefined) {
    const { text, anchored } = plain
    const test = anchored ? (s: string): boolean => s.startsWith(text) : (s: string): boolean => s.includes(text)
    return { regex: { test, source: pattern, engine: 'literal' }, problem: undefined }
  }
  let re: RE2
  try {
    re = sharedRe2(pattern, ignoreCase ? 'iu' : 'u')
  } catch (err) {
    return { regex: undefined, problem: explain((err as Error).message) }
  }
  // Each call into RE2 converts the text to UTF-8 first. Answers per text are remembered one
  // level up, by the field test (condition.ts), which also covers decoding and the prefilter.
  const run = (s: string): boolean => re.test(s)
  const found = requiredLiterals(pattern)
  if (found === undefined) return { regex: { test: run, source: pattern, engine: 're2' }, problem: undefined }
  // One pass over the text for all the literals: an alternation of plain literals, which a
  // backtracking engine runs in linear time (nothing to backtrack into), in place of one
  // `includes` (and a lower-cased copy) per literal.
  const prefilter = new RegExp(found.map(escapeLiteral).join('|'), ignoreCase ? 'i' : '')
  const test = ignoreCase
    ? (s: string): boolean => (ASCII.test(s) ? prefilter.test(s) : true) && run(s)
    : (s: string): boolean => prefilter.test(s) && run(s)
  return { regex: { test, source: pattern, engine: 're2' }, problem: undefined }
}
