/**
 * A Kibana-style query string (`query:` in a rule) → the same ConditionSpec a `when:` is written
 * as → compileCondition. One compiler behind both forms, so they cannot disagree.
 *
 * The boolean structure (AND / OR / NOT / `-`, implicit AND, parentheses) is parsed by `liqe`, a
 * Lucene-syntax parser. liqe's own reading of values does not suit log data: it cannot take an IP
 * address, a path (`/health*`, read as the start of a regex), `%27`, a date, `a:(x OR y)` or an
 * open range (`[500 TO *]`); it wants the operators in capitals and `field:>=500`, where Kibana
 * users write `and`, `not`, `field >= 500`; and it groups `a OR b AND c` as `(a OR b) AND c`. So
 * a small lexer here reads fields and values the way Kibana (KQL) and Lucene write them and hands
 * liqe the structure only, each term as a placeholder `fN:vN`; the tree liqe returns is then
 * regrouped so that AND binds tighter than OR, as in Kibana and Elasticsearch.
 *
 * What a term means (KQL semantics over the values of one entry):
 *   field:value        equal (500 also equals the text "500"); an array field: one element equal
 *   field:pre*  *mid*  prefix / contains; other wildcards (`*`, `?`) run as an anchored RE2 regex
 *   field:*            the field exists
 *   field:"a b*"       equal to the text exactly, no wildcards
 *   field:/re/i        RE2 regex, unanchored (flags i, m, s)
 *   field >= 500       also `field:>=500`, `>`, `<`, `<=`; `field:[400 TO 499]`, `{..}` exclusive, `*` open
 *   field:(a or b)     the same field with several values
 *   word  "a phrase"   no field: `message` contains it, ignoring case
 * A backslash makes the next character literal (`\*`, `\(`, `\ `).
 */
import { parse, type LiqeQuery } from 'liqe'
import { compileCondition, type ConditionProblem, type ConditionResult } from './condition'
import type { ConditionSpec, FieldTestSpec } from './model'

export interface QueryField {
  name: string
  /** Offset of the field name in the query text. */
  offset: number
}

export interface ParsedQuery {
  spec: ConditionSpec
  /** Every field the query names, where it names it (for "did you mean" on misspelt ones). */
  fields: QueryField[]
}

export type QueryParseResult = { query: ParsedQuery; problems: [] } | { query: undefined; problems: ConditionProblem[] }

/** The field a term with no field searches. */
export const DEFAULT_FIELD = 'message'

const SYNTAX_HINT = 'Write field:value terms joined by and / or / not, e.g. \'http.response.status_code >= 500 and not url.path: /health*\'; quote values with spaces or parentheses.'

/**
 * Parsed queries by text: the loader, the compiler and the rule index each need a rule's query,
 * and parsing (liqe is an Earley parser) is the slow part of loading 1,000 rules. Bounded: cleared
 * when full, which only costs parsing again.
 */
const parsed = new Map<string, QueryParseResult>()
const PARSED_MAX = 10_000

/**
 * Parses `text` into a ConditionSpec; every problem carries the offset in `text` where it is.
 * The same text gives the same (shared, not to be modified) result.
 */
export function parseQuery(text: string): QueryParseResult {
  let result = parsed.get(text)
  if (result === undefined) {
    if (parsed.size >= PARSED_MAX) parsed.clear()
    result = parseUncached(text)
    parsed.set(text, result)
  }
  return result
}

function parseUncached(text: string): QueryParseResult {
  const lexer = new Lexer(text)
  try {
    lexer.sequence(undefined, undefined)
  } catch (err) {
    if (err instanceof QuerySyntax) return { query: undefined, problems: [problem(err.offset, err.message, err.hint)] }
    throw err
  }
  if (lexer.terms.length === 0) return { query: undefined, problems: [problem(0, 'the query is empty', SYNTAX_HINT)] }

  let ast: LiqeQuery
  try {
    ast = parse(lexer.canonical())
  } catch (err) {
    return { query: undefined, problems: [lexer.liqeProblem(err)] }
  }
  const offsets = new Map<object, number>()
  const built = toSpec(ast, lexer, offsets)
  if ('problem' in built) return { query: undefined, problems: [built.problem] }
  specOffsets.set(built, offsets)
  const fields = lexer.terms.filter((t) => t.field !== undefined).map((t) => ({ name: t.field!, offset: t.fieldAt }))
  return { query: { spec: built, fields }, problems: [] }
}

/** parseQuery, then compileCondition; problems of either carry their offset in `text`. */
export function compileQuery(text: string): ConditionResult {
  const result = parseQuery(text)
  if (result.query === undefined) return { condition: undefined, problems: result.problems }
  const spec = result.query.spec
  const compiled = compileCondition(spec)
  if (compiled.condition !== undefined) return compiled
  const offsets = specOffsets.get(spec)
  return {
    condition: undefined,
    problems: compiled.problems.map((p) => ({ ...p, path: [], offset: offsetAlong(spec, p.path, offsets) })),
  }
}

function problem(offset: number, message: string, hint: string): ConditionProblem {
  return { code: 'LW_RULE_QUERY', path: [], offset, message, hint }
}

class QuerySyntax extends Error {
  constructor(readonly offset: number, message: string, readonly hint: string = SYNTAX_HINT) {
    super(message)
  }
}

/** The term spec objects built from a query, with the offset each came from. */
const specOffsets = new WeakMap<ConditionSpec, Map<object, number>>()

function offsetAlong(spec: ConditionSpec, path: readonly (string | number)[], offsets: Map<object, number> | undefined): number {
  let node: unknown = spec
  let offset = 0
  for (const segment of path) {
    const found = offsets?.get(node as object)
    if (found !== undefined) offset = found
    if (typeof node !== 'object' || node === null) break
    node = (node as Record<string, unknown>)[String(segment)]
  }
  return offsets?.get(node as object) ?? offset
}

// ── the lexer: KQL / Lucene terms → placeholders for liqe ────────────────────────────────────

type Comparison = 'gt' | 'gte' | 'lt' | 'lte'

type Value =
  | { kind: 'word'; raw: string }
  | { kind: 'quoted'; text: string }
  | { kind: 'regex'; pattern: string; flags: string }
  | { kind: 'compare'; op: Comparison; bound: Value }
  | { kind: 'range'; lower: Value | undefined; upper: Value | undefined; lowerInclusive: boolean; upperInclusive: boolean }

interface Term {
  field: string | undefined
  fieldAt: number
  value: Value
  at: number
}

/** A piece of the text handed to liqe, with where in the query it stands for. */
interface Piece {
  text: string
  at: number
}

const COMPARISONS: Record<string, Comparison> = { '>': 'gt', '>=': 'gte', '<': 'lt', '<=': 'lte' }

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r'
}

class Lexer {
  pos = 0
  readonly terms: Term[] = []
  private readonly pieces: Piece[] = []

  constructor(private readonly text: string) {}

  private peek(ahead = 0): string | undefined {
    return this.text[this.pos + ahead]
  }

  private skipSpace(): void {
    while (isSpace(this.peek())) this.pos++
  }

  private emit(text: string, at: number): void {
    this.pieces.push({ text, at })
  }

  canonical(): string {
    return this.pieces.map((p) => p.text).join(' ')
  }

  /** A liqe error, located at the query text it points into. */
  liqeProblem(err: unknown): ConditionProblem {
    const offset = typeof (err as { offset?: unknown }).offset === 'number' ? (err as { offset: number }).offset : -1
    // liqe points just past the token it could not take, or into it.
    let start = 0
    const at = offset < 0 ? -1 : this.pieces.findIndex((piece) => {
      const inside = offset >= start && offset <= start + piece.text.length
      start += piece.text.length + 1
      return inside
    })
    if (at === -1) {
      const last = this.pieces[this.pieces.length - 1]
      return problem(this.text.length, last !== undefined && /^(AND|OR|NOT)$/.test(last.text)
        ? `${this.text.slice(last.at, last.at + last.text.length)} at the end has no condition after it`
        : 'the query ends too early', SYNTAX_HINT)
    }
    const piece = this.pieces[at]!
    const written = /^[fv]\d+$/.test(piece.text) ? 'term' : JSON.stringify(this.text.slice(piece.at, piece.at + piece.text.length))
    const hint = written === 'term'
      ? 'Join two terms with and / or; a NOT goes right before a term or a parenthesis.'
      : 'Each and / or joins two conditions; not (or -) goes before one; parentheses must pair up.'
    return problem(piece.at, `unexpected ${written}`, hint)
  }

  /**
   * Terms and operators up to `close` (or the end). In a group `field:(a or b)`, `field` is set
   * and each bare value is a value of it.
   */
  sequence(field: { name: string; at: number } | undefined, close: { at: number } | undefined): void {
    for (;;) {
      this.skipSpace()
      const c = this.peek()
      const start = this.pos
      if (c === undefined) {
        if (close !== undefined) throw new QuerySyntax(close.at, 'this "(" is never closed', 'Add the missing ")".')
        return
      }
      if (c === ')') {
        if (close === undefined) throw new QuerySyntax(start, 'this ")" closes nothing', 'Remove it, or add the "(" it belongs to.')
        this.pos++
        this.emit(')', start)
        return
      }
      if (c === '(') {
        this.pos++
        this.emit('(', start)
        this.sequence(field, { at: start })
        continue
      }
      if ((c === '-' || c === '!') && this.peek(1) !== undefined && !isSpace(this.peek(1))) {
        this.pos++
        this.emit('NOT', start)
        continue
      }
      if (field !== undefined) {
        const operator = /^(and|or|not)(?=[\s(]|$)/i.exec(this.text.slice(this.pos, this.pos + 4))
        if (operator !== null) {
          this.pos += operator[1]!.length
          this.emit(operator[1]!.toUpperCase(), start)
          continue
        }
        this.addTerm(field.name, field.at, this.value(field.name), start)
        continue
      }
      this.term()
    }
  }

  /** A term at the top level: `field:value`, `field >= value`, an operator, or a value with no field. */
  private term(): void {
    const start = this.pos
    let name: string
    let named: boolean
    if (this.peek() === '"' || this.peek() === "'") {
      name = this.quoted()
      named = true
    } else {
      name = this.word((ch) => ch === ':' || ch === '<' || ch === '>')
      named = false
    }
    const afterName = this.pos
    this.skipSpace()
    const next = this.peek()
    if (next === ':') {
      this.pos++
      const field = named ? name : unescape(name)
      this.fieldValue(field, start)
      return
    }
    if (next === '<' || next === '>') {
      const op = this.comparison()
      this.skipSpace()
      const field = named ? name : unescape(name)
      const bound = this.plainValue(field)
      this.addTerm(field, start, { kind: 'compare', op, bound }, start)
      return
    }
    this.pos = afterName
    if (!named && /^(and|or|not)$/i.test(name)) {
      this.emit(name.toUpperCase(), start)
      return
    }
    const value: Value = named ? { kind: 'quoted', text: name } : { kind: 'word', raw: name }
    this.addTerm(undefined, start, value, start)
  }

  /** After `field:`: a value, a comparison, a range or a group of values. */
  private fieldValue(field: string, fieldAt: number): void {
    this.skipSpace()
    const start = this.pos
    const c = this.peek()
    if (c === '(') {
      this.pos++
      this.emit('(', start)
      this.sequence({ name: field, at: fieldAt }, { at: start })
      return
    }
    this.addTerm(field, fieldAt, this.value(field), start)
  }

  /** One value of `field`: a word, a quoted text, a regex, a range or a comparison. */
  private value(field: string): Value {
    this.skipSpace()
    const c = this.peek()
    if (c === '[' || c === '{') return this.range(field)
    if (c === '<' || c === '>') {
      const op = this.comparison()
      return { kind: 'compare', op, bound: this.plainValue(field) }
    }
    if (c === '=') this.pos++ // `field:=5`, Lucene-style equality
    if (this.peek() === '/') {
      const regex = this.regex()
      if (regex !== undefined) return regex
    }
    return this.plainValue(field)
  }

  private plainValue(field: string): Value {
    const c = this.peek()
    if (c === '"' || c === "'") return { kind: 'quoted', text: this.quoted() }
    if (c === undefined || isSpace(c) || c === ')' || c === '(') {
      throw new QuerySyntax(this.pos, `${field}: has no value`, `Write ${field}:value, or ${field}:* for "has any value"; quote a value with spaces.`)
    }
    return { kind: 'word', raw: this.word(() => false) }
  }

  private comparison(): Comparison {
    const two = this.text.slice(this.pos, this.pos + 2)
    const op = two === '>=' || two === '<=' ? two : this.text[this.pos]!
    this.pos += op.length
    this.skipSpace()
    return COMPARISONS[op]!
  }

  /** `[a TO b]`, `{a TO b}`, mixed brackets; `*` for an open end. */
  private range(field: string): Value {
    const start = this.pos
    const lowerInclusive = this.text[this.pos] === '['
    this.pos++
    this.skipSpace()
    const lower = this.rangeBound()
    this.skipSpace()
    if (!/^to$/i.test(this.text.slice(this.pos, this.pos + 2)) || !isSpace(this.text[this.pos + 2])) {
      throw new QuerySyntax(this.pos, `${field}: a range is written [low TO high]`, 'For example [400 TO 499], {0 TO 1] or [500 TO *].')
    }
    this.pos += 2
    this.skipSpace()
    const upper = this.rangeBound()
    this.skipSpace()
    const end = this.peek()
    if (end !== ']' && end !== '}') {
      throw new QuerySyntax(start, `${field}: this range is never closed`, 'End it with ] (inclusive) or } (exclusive).')
    }
    this.pos++
    return { kind: 'range', lower, upper, lowerInclusive, upperInclusive: end === ']' }
  }

  private rangeBound(): Value | undefined {
    const c = this.peek()
    if (c === '"' || c === "'") return { kind: 'quoted', text: this.quoted() }
    const raw = this.word((ch) => ch === ']' || ch === '}')
    return raw === '*' ? undefined : { kind: 'word', raw }
  }

  /** `/pattern/flags`, when it is one: a closing `/` followed by flags and the end of the term. */
  private regex(): Value | undefined {
    const start = this.pos
    for (let i = start + 1; i < this.text.length; i++) {
      const c = this.text[i]
      if (c === '\\') {
        i++
        continue
      }
      if (c !== '/') continue
      let end = i + 1
      while (end < this.text.length && /[a-z]/.test(this.text[end]!)) end++
      const after = this.text[end]
      if (after !== undefined && !isSpace(after) && after !== ')') return undefined // `/api/v1/*` is a path
      const flags = this.text.slice(i + 1, end)
      const unknown = [...flags].find((f) => !'ims'.includes(f))
      if (unknown !== undefined) throw new QuerySyntax(i + 1, `unknown regex flag "${unknown}"`, 'Flags are i (ignore case), m (multiline) and s (. matches newlines).')
      this.pos = end
      // A `\/` only keeps the slash from ending the literal.
      return { kind: 'regex', pattern: this.text.slice(start + 1, i).replace(/\\\//g, '/'), flags }
    }
    return undefined
  }

  /** A quoted text; `\` escapes the next character. */
  private quoted(): string {
    const quote = this.text[this.pos]!
    const start = this.pos
    let out = ''
    for (let i = start + 1; i < this.text.length; i++) {
      const c = this.text[i]!
      if (c === '\\' && i + 1 < this.text.length) {
        out += this.text[++i]
        continue
      }
      if (c === quote) {
        this.pos = i + 1
        return out
      }
      out += c
    }
    throw new QuerySyntax(start, `this ${quote} is never closed`, `Add the closing ${quote}.`)
  }

  /** Bare text up to a space, a parenthesis or `stop`, escapes kept (they matter for wildcards). */
  private word(stop: (c: string) => boolean): string {
    const start = this.pos
    while (this.pos < this.text.length) {
      const c = this.text[this.pos]!
      if (c === '\\' && this.pos + 1 < this.text.length) {
        this.pos += 2
        continue
      }
      if (isSpace(c) || c === '(' || c === ')' || stop(c)) break
      this.pos++
    }
    if (this.pos === start) throw new QuerySyntax(start, `unexpected ${JSON.stringify(this.text[start] ?? '')}`, SYNTAX_HINT)
    return this.text.slice(start, this.pos)
  }

  private addTerm(field: string | undefined, fieldAt: number, value: Value, at: number): void {
    const index = this.terms.length
    this.terms.push({ field, fieldAt, value, at })
    this.emit(field === undefined ? `v${index}` : `f${index}:v${index}`, at)
  }
}

/** `a\ b\*` → `a b*`. */
function unescape(raw: string): string {
  return raw.replace(/\\(.)/gs, '$1')
}

// ── liqe's tree → ConditionSpec ──────────────────────────────────────────────────────────────

type Built = ConditionSpec | { problem: ConditionProblem }

function toSpec(node: LiqeQuery, lexer: Lexer, offsets: Map<object, number>): Built {
  switch (node.type) {
    case 'ParenthesizedExpression':
      return toSpec(node.expression, lexer, offsets)
    case 'UnaryOperator': {
      const operand = toSpec(node.operand, lexer, offsets)
      return 'problem' in operand ? operand : { not: operand }
    }
    case 'LogicalExpression': {
      // liqe nests a chain left to right whatever the operators; read it back as a flat
      // sequence and group it again with AND binding tighter than OR.
      const operands: LiqeQuery[] = []
      const operators: Array<'AND' | 'OR'> = []
      flatten(node, operands, operators)
      const groups: ConditionSpec[][] = [[]]
      for (let i = 0; i < operands.length; i++) {
        if (i > 0 && operators[i - 1] === 'OR') groups.push([])
        const spec = toSpec(operands[i]!, lexer, offsets)
        if ('problem' in spec) return spec
        groups[groups.length - 1]!.push(spec)
      }
      const alls = groups.map((group): ConditionSpec => (group.length === 1 ? group[0]! : { all: group }))
      return alls.length === 1 ? alls[0]! : { any: alls }
    }
    case 'Tag': {
      const literal = node.expression.type === 'LiteralExpression' ? String(node.expression.value) : ''
      const term = lexer.terms[Number(literal.slice(1))]
      if (term === undefined) throw new Error(`query placeholder ${literal} was not produced by the lexer`)
      const built = termSpec(term)
      if (!('problem' in built)) offsets.set(built, term.at)
      return built
    }
    case 'EmptyExpression':
      return { problem: problem(0, 'the query is empty', SYNTAX_HINT) }
  }
}

function flatten(node: LiqeQuery, operands: LiqeQuery[], operators: Array<'AND' | 'OR'>): void {
  if (node.type !== 'LogicalExpression') {
    operands.push(node)
    return
  }
  flatten(node.left, operands, operators)
  operators.push(node.operator.operator === 'OR' ? 'OR' : 'AND')
  flatten(node.right, operands, operators)
}

const NUMBER = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/

/** A bound of a comparison or range: a number when it reads as one, else text. */
function boundOf(value: Value): number | string {
  if (value.kind === 'quoted') return value.text
  const text = value.kind === 'word' ? unescape(value.raw) : ''
  return NUMBER.test(text) ? Number(text) : text
}

function termSpec(term: Term): Built {
  const { value } = term
  const field = term.field ?? DEFAULT_FIELD
  const free = term.field === undefined
  switch (value.kind) {
    case 'quoted':
      return free ? { field, contains: value.text, ignore_case: true } : { field, equals: value.text }
    case 'regex': {
      const inline = [...value.flags].filter((f) => f !== 'i').join('')
      const spec: FieldTestSpec = { field, regex: inline === '' ? value.pattern : `(?${inline})${value.pattern}` }
      if (value.flags.includes('i') || free) spec.ignore_case = true
      return spec
    }
    case 'compare':
      return { field, [value.op]: boundOf(value.bound) }
    case 'range': {
      const spec: FieldTestSpec = { field }
      if (value.lower !== undefined) spec[value.lowerInclusive ? 'gte' : 'gt'] = boundOf(value.lower)
      if (value.upper !== undefined) spec[value.upperInclusive ? 'lte' : 'lt'] = boundOf(value.upper)
      if (value.lower === undefined && value.upper === undefined) spec.exists = true
      return spec
    }
    case 'word':
      return free ? freeWord(value.raw, term.at) : wordSpec(field, value.raw)
  }
}

/** A value with no field: `message` contains it, any case; wildcards make it a pattern. */
function freeWord(raw: string, at: number): Built {
  const pieces = wildcardPieces(raw)
  if (pieces === undefined) return { field: DEFAULT_FIELD, contains: unescape(raw), ignore_case: true }
  if (pieces.every((p) => p === '*')) {
    return { problem: problem(at, '"*" alone matches any entry, and says nothing about it', 'Name a field: service.name:* for "has a service name", or leave the wildcard out.') }
  }
  return { field: DEFAULT_FIELD, regex: (pieces.map(pieceRegex).join('')).replace(/^(\.\*)+|(\.\*)+$/g, ''), ignore_case: true }
}

function wordSpec(field: string, raw: string): FieldTestSpec {
  const pieces = wildcardPieces(raw)
  if (pieces === undefined) {
    const text = unescape(raw)
    if (raw === 'true' || raw === 'false') return { field, equals: raw === 'true' }
    if (raw === 'null') return { field, equals: null }
    return { field, equals: NUMBER.test(text) ? Number(text) : text }
  }
  const texts = pieces.filter((p) => p !== '*')
  if (texts.length === 0) return { field, exists: true }
  const [first, second, third] = pieces
  // The forms with a plain string test, no regex: pre*, *mid*.
  if (pieces.length === 2 && second === '*' && first !== '*' && first !== '?') return { field, prefix: first! }
  if (pieces.length === 3 && first === '*' && third === '*' && second !== '?') return { field, contains: second! }
  return { field, regex: `(?s)^${pieces.map(pieceRegex).join('')}$` }
}

/**
 * `a\*b*c?` → ['a*b', '*', 'c', '?']: literal runs and the wildcards between them; undefined when
 * there is no unescaped wildcard.
 */
function wildcardPieces(raw: string): string[] | undefined {
  const pieces: string[] = []
  let literal = ''
  let wild = false
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (c === '\\' && i + 1 < raw.length) {
      literal += raw[++i]
    } else if (c === '*' || c === '?') {
      wild = true
      if (literal !== '') pieces.push(literal)
      literal = ''
      // `**` is one `*`.
      if (!(c === '*' && pieces[pieces.length - 1] === '*')) pieces.push(c)
    } else {
      literal += c
    }
  }
  if (literal !== '') pieces.push(literal)
  return wild ? pieces : undefined
}

function pieceRegex(piece: string): string {
  if (piece === '*') return '.*'
  if (piece === '?') return '.'
  return piece.replace(/[\\^$.|?*+()[\]{}/]/g, '\\$&')
}
