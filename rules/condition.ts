/**
 * Compiles a structured condition (`when:`, see ConditionSpec in ./model) into a predicate, once,
 * at load. The predicate is what runs per entry, so it is built for that:
 * - fields are read through accessors compiled per path (./fields);
 * - numbers are compared as numbers, with no boxing or parsing of the expected value per call;
 * - text tests use `===`, `startsWith`, `includes` and Set lookups; only `regex` uses an engine,
 *   RE2, which runs in linear time (./regex);
 * - the children of `all` / `any` run cheapest first (the order cannot change the result).
 *
 * Values are compared the way log data needs: `500` equals the text `"500"` (JSON logs quote
 * numbers as often as not), an array field matches when one of its elements does, and a missing
 * field and `null` are the same thing ("no value", as in Elasticsearch).
 */
import type { PathSegment } from '../agent/config/positions'
import type { LwCode } from '../agent/errors'
import { compileField, decodeUrl } from './fields'
import type { CompiledCondition, ConditionSpec, FieldTestSpec, Predicate } from './model'
import { MEMO_TEXT, TextMemo } from './memo'
import { compileRegex } from './regex'

/** A problem found while compiling; `path` leads from the condition to the key at fault, `offset` into a query string. */
export interface ConditionProblem {
  code: LwCode
  path: PathSegment[]
  offset?: number
  message: string
  hint: string
}

export type ConditionResult =
  | { condition: CompiledCondition; problems: [] }
  | { condition: undefined; problems: ConditionProblem[] }

/** The tests a field test may have besides `field` and its two modifiers. */
export const FIELD_TESTS = ['equals', 'in', 'gt', 'gte', 'lt', 'lte', 'exists', 'contains', 'prefix', 'regex'] as const
const MODIFIERS = ['ignore_case', 'decode'] as const
const COMBINATORS = ['all', 'any', 'not'] as const

/** Compiles `spec`; never throws for a malformed condition: every problem is returned. */
export function compileCondition(spec: ConditionSpec): ConditionResult {
  const problems: ConditionProblem[] = []
  const node = compileNode(spec, [], problems)
  if (node === undefined || problems.length > 0) return { condition: undefined, problems }
  return { condition: { test: node.test, fields: node.fields, required: node.required }, problems: [] }
}

// ── the tree ─────────────────────────────────────────────────────────────────────────────────

interface Node {
  test: Predicate
  fields: string[]
  required: string[]
  /** A rough cost per call, to run cheap tests first. */
  cost: number
  /** A field test's test of one value of its field (see fieldValueTest). */
  value?: ValueTest
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function compileNode(spec: unknown, path: PathSegment[], problems: ConditionProblem[]): Node | undefined {
  if (!isRecord(spec)) {
    problems.push({ code: 'LW_RULE_CONDITION', path, message: 'a condition must be a mapping',
      hint: 'Write { field: ..., equals: ... } or combine conditions with all: [...], any: [...] or not: {...}.' })
    return undefined
  }
  const kinds = [...COMBINATORS, 'field'].filter((key) => key in spec)
  if (kinds.length !== 1) {
    problems.push({ code: 'LW_RULE_CONDITION', path,
      message: kinds.length === 0 ? 'a condition needs one of all, any, not or field' : `${kinds.join(' and ')} cannot be used together in one condition`,
      hint: kinds.length === 0
        ? 'Write { field: ..., equals: ... }, or combine conditions with all: [...], any: [...] or not: {...}.'
        : 'Put each in a condition of its own and combine them with all: [...] or any: [...].' })
    return undefined
  }
  const kind = kinds[0]
  if (kind === 'field') return compileFieldTest(spec as unknown as FieldTestSpec, path, problems)
  const extra = Object.keys(spec).filter((key) => key !== kind)
  if (extra.length > 0) {
    problems.push({ code: 'LW_RULE_CONDITION', path: [...path, extra[0]!], message: `${extra[0]} cannot stand beside ${kind}`,
      hint: `A condition with ${kind}: has nothing else; move ${extra[0]} into a field test.` })
    return undefined
  }
  if (kind === 'not') {
    const child = compileNode(spec['not'], [...path, 'not'], problems)
    if (child === undefined) return undefined
    const inner = child.test
    // A negation can be true whatever fields are missing, so it requires none.
    return { test: (entry) => !inner(entry), fields: child.fields, required: [], cost: child.cost }
  }
  const list = spec[kind]
  if (!Array.isArray(list) || list.length === 0) {
    problems.push({ code: 'LW_RULE_CONDITION', path: [...path, kind], message: `${kind} needs a list of at least one condition`,
      hint: `Write ${kind}: [ { field: ..., equals: ... }, ... ].` })
    return undefined
  }
  const children: Node[] = []
  list.forEach((item, i) => {
    const child = compileNode(item, [...path, kind, i], problems)
    if (child !== undefined) children.push(child)
  })
  if (children.length !== list.length) return undefined
  return kind === 'all' ? allOf(children) : anyOf(children)
}

function union(lists: string[][]): string[] {
  return [...new Set(lists.flat())]
}

function intersection(lists: string[][]): string[] {
  const [first, ...rest] = lists
  return first === undefined ? [] : first.filter((field) => rest.every((list) => list.includes(field)))
}

function byCost(nodes: Node[]): Predicate[] {
  return [...nodes].sort((a, b) => a.cost - b.cost).map((node) => node.test)
}

function allOf(children: Node[]): Node {
  const tests = byCost(children)
  const fields = union(children.map((c) => c.fields))
  const required = union(children.map((c) => c.required))
  const cost = children.reduce((sum, c) => sum + c.cost, 0)
  if (tests.length === 1) return { test: tests[0]!, fields, required, cost }
  if (tests.length === 2) {
    const [a, b] = tests as [Predicate, Predicate]
    return { test: (entry) => a(entry) && b(entry), fields, required, cost }
  }
  const test: Predicate = (entry) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(entry)) return false
    return true
  }
  return { test, fields, required, cost }
}

function anyOf(children: Node[]): Node {
  const tests = byCost(children)
  const fields = union(children.map((c) => c.fields))
  // One branch suffices, so only what every branch needs is needed.
  const required = intersection(children.map((c) => c.required))
  const cost = children.reduce((sum, c) => sum + c.cost, 0)
  if (tests.length === 1) return { test: tests[0]!, fields, required, cost }
  if (tests.length === 2) {
    const [a, b] = tests as [Predicate, Predicate]
    return { test: (entry) => a(entry) || b(entry), fields, required, cost }
  }
  const test: Predicate = (entry) => {
    for (let i = 0; i < tests.length; i++) if (tests[i]!(entry)) return true
    return false
  }
  return { test, fields, required, cost }
}

// ── field tests ──────────────────────────────────────────────────────────────────────────────

/** Tests one value that is present: a string, number or boolean (never an array, null or undefined). */
type ValueTest = (value: unknown) => boolean

type Scalar = string | number | boolean

function isScalar(value: unknown): value is Scalar {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
}

/** `"500"`, `-1.5`, `2e3`: text that is a number as written (not "", " 1", "0x10", "Infinity"). */
const NUMERIC = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/

/** A number written in a rule (a number, or text that reads as one), NaN otherwise. */
function writtenNumber(value: unknown): number {
  return typeof value === 'number' ? value : typeof value === 'string' && NUMERIC.test(value) ? Number(value) : NaN
}

/** A number from a field's text, NaN when it is not one; no regex on this path. */
function numberOf(text: string): number {
  if (text.length === 0) return NaN
  const c = text.charCodeAt(0)
  // Number() would accept " 5", "0x10", "Infinity" and "" (as 0); log values that look like that are not numbers.
  if (c !== 45 && c !== 46 && (c < 48 || c > 57)) return NaN
  const last = text.charCodeAt(text.length - 1)
  if (last < 48 || last > 57) return last === 46 ? +text : NaN
  if (text.length > 1 && (text.charCodeAt(1) === 120 || text.charCodeAt(1) === 88)) return NaN
  return +text
}

/** The forms one expected value matches in: as text, as a number, as a boolean. */
interface Expected {
  text: string
  number: number
  boolean: boolean | undefined
}

function expectedOf(value: Scalar, ignoreCase: boolean): Expected {
  const text = String(value)
  return {
    text: ignoreCase ? text.toLowerCase() : text,
    number: writtenNumber(value),
    boolean: typeof value === 'boolean' ? value : value === 'true' ? true : value === 'false' ? false : undefined,
  }
}

function equalsTest(value: Scalar, ignoreCase: boolean): ValueTest {
  const { text, number, boolean } = expectedOf(value, ignoreCase)
  return (v) => (typeof v === 'string' ? v === text : typeof v === 'number' ? v === number : v === boolean)
}

function inTest(values: Scalar[], ignoreCase: boolean): ValueTest {
  const texts = new Set<string>()
  const numbers = new Set<number>()
  const booleans = new Set<boolean>()
  for (const value of values) {
    const expected = expectedOf(value, ignoreCase)
    texts.add(expected.text)
    if (!Number.isNaN(expected.number)) numbers.add(expected.number)
    if (expected.boolean !== undefined) booleans.add(expected.boolean)
  }
  return (v) => (typeof v === 'string' ? texts.has(v) : typeof v === 'number' ? numbers.has(v) : booleans.has(v as boolean))
}

type Comparison = 'gt' | 'gte' | 'lt' | 'lte'

/**
 * A bound that is a number (or numeric text) compares numbers, and field text that reads as a
 * number; any other text bound (an ISO date) compares text with text.
 */
function compareTest(op: Comparison, bound: number | string): ValueTest {
  const numeric = writtenNumber(bound)
  if (!Number.isNaN(numeric)) {
    const n = numeric
    switch (op) {
      case 'gt': return (v) => (typeof v === 'number' ? v > n : typeof v === 'string' && numberOf(v) > n)
      case 'gte': return (v) => (typeof v === 'number' ? v >= n : typeof v === 'string' && numberOf(v) >= n)
      case 'lt': return (v) => (typeof v === 'number' ? v < n : typeof v === 'string' && numberOf(v) < n)
      case 'lte': return (v) => (typeof v === 'number' ? v <= n : typeof v === 'string' && numberOf(v) <= n)
    }
  }
  const s = String(bound)
  switch (op) {
    case 'gt': return (v) => typeof v === 'string' && v > s
    case 'gte': return (v) => typeof v === 'string' && v >= s
    case 'lt': return (v) => typeof v === 'string' && v < s
    case 'lte': return (v) => typeof v === 'string' && v <= s
  }
}

function both(a: ValueTest, b: ValueTest): ValueTest {
  return (v) => a(v) && b(v)
}

function allValues(tests: ValueTest[]): ValueTest {
  if (tests.length === 1) return tests[0]!
  if (tests.length === 2) return both(tests[0]!, tests[1]!)
  return (v) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(v)) return false
    return true
  }
}

function compileFieldTest(spec: FieldTestSpec, path: PathSegment[], problems: ConditionProblem[]): Node | undefined {
  const field = spec.field
  const at = (key: string): PathSegment[] => [...path, key]
  const before = problems.length
  if (typeof field !== 'string' || field.length === 0) {
    problems.push({ code: 'LW_RULE_CONDITION', path: at('field'), message: 'must be the name of a field',
      hint: 'Write the field path, e.g. field: http.response.status_code.' })
    return undefined
  }
  const unknown = Object.keys(spec).filter((key) => key !== 'field' && !(FIELD_TESTS as readonly string[]).includes(key) && !(MODIFIERS as readonly string[]).includes(key))
  for (const key of unknown) {
    problems.push({ code: 'LW_RULE_UNKNOWN_KEY', path: at(key), message: 'unknown key',
      hint: `A field test takes ${FIELD_TESTS.join(', ')}, ignore_case and decode.` })
  }
  if (!FIELD_TESTS.some((key) => spec[key] !== undefined)) {
    problems.push({ code: 'LW_RULE_CONDITION', path, message: `field ${field} has no test`,
      hint: `Add one of ${FIELD_TESTS.join(', ')} next to field:.` })
  }

  const ignoreCase = spec.ignore_case === true
  const decode = spec.decode === true
  /** Tests of the value as it is (numbers, regexes, and text when case matters). */
  const tests: ValueTest[] = []
  /** Text tests that ignore case: they see the value lower-cased, once. */
  const lowered: ValueTest[] = []
  const textTests = ignoreCase ? lowered : tests
  let cost = 1
  /** A test worth remembering per text (see `remembered`). */
  let costly = false
  /** The value may be absent: `exists: false`, `equals: null`, `in: [..., null]`. */
  let acceptsMissing = false
  /** Some test needs a value, so a missing field fails it. */
  let needsValue = false

  if (spec.exists !== undefined) {
    if (typeof spec.exists !== 'boolean') {
      problems.push({ code: 'LW_RULE_TYPE', path: at('exists'), message: 'expected true or false', hint: 'Write exists: true or exists: false.' })
    } else if (spec.exists) {
      needsValue = true
    } else {
      acceptsMissing = true
    }
  }
  if (spec.equals !== undefined) {
    if (spec.equals === null) acceptsMissing = true
    else if (isScalar(spec.equals)) { textTests.push(equalsTest(spec.equals, ignoreCase)); needsValue = true }
    else problems.push({ code: 'LW_RULE_TYPE', path: at('equals'), message: 'expected text, a number, true/false or null', hint: 'Use in: [...] to accept any of several values.' })
  }
  if (spec.in !== undefined) {
    if (!Array.isArray(spec.in) || spec.in.length === 0) {
      problems.push({ code: 'LW_RULE_TYPE', path: at('in'), message: 'expected a list of at least one value', hint: 'Write in: [GET, POST].' })
    } else {
      const values = spec.in.filter(isScalar)
      const nulls = spec.in.filter((v) => v === null).length
      if (values.length + nulls !== spec.in.length) {
        problems.push({ code: 'LW_RULE_TYPE', path: at('in'), message: 'expected a list of text, numbers, true/false or null', hint: 'Write in: [GET, POST].' })
      }
      if (nulls > 0) acceptsMissing = true
      if (values.length > 0) textTests.push(inTest(values, ignoreCase))
      if (nulls === 0) needsValue = true
    }
  }
  for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
    const bound = spec[op]
    if (bound === undefined) continue
    if (typeof bound !== 'number' && typeof bound !== 'string') {
      problems.push({ code: 'LW_RULE_TYPE', path: at(op), message: 'expected a number (or text, compared as text)', hint: `Write ${op}: 500.` })
      continue
    }
    tests.push(compareTest(op, bound))
    needsValue = true
  }
  for (const op of ['contains', 'prefix'] as const) {
    const text = spec[op]
    if (text === undefined) continue
    if (typeof text !== 'string' || text.length === 0) {
      problems.push({ code: 'LW_RULE_TYPE', path: at(op), message: 'expected non-empty text', hint: `Write ${op}: "..." (quote text with special characters).` })
      continue
    }
    const wanted = ignoreCase ? text.toLowerCase() : text
    textTests.push(op === 'contains'
      ? (v) => typeof v === 'string' && v.includes(wanted)
      : (v) => typeof v === 'string' && v.startsWith(wanted))
    cost += op === 'contains' ? 2 : 0
    needsValue = true
  }
  if (spec.regex !== undefined) {
    if (typeof spec.regex !== 'string' || spec.regex.length === 0) {
      problems.push({ code: 'LW_RULE_TYPE', path: at('regex'), message: 'expected a regular expression as text', hint: 'Write regex: \'^/admin\' (single quotes keep backslashes).' })
    } else {
      const compiled = compileRegex(spec.regex, { ignoreCase })
      if (compiled.regex === undefined) {
        problems.push({ code: 'LW_RULE_REGEX', path: at('regex'), message: `cannot be used: ${compiled.problem}`,
          hint: 'Rewrite the pattern without lookaround or backreferences (RE2 syntax), or use contains / prefix.' })
      } else {
        const regex = compiled.regex
        tests.push((v) => typeof v === 'string' && regex.test(v))
        cost += regex.engine === 're2' ? 4 : 1
        costly ||= regex.engine === 're2'
        needsValue = true
      }
    }
  }
  for (const modifier of MODIFIERS) {
    if (spec[modifier] !== undefined && typeof spec[modifier] !== 'boolean') {
      problems.push({ code: 'LW_RULE_TYPE', path: at(modifier), message: 'expected true or false', hint: `Write ${modifier}: true.` })
    }
  }
  if (problems.length > before) return undefined

  const read = compileField(field)
  let valueTest = prepared(tests.length > 0 ? allValues(tests) : undefined, lowered.length > 0 ? allValues(lowered) : undefined, decode)
  const exact = valueTest
  // A test that decodes or runs RE2 costs far more than looking its answer up: paths, user
  // agents and queries repeat, so the answer is remembered per text. Only those: a memo per test
  // is memory per rule, and a prefix or an equality is cheaper than the lookup anyway.
  if (valueTest !== undefined && (decode || costly)) valueTest = remembered(valueTest)
  if (decode) cost += 2
  // Read literally, a condition that accepts "no value" but also tests a value (`exists: false`
  // with `gt: 5`) is a contradiction; it is kept literal: it never matches a missing field.
  const whenMissing = acceptsMissing && !needsValue
  const absentOnly = spec.exists === false

  let test: Predicate
  if (valueTest === undefined) {
    // Only presence is tested: `exists: true` wants a value; `exists: false` and `equals: null` want none.
    const whenPresent = needsValue && !absentOnly
    test = (entry) => {
      const v = read(entry)
      return v === undefined || v === null ? whenMissing : whenPresent
    }
  } else {
    test = (entry) => {
      const v = read(entry)
      if (v === undefined || v === null) return whenMissing
      if (absentOnly) return false
      if (!Array.isArray(v)) return isScalar(v) && valueTest(v)
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i]
        if (isScalar(item) && valueTest(item)) return true
      }
      return false
    }
  }
  const node: Node = { test, fields: [field], required: whenMissing ? [] : [field], cost }
  if (exact !== undefined) node.value = absentOnly ? () => false : exact
  return node
}

/**
 * What a field test asks of one value of its field (decoding and case folding included), when it
 * tests the value at all: the rule index judges a text once with it for every rule gated on that
 * field, instead of only looking for the rules' literals in it. Undefined for a spec that does
 * not compile or only tests presence.
 */
export function fieldValueTest(spec: FieldTestSpec): ((value: Scalar) => boolean) | undefined {
  const problems: ConditionProblem[] = []
  const node = compileFieldTest(spec, [], problems)
  return problems.length === 0 ? node?.value : undefined
}

/** Text that an equality against it matches only as text: not a number or true/false, which also match those values. */
export function textOnly(value: unknown): value is string {
  return typeof value === 'string' && Number.isNaN(writtenNumber(value)) && value !== 'true' && value !== 'false'
}

/** `test`, answering text it has seen (up to MEMO_TEXT long) from a bounded memo. */
function remembered(test: ValueTest): ValueTest {
  const memo = new TextMemo<boolean>()
  return (v) => {
    if (typeof v !== 'string' || v.length > MEMO_TEXT) return test(v)
    let found = memo.get(v)
    if (found === undefined) memo.set(v, (found = test(v)))
    return found
  }
}

/**
 * The value test of a field test: decoding first (once, for every test), then the tests on the
 * value as it is, then those that ignore case on the value lower-cased (once). A regex with
 * ignore_case gets the value as it is: RE2 folds case itself, more exactly than toLowerCase.
 */
/** The last few lower-casings: many ignore_case tests read the same few fields of an entry. */
const MEMO = 4
const memoText: string[] = new Array<string>(MEMO).fill('')
const memoLower: string[] = new Array<string>(MEMO).fill('')
let memoNext = 0

function lowerCase(text: string): string {
  for (let i = 0; i < MEMO; i++) if (memoText[i] === text) return memoLower[i]!
  const lower = text.toLowerCase()
  memoText[memoNext] = text
  memoLower[memoNext] = lower
  memoNext = (memoNext + 1) % MEMO
  return lower
}

function prepared(raw: ValueTest | undefined, lowered: ValueTest | undefined, decode: boolean): ValueTest | undefined {
  let test: ValueTest | undefined
  if (raw !== undefined && lowered !== undefined) test = (v) => raw(v) && lowered(typeof v === 'string' ? lowerCase(v) : v)
  else if (lowered !== undefined) test = (v) => lowered(typeof v === 'string' ? lowerCase(v) : v)
  else test = raw
  if (test === undefined || !decode) return test
  const inner = test
  return (v) => inner(typeof v === 'string' ? decodeUrl(v) : v)
}

// ── for the rule index ───────────────────────────────────────────────────────────────────────

/** An equality a condition cannot be true without: `field` must hold a value whose key is in `keys`. */
export interface Equality {
  field: string
  keys: string[]
}

/**
 * The equalities every match of `spec` passes: field tests with `equals` / `in` (case-sensitive,
 * not decoded, no null) reached through `all`, or through `any` when every branch has one on the
 * same field (then any of their values will do). The rule index looks rules up by them instead
 * of running each predicate. Keys follow equalsTest: an expected value matches text equal to its
 * text and numbers equal to its number, so both forms are keys (`"5e2"` → 5e2, 500).
 */
export function mandatoryEqualities(spec: ConditionSpec): Equality[] {
  if ('all' in spec && Array.isArray(spec.all)) return spec.all.flatMap(mandatoryEqualities)
  if ('any' in spec && Array.isArray(spec.any)) {
    // `method: (HEAD or OPTIONS)`: every branch needs the same field to hold one of its values.
    const branches = spec.any.map(mandatoryEqualities)
    const fields = branches[0]?.map((e) => e.field).filter((field) => branches.every((b) => b.some((e) => e.field === field))) ?? []
    return [...new Set(fields)].map((field) => ({
      field,
      keys: [...new Set(branches.flatMap((b) => b.find((e) => e.field === field)!.keys))],
    }))
  }
  if (!('field' in spec) || spec.ignore_case === true || spec.decode === true) return []
  const values = spec.equals !== undefined ? [spec.equals] : spec.in
  if (values === undefined || !values.every(isScalar)) return []
  const keys = new Set<string>()
  for (const value of values as Scalar[]) {
    const expected = expectedOf(value, false)
    keys.add(expected.text)
    if (!Number.isNaN(expected.number)) keys.add(String(expected.number))
  }
  return [{ field: spec.field, keys: [...keys] }]
}

/** A numeric interval a field's value must lie in (as a number, or text that reads as one). */
export interface Range {
  field: string
  /** Lower bound, -Infinity for none; `low` itself is inside unless `lowOpen`. */
  low: number
  lowOpen: boolean
  high: number
  highOpen: boolean
}

/**
 * The ranges every match of `spec` lies in: field tests with numeric gt / gte / lt / lte that
 * must all hold (`status >= 500`). `any` and `not` give none, nor does a decoded field (its text
 * is decoded before it is compared).
 */
export function mandatoryRanges(spec: ConditionSpec): Range[] {
  if ('all' in spec && Array.isArray(spec.all)) {
    // Ranges on one field all hold: their intersection.
    const byField = new Map<string, Range>()
    for (const range of spec.all.flatMap(mandatoryRanges)) {
      const seen = byField.get(range.field)
      byField.set(range.field, seen === undefined ? range : intersect(seen, range))
    }
    return [...byField.values()]
  }
  if (!('field' in spec) || spec.decode === true) return []
  const range: Range = { field: spec.field, low: -Infinity, lowOpen: false, high: Infinity, highOpen: false }
  const gt = writtenNumber(spec.gt)
  const gte = writtenNumber(spec.gte)
  const lt = writtenNumber(spec.lt)
  const lte = writtenNumber(spec.lte)
  if (!Number.isNaN(gte)) range.low = gte
  if (!Number.isNaN(gt) && gt >= range.low) {
    range.low = gt
    range.lowOpen = true
  }
  if (!Number.isNaN(lte)) range.high = lte
  if (!Number.isNaN(lt) && lt <= range.high) {
    range.high = lt
    range.highOpen = true
  }
  return range.low === -Infinity && range.high === Infinity ? [] : [range]
}

function intersect(a: Range, b: Range): Range {
  const out = { ...a }
  if (b.low > out.low || (b.low === out.low && b.lowOpen)) {
    out.low = b.low
    out.lowOpen = b.lowOpen
  }
  if (b.high < out.high || (b.high === out.high && b.highOpen)) {
    out.high = b.high
    out.highOpen = b.highOpen
  }
  return out
}

/** A field's value as compared with a numeric bound: a number, or text that reads as one; NaN otherwise. */
export function numericValue(value: unknown): number {
  return typeof value === 'number' ? value : typeof value === 'string' ? numberOf(value) : NaN
}

/** The key a field's value is looked up by (see mandatoryEqualities); undefined for a value no equality matches. */
export function equalityKey(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}
