/**
 * Reads rule files (YAML, see schema.json) into compiled rules: parse keeping positions → JSON
 * Schema validation with ajv (compiled once; one branch per rule type, unknown keys rejected,
 * defaults filled in) → checks that span several options → conditions compiled → durations to
 * milliseconds.
 *
 * A rule author's mistake never throws: every problem is returned as an `LwError` whose `where`
 * is `file:line:column`, whose message starts with the key path and whose hint says what to do
 * (with "did you mean" for misspelt keys, rule types and ECS field names). A rule with a problem
 * is left out; the others of the file still load. Nothing is interpolated: `${...}` is text.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type Ajv from 'ajv'
import type { ErrorObject, ValidateFunction } from 'ajv'
import ms from 'ms'
import { parse as parseTemplate } from 'mustache'
import { LineCounter, parseDocument, Scalar, type Document, type YAMLError } from 'yaml'
import { formatKeyPath, pointerToPath, SourceMap, valueAt, type PathSegment, type Target } from '../agent/config/positions'
import { prebuiltValidator, RULES_AJV_OPTIONS } from '../agent/config/prebuilt'
import { closest } from '../agent/config/suggest'
import { LwError, type LwCode } from '../agent/errors'
import type { CompiledRule } from './compiled'
import { compileCondition, FIELD_TESTS, type ConditionProblem, type ConditionResult } from './condition'
import { suggestField } from './fields'
import type { CompiledCondition, ConditionSpec, MatchSpec, Rule, RuleType } from './model'
import { compileQuery, parseQuery } from './query'
import schema from './schema.json'
import { TYPE_WORDS, boundWords, listWords } from '../agent/config/words'

export interface LoadResult {
  /** The rules that loaded, in file order (files sorted by name within a directory). */
  rules: CompiledRule[]
  /** Every problem found, ordered by file, line and column. Empty when all is well. */
  problems: LwError[]
  /** The rule files read. */
  files: string[]
}

/**
 * Loads every rule file in `paths` (files, or directories searched recursively for *.yaml and
 * *.yml, leaving out *.test.yaml rule-test files and dot-files). Rule ids must be unique across
 * all of them.
 */
export function loadRules(paths: readonly string[]): LoadResult {
  const listed = ruleFiles(paths)
  const rules: CompiledRule[] = []
  const problems = [...listed.problems]
  const seen = new Map<string, string>()
  const ahead = readAheadFiles()
  for (const file of listed.files) {
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (err) {
      problems.push(readProblem(file, err))
      continue
    }
    const loaded = loadFile(text, file, ahead[path.basename(file)])
    problems.push(...loaded.problems)
    takeUnique(loaded.rules, seen, rules, problems)
  }
  return { rules, problems: sortProblems(problems), files: listed.files }
}

/** Loads the rules of one file's text; `file` names it in messages. Ids are checked for duplicates within the text only. */
export function loadRuleText(text: string, file: string, ahead?: ReadAhead): { rules: CompiledRule[]; problems: LwError[] } {
  const loaded = loadFile(text, file, ahead)
  const rules: CompiledRule[] = []
  const problems = [...loaded.problems]
  takeUnique(loaded.rules, new Map(), rules, problems)
  return { rules, problems: sortProblems(problems) }
}

/** Adds the rules whose id was not taken yet (`seen`: id → where); a repeated id is a problem. */
function takeUnique(located: Located[], seen: Map<string, string>, rules: CompiledRule[], problems: LwError[]): void {
  for (const { compiled, idWhere } of located) {
    const first = seen.get(compiled.rule.id)
    if (first !== undefined) {
      problems.push(new LwError('LW_RULE_DUPLICATE_ID', `${idWhere.keyPath}: "${compiled.rule.id}" is already the id of the rule at ${first}`,
        { hint: 'Rule ids must be unique across all rule files: rename one of them.', where: idWhere.where }))
      continue
    }
    seen.set(compiled.rule.id, idWhere.where)
    rules.push(compiled)
  }
}

/** The rule files `paths` stand for, sorted within each directory; a path that cannot be read is a problem. */
export function ruleFiles(paths: readonly string[]): { files: string[]; problems: LwError[] } {
  const files: string[] = []
  const problems: LwError[] = []
  const taken = new Set<string>()
  const add = (file: string): void => {
    const resolved = path.resolve(file)
    if (taken.has(resolved)) return
    taken.add(resolved)
    files.push(file)
  }
  const walk = (dir: string): void => {
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    } catch (err) {
      problems.push(readProblem(dir, err))
      return
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (isRuleFileName(entry.name)) add(full)
    }
  }
  for (const given of paths) {
    try {
      if (fs.statSync(given).isDirectory()) walk(given)
      else add(given)
    } catch (err) {
      problems.push(readProblem(given, err))
    }
  }
  return { files, problems }
}

/** *.yaml and *.yml, except the rule-test files (*.test.yaml) that sit beside the packs. */
export function isRuleFileName(name: string): boolean {
  return /\.ya?ml$/i.test(name) && !/\.test\.ya?ml$/i.test(name)
}

function readProblem(file: string, err: unknown): LwError {
  const code = (err as NodeJS.ErrnoException).code
  const what = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'no permission to read it' : `cannot be read (${code ?? String(err)})`
  return new LwError('LW_RULE_READ', `${file}: ${what}`, {
    hint: 'Give a rule file (.yaml) or a directory of them.',
    where: file,
    cause: err,
  })
}

function sortProblems(problems: LwError[]): LwError[] {
  const unique = new Map<string, LwError>()
  for (const problem of problems) unique.set(problem.format(), problem)
  const place = (p: LwError): [string, number, number] => {
    const match = /^(.*):(\d+):(\d+)$/.exec(p.where ?? '')
    return match === null ? [p.where ?? '', 0, 0] : [match[1]!, Number(match[2]), Number(match[3])]
  }
  // Files keep the order they were read in; within a file, by position.
  const fileOrder = new Map<string, number>()
  for (const problem of unique.values()) {
    const [file] = place(problem)
    if (!fileOrder.has(file)) fileOrder.set(file, fileOrder.size)
  }
  return [...unique.values()].sort((a, b) => {
    const [fa, la, ca] = place(a)
    const [fb, lb, cb] = place(b)
    return fileOrder.get(fa)! - fileOrder.get(fb)! || la - lb || ca - cb
  })
}

// ── one file ─────────────────────────────────────────────────────────────────────────────────

interface Located {
  compiled: CompiledRule
  idWhere: { where: string; keyPath: string }
}

class Report {
  readonly problems: LwError[] = []
  private parsed: { doc: Document; source: SourceMap } | undefined
  /** Every position where() gave, `line:column` by positionKey, when recording for the cache. */
  recorded: Record<string, string> | undefined

  /**
   * `parsed` is the text's YAML when it was parsed; without it the text is parsed the first time
   * a position is needed that `known` (positions recorded at build time) does not have.
   */
  constructor(
    readonly file: string,
    private readonly text: string,
    parsed?: { doc: Document; source: SourceMap },
    private readonly known: Readonly<Record<string, string>> = {},
  ) {
    this.parsed = parsed
  }

  private get doc(): Document {
    return (this.parsed ??= parseYaml(this.text)).doc
  }

  private get source(): SourceMap {
    return (this.parsed ??= parseYaml(this.text)).source
  }

  where(at: readonly PathSegment[], target: Target = 'value'): string {
    const key = positionKey(at, target)
    let position = this.known[key]
    if (position === undefined) {
      const { line, column } = this.source.locate(at, target)
      position = `${line}:${column}`
    }
    if (this.recorded !== undefined) this.recorded[key] = position
    return `${this.file}:${position}`
  }

  add(code: LwCode, at: readonly PathSegment[], target: Target, what: string, hint?: string, subject: readonly PathSegment[] = at): void {
    const keyPath = subject.length === 0 ? '(top level)' : formatKeyPath(subject)
    this.problems.push(new LwError(code, `${keyPath}: ${what}`, { hint, where: this.where(at, target) }))
  }

  addAt(code: LwCode, offset: number, what: string, hint: string): void {
    const { line, column } = this.source.at(offset)
    this.problems.push(new LwError(code, what, { hint, where: `${this.file}:${line}:${column}` }))
  }

  /** A problem `offset` characters into the text value at `at` (a query string), located in the file. */
  addInValue(code: LwCode, at: readonly PathSegment[], offset: number, what: string, hint: string): void {
    const node = this.doc.getIn(at, true)
    const start = node instanceof Scalar ? sourceOffset(node, offset, this.text) : undefined
    if (start === undefined) return this.add(code, at, 'value', what, hint)
    const { line, column } = this.source.at(start)
    this.problems.push(new LwError(code, `${formatKeyPath(at)}: ${what}`, { hint, where: `${this.file}:${line}:${column}` }))
  }

  syntax(error: YAMLError): void {
    this.addAt('LW_RULE_SYNTAX', error.pos[0], error.message, SYNTAX_HINTS[error.code] ?? 'Check the indentation (spaces only) and the quoting around here.')
  }
}

/**
 * Where character `offset` of a scalar's value is in the file: exact for a value on one line,
 * plain or quoted (counting `''` and `\x` escapes as one character); the value's start otherwise.
 */
function sourceOffset(node: Scalar, offset: number, text: string): number | undefined {
  const range = node.range
  if (range == null) return undefined
  const written = text.slice(range[0], range[1])
  if (written.includes('\n')) return range[0]
  if (node.type === Scalar.PLAIN) return range[0] + offset
  if (node.type !== Scalar.QUOTE_SINGLE && node.type !== Scalar.QUOTE_DOUBLE) return range[0]
  let i = 1
  for (let n = 0; n < offset && i < written.length - 1; n++) {
    if (node.type === Scalar.QUOTE_SINGLE) i += written.startsWith("''", i) ? 2 : 1
    else if (written[i] === '\\') i += written[i + 1] === 'x' ? 4 : written[i + 1] === 'u' ? 6 : written[i + 1] === 'U' ? 10 : 2
    else i += 1
  }
  return range[0] + i
}

const SYNTAX_HINTS: Record<string, string> = {
  DUPLICATE_KEY: 'Each key may appear once in a mapping: remove or merge the repeated one.',
  TAB_AS_INDENT: 'Indent with spaces, not tabs.',
  BAD_INDENT: 'Align keys of the same mapping at the same column, using spaces.',
  MISSING_CHAR: 'Close the quote or bracket that was opened before this point.',
  BLOCK_AS_IMPLICIT_KEY: 'Put a nested mapping on its own indented lines, or quote a value that contains ": " (a query: \'a: 1 and b: 2\').',
  MULTIPLE_DOCS: 'Keep one YAML document in the file (remove the extra "---").',
}

/** The rule as written, after the schema filled in its defaults. */
interface RawRule {
  id: string
  name?: string
  description?: string
  type: RuleType
  severity: Rule['severity']
  enabled: boolean
  query?: string
  when?: ConditionSpec
  group_by: string[]
  labels: Record<string, string | number | boolean>
  route: string
  template?: string
  group_wait: Duration
  group_interval: Duration
  realert: Duration
  realert_backoff: number
  realert_max: Duration
  resolve?: boolean
  threshold?: number
  window?: Duration
  base?: MatchSpec
  min_count?: number
  end?: MatchSpec
  key?: string
  within?: Duration
  field?: string
  forget_after?: Duration
  regression_after?: Duration
}

/** "5m" or a number of milliseconds. */
type Duration = string | number

function parseYaml(text: string): { doc: Document; source: SourceMap } {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  return { doc, source: new SourceMap(doc, lines) }
}

/** A where() request as a key of recorded positions: `value /rules/0/id`. */
function positionKey(at: readonly PathSegment[], target: Target): string {
  return `${target} /${at.join('/')}`
}

/**
 * A rule file read ahead of time (scripts/prebuild-packs.js, for the built-in packs): its data as
 * YAML gives it, and the positions a clean load of it asks for (each rule id's). The packs are
 * read at every start, and their YAML takes a tenth of a second to parse where JSON takes a
 * millisecond. Used only for the very text it was made from (the hash says so); anything else,
 * and any position it lacks (a problem to report), is parsed as YAML.
 */
export interface ReadAhead {
  sha256: string
  data: unknown
  positions: Record<string, string>
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** What prebuild-packs stores for a rule file's text; undefined when the file has problems (those are reported from the YAML). */
export function readAhead(text: string, file: string): ReadAhead | undefined {
  const parsed = parseYaml(text)
  if (parsed.doc.errors.length > 0) return undefined
  const data: unknown = parsed.doc.toJS()
  const recorder = new Report(file, text, parsed)
  recorder.recorded = {}
  const loaded = loadFile(text, file, undefined, recorder)
  if (loaded.problems.length > 0) return undefined
  return { sha256: sha256(text), data, positions: recorder.recorded }
}

/** The read-ahead rule files next to this module, by file name; empty when there are none (a source checkout). */
function readAheadFiles(): Record<string, ReadAhead> {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, READ_AHEAD_FILE), 'utf8')) as Record<string, ReadAhead>
  } catch {
    return {}
  }
}

export const READ_AHEAD_FILE = 'packs-read-ahead.json'

function loadFile(text: string, file: string, ahead?: ReadAhead, recorder?: Report): { rules: Located[]; problems: LwError[] } {
  let data: unknown
  let report: Report
  if (ahead !== undefined && ahead.sha256 === sha256(text)) {
    report = new Report(file, text, undefined, ahead.positions)
    // Validation fills in defaults: each load gets its own copy.
    data = structuredClone(ahead.data)
  } else {
    const parsed = parseYaml(text)
    const { doc } = parsed
    report = recorder ?? new Report(file, text, parsed)
    // After a syntax error the parser is lost and what it reports next is mostly a consequence.
    const cascading = doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY')
    for (const error of [...cascading.slice(0, 1), ...doc.errors.filter((e) => e.code === 'DUPLICATE_KEY')]) report.syntax(error)
    if (doc.errors.length > 0) return { rules: [], problems: report.problems }
    try {
      data = doc.toJS()
    } catch (err) {
      report.addAt('LW_RULE_SYNTAX', 0, `the document cannot be read: ${(err as Error).message}`, 'Simplify the anchors and aliases.')
      return { rules: [], problems: report.problems }
    }
  }
  if (data === null || data === undefined) data = {}
  const failed = validate(data, report)
  const clean = (pointer: string): boolean => !failed.some((at) => at === pointer || at.startsWith(pointer + '/'))
  const list = isRecord(data) && Array.isArray(data['rules']) ? data['rules'] : []
  const rules: Located[] = []
  list.forEach((raw, i) => {
    if (!isRecord(raw)) return
    const at = ['rules', i]
    if (!clean(`/rules/${i}`)) {
      // The rule is left out, but its conditions are still checked, so that one run of
      // `rules check` shows every problem.
      for (const holder of [[], ['base'], ['end']]) {
        const spec = valueAt(raw, holder)
        const pointer = `/rules/${i}${holder.map((k) => '/' + k).join('')}`
        if (!isRecord(spec)) continue
        if (typeof spec['query'] === 'string' && clean(pointer + '/query')) compileMatch({ query: spec['query'] }, [...at, ...holder], report)
        else if (spec['when'] !== undefined && clean(pointer + '/when')) compileMatch({ when: spec['when'] as ConditionSpec }, [...at, ...holder], report)
        else if (spec['when'] !== undefined) walkFields(spec['when'], [...at, ...holder, 'when'], report)
      }
      return
    }
    const compiled = compileRule(raw as unknown as RawRule, at, report)
    if (compiled !== undefined) {
      const idPath = [...at, 'id']
      rules.push({ compiled, idWhere: { where: report.where(idPath, 'value'), keyPath: formatKeyPath(idPath) } })
    }
  })
  return { rules, problems: report.problems }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// ── JSON Schema validation ───────────────────────────────────────────────────────────────────

let compiledSchema: ValidateFunction | undefined

/** The validator generated at build time, else compiled on first use; kept either way. */
function validator(): ValidateFunction {
  compiledSchema ??= prebuiltValidator(path.join(__dirname, 'schema-validator.js')) ?? compileRulesSchema()
  return compiledSchema
}

/** The rules schema compiled by ajv. */
export function compileRulesSchema(options: Record<string, unknown> = {}): ValidateFunction {
  // ajv itself is loaded only here: the built agent validates with the generated code.
  const { default: AjvClass } = require('ajv') as { default: typeof Ajv }
  return new AjvClass({ ...RULES_AJV_OPTIONS, ...options }).compile(schema)
}

/**
 * The schema objects that make up the shape of a condition and of "query or when". Errors from
 * them (ajv's oneOf / dependencies / anyOf branches) say little; the data says more, so they are
 * explained from the data instead. Matched by identity: a recursive definition gets compiled on
 * its own, so its errors' schema paths do not name it.
 */
const condition = schema.definitions.condition
const CONDITION_SHAPE = new Set<unknown>([condition, ...condition.oneOf, condition.then, ...condition.then.anyOf])
const ONE_MATCH_SHAPE = new Set<unknown>([schema.definitions.oneMatch, ...schema.definitions.oneMatch.oneOf])
/** The keywords those shapes are made of; a wrong type or an unknown key in a condition is explained as such. */
const STRUCTURAL_KEYWORDS = new Set(['oneOf', 'anyOf', 'dependencies', 'required', 'if'])

/** Validates (filling defaults in) and reports; returns the instance paths (JSON pointers) with problems. */
function validate(data: unknown, report: Report): string[] {
  const check = validator()
  if (check(data)) return []
  const errors = check.errors ?? []
  const explained = new Set<string>()
  for (const error of errors) {
    const where = pointerToPath(error.instancePath)
    const structural = STRUCTURAL_KEYWORDS.has(error.keyword)
    const shape = !structural ? undefined
      : CONDITION_SHAPE.has(error.parentSchema) ? 'condition'
      : ONE_MATCH_SHAPE.has(error.parentSchema) ? 'oneMatch'
      : undefined
    if (shape !== undefined) {
      if (!explained.has(`${shape} ${error.instancePath}`)) {
        explained.add(`${shape} ${error.instancePath}`)
        if (shape === 'condition') explainCondition(where, valueAt(data, where), report)
        else explainOneMatch(where, valueAt(data, where), report)
      }
      continue
    }
    if (error.keyword === 'if') continue
    explain(error, data, report)
  }
  return errors.map((error) => error.instancePath)
}


function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 77) + '...' : value)
  return String(value)
}

const RULE_TYPES = schema.definitions.rule.oneOf.map((branch) => branch.title)

/** The schema branch (properties) of each rule type. */
function branchOf(type: string): Record<string, Record<string, unknown>> | undefined {
  const branch = schema.definitions.rule.oneOf.find((b) => b.title === type)
  return branch?.properties as Record<string, Record<string, unknown>> | undefined
}

function descriptionOf(property: Record<string, unknown> | undefined): string | undefined {
  if (property === undefined) return undefined
  if (typeof property['description'] === 'string') return property['description']
  const ref = property['$ref']
  if (typeof ref !== 'string') return undefined
  const target = (schema.definitions as Record<string, Record<string, unknown>>)[ref.replace('#/definitions/', '')]
  return typeof target?.['description'] === 'string' ? target['description'] : undefined
}

const DURATION_HINT = 'Write a number and a unit: "30s", "5m", "1h", "30d" (a plain number is milliseconds).'

/** One ajv error → a located problem a rule author can act on. */
function explain(error: ErrorObject, data: unknown, report: Report): void {
  const where = pointerToPath(error.instancePath)
  const value = valueAt(data, where)
  const key = where[where.length - 1]
  const parent = error.parentSchema as Record<string, unknown> | undefined

  if (/^#\/definitions\/duration(OrZero)?\//.test(error.schemaPath)) {
    if (/^[0.]+\s*[a-z]*$/i.test(String(value)) && error.schemaPath.startsWith('#/definitions/duration/')) {
      return report.add('LW_RULE_DURATION', where, 'value', 'must be longer than 0', DURATION_HINT)
    }
    return report.add('LW_RULE_DURATION', where, 'value', `expected a duration, got ${describe(value)}`, DURATION_HINT)
  }

  switch (error.keyword) {
    case 'discriminator': {
      if (!isRecord(value) || value['type'] === undefined) return // reported as a missing key or a wrong type
      const type = value['type']
      if (typeof type !== 'string') {
        return report.add('LW_RULE_TYPE', [...where, 'type'], 'value', `expected text, got ${describe(type)}`, `Write one of: ${RULE_TYPES.join(', ')}.`)
      }
      const suggestion = closest(type, RULE_TYPES)
      return report.add('LW_RULE_VALUE', [...where, 'type'], 'value', `${describe(type)} is not a rule type (${RULE_TYPES.join(', ')})`,
        suggestion !== undefined ? `Did you mean "${suggestion}"?` : `Use one of: ${RULE_TYPES.join(', ')}.`)
    }
    case 'additionalProperties':
      return unknownKey(String(error.params.additionalProperty), where, data, parent, report)
    case 'required': {
      const missing = String(error.params.missingProperty)
      const properties = (parent?.['properties'] ?? {}) as Record<string, Record<string, unknown>>
      // Keys required by an if/then (absence modes) are described in the rule type's branch.
      const type = (value as Record<string, unknown> | undefined)?.['type']
      const description = missing === 'type'
        ? `one of ${RULE_TYPES.join(', ')}.`
        : descriptionOf(properties[missing] ?? (typeof type === 'string' ? branchOf(type)?.[missing] : undefined))
      const place = where.length === 0 ? 'at the top level' : `under ${formatKeyPath(where)}`
      const hint = missing === 'rules' && where.length === 0
        ? 'A rule file is a mapping with a list of rules: "rules:" followed by "- id: ..." items.'
        : `Add "${missing}:" ${place}${description !== undefined ? `: ${description}` : '.'}`
      return report.add('LW_RULE_MISSING_KEY', where, 'key', 'required key is missing', hint, [...where, missing])
    }
    case 'type': {
      const wanted = String(error.params.type).split(',').map((t) => TYPE_WORDS[t] ?? t)
      let hint = descriptionOf(parent)
      if (key === 'when' || error.schemaPath.startsWith('#/definitions/condition/type')) {
        hint = Array.isArray(value)
          ? 'Wrap a list of conditions in all: [...] (every one holds) or any: [...] (at least one does).'
          : typeof value === 'string' ? 'A query string goes in query:, a structured condition in when:.' : hint
      }
      return report.add('LW_RULE_TYPE', where, 'value', `expected ${listWords(wanted)}, got ${describe(value)}`, hint)
    }
    case 'enum':
    case 'const': {
      const allowed = (error.keyword === 'enum' ? (error.params.allowedValues as unknown[]) : [error.params.allowedValue]).map(String)
      const suggestion = typeof value === 'string' ? closest(value, allowed) : undefined
      return report.add('LW_RULE_VALUE', where, 'value', `${describe(value)} is not one of: ${allowed.join(', ')}`,
        suggestion !== undefined ? `Did you mean "${suggestion}"?` : 'Use one of these.')
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const what = boundWords(error.keyword, error.params.limit)
      const hint = key === 'threshold' && parent?.['maximum'] === 1 ? 'A ratio threshold is a share: 0.05 for 5%.' : descriptionOf(parent)
      return report.add('LW_RULE_VALUE', where, 'value', `must be ${what}, got ${describe(value)}`, hint)
    }
    case 'minItems':
      return report.add('LW_RULE_VALUE', where, 'value', `must list at least ${String(error.params.limit)}`, descriptionOf(parent))
    case 'minLength':
      return report.add('LW_RULE_VALUE', where, 'value', 'must not be empty', descriptionOf(parent))
    case 'maxLength':
      return report.add('LW_RULE_VALUE', where, 'value', `must be at most ${String(error.params.limit)} characters long`, descriptionOf(parent))
    case 'uniqueItems':
      return report.add('LW_RULE_VALUE', where, 'value', `lists ${describe((value as unknown[])[Number(error.params.i)])} twice`, 'Remove the repeated item.')
    case 'pattern':
      if (key === 'id') {
        return report.add('LW_RULE_VALUE', where, 'value', `${describe(value)} is not a valid rule id`,
          `Use lowercase letters, digits, "_", "." and "-"${typeof value === 'string' ? `, e.g. "${suggestId(value)}"` : ''}.`)
      }
      return report.add('LW_RULE_VALUE', where, 'value', `${describe(value)} is not a field path`, 'A field path has no spaces, e.g. http.response.status_code.')
  }
  report.add('LW_RULE_VALUE', where, 'value', error.message ?? 'is not valid', descriptionOf(parent))
}

function suggestId(value: string): string {
  return value.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '') || 'my-rule'
}

/** Which rule types have `key` as an option. */
function typesWith(key: string): string[] {
  return RULE_TYPES.filter((type) => branchOf(type)?.[key] !== undefined)
}

function unknownKey(unknown: string, where: string[], data: unknown, parent: Record<string, unknown> | undefined, report: Report): void {
  const at = [...where, unknown]
  const allowed = Object.keys((parent?.['properties'] ?? {}) as object)
  const direct = closest(unknown, allowed)
  if (direct !== undefined) return report.add('LW_RULE_UNKNOWN_KEY', at, 'key', 'unknown key', `Did you mean "${direct}"?`)
  const type = (valueAt(data, where) as Record<string, unknown> | undefined)?.['type']
  if (typeof type === 'string' && allowed.includes('type')) {
    // An option of another rule type: say which, rather than "unknown".
    const others = typesWith(unknown)
    if (others.length > 0) {
      return report.add('LW_RULE_UNKNOWN_KEY', at, 'key', `not an option of ${type} rules (only of ${listWords(others)})`,
        `Remove it, or set type: ${others[0]}.`)
    }
    const anywhere = closest(unknown, RULE_TYPES.flatMap((t) => Object.keys(branchOf(t) ?? {})))
    if (anywhere !== undefined) {
      return report.add('LW_RULE_UNKNOWN_KEY', at, 'key', 'unknown key', `Did you mean "${anywhere}" (an option of ${listWords(typesWith(anywhere))} rules)?`)
    }
  }
  report.add('LW_RULE_UNKNOWN_KEY', at, 'key', 'unknown key', `Allowed here: ${allowed.join(', ')}.`)
}

const COMBINATORS = ['all', 'any', 'not']

/** Why a `when` (or a condition inside one) is not one of the forms a condition has. */
function explainCondition(where: string[], value: unknown, report: Report): void {
  if (!isRecord(value)) return // a wrong type, reported as such
  const keys = Object.keys(value)
  const kinds = [...COMBINATORS, 'field'].filter((k) => keys.includes(k))
  const tests = keys.filter((k) => (FIELD_TESTS as readonly string[]).includes(k) || k === 'ignore_case' || k === 'decode')
  if (kinds.length === 0 && tests.length > 0) {
    return report.add('LW_RULE_MISSING_KEY', where, 'key', `required key is missing: ${tests[0]} tests a field`,
      `Add "field:" with the field it tests, e.g. { field: url.path, ${tests[0]}: ... }.`, [...where, 'field'])
  }
  if (kinds.length === 0) {
    return report.add('LW_RULE_CONDITION', where, 'value', 'a condition needs one of all, any, not or field',
      'Write { field: ..., equals: ... }, or combine conditions with all: [...], any: [...] or not: {...}.')
  }
  if (kinds.length > 1) {
    return report.add('LW_RULE_CONDITION', [...where, kinds[1]!], 'key', `${kinds.join(' and ')} cannot be used together in one condition`,
      'Put each in a condition of its own and combine them with all: [...] or any: [...].')
  }
  const kind = kinds[0]!
  if (kind !== 'field' && tests.length > 0) {
    return report.add('LW_RULE_CONDITION', [...where, tests[0]!], 'key', `${tests[0]} cannot stand beside ${kind}`,
      `A condition with ${kind}: has nothing else; move ${tests[0]} into a field test.`)
  }
  // A misspelt test (`regexp:`) is reported as an unknown key, which says more than "no test".
  const misspelt = keys.some((k) => !(k in condition.properties))
  if (kind === 'field' && !misspelt && !FIELD_TESTS.some((t) => keys.includes(t))) {
    report.add('LW_RULE_CONDITION', where, 'value', `field ${describe(value['field'])} has no test`,
      `Add one of ${FIELD_TESTS.join(', ')} next to field:.`)
  }
}

function explainOneMatch(where: string[], value: unknown, report: Report): void {
  if (!isRecord(value)) return
  if ('query' in value && 'when' in value) {
    return report.add('LW_RULE_CONFLICT', [...where, 'when'], 'key', 'query and when cannot be used together',
      'Keep one: query (a Kibana query string) or when (a structured condition).')
  }
  report.add('LW_RULE_MISSING_KEY', where, 'key', 'required key is missing',
    `Add "query:" (a Kibana query string, e.g. 'http.response.status_code >= 500') or "when:" (a structured condition).`, [...where, 'query'])
}


// ── one valid rule → CompiledRule ────────────────────────────────────────────────────────────

function compileRule(raw: RawRule, at: PathSegment[], report: Report): CompiledRule | undefined {
  const before = report.problems.length
  const match = compileMatch(raw, at, report)
  const base = raw.base !== undefined ? compileMatch(raw.base, [...at, 'base'], report) : undefined
  const end = raw.end !== undefined ? compileMatch(raw.end, [...at, 'end'], report) : undefined

  for (const [i, field] of raw.group_by.entries()) checkField(field, [...at, 'group_by', i], report)
  if (raw.key !== undefined) checkField(raw.key, [...at, 'key'], report)
  if (raw.field !== undefined) checkField(raw.field, [...at, 'field'], report)

  if (raw.template !== undefined) {
    try {
      parseTemplate(raw.template)
    } catch (err) {
      report.add('LW_RULE_TEMPLATE', [...at, 'template'], 'value', `not a valid Mustache template: ${(err as Error).message}`,
        'Close every {{#section}} with {{/section}} and every {{ with }}; values are written {{fields.url.path}}.')
    }
  }
  crossCheck(raw, at, report)
  if (report.problems.length > before || match === undefined) return undefined

  const compiled: CompiledRule = { rule: normalise(raw, report.where([...at, 'id'], 'key')), match }
  if (base !== undefined) compiled.base = base
  if (end !== undefined) compiled.end = end
  return compiled
}

/** The condition of a rule, a base or an end: `query` or `when` (the schema made sure there is exactly one). */
function compileMatch(spec: MatchSpec, at: PathSegment[], report: Report): CompiledCondition | undefined {
  if (spec.query !== undefined) {
    const where = [...at, 'query']
    const parsed = parseQuery(spec.query)
    if (parsed.query !== undefined) {
      for (const field of parsed.query.fields) {
        const suggestion = suggestField(field.name)
        if (suggestion !== undefined) {
          report.addInValue('LW_RULE_FIELD', where, field.offset, `${field.name} is not an ECS field`, fieldHint(suggestion))
        }
      }
    }
    return located(compileQuery(spec.query), (p) => report.addInValue(p.code, where, p.offset ?? 0, p.message, p.hint))
  }
  const where = [...at, 'when']
  if (spec.when !== undefined) walkFields(spec.when, where, report)
  return located(compileCondition(spec.when as ConditionSpec),
    (p) => report.add(p.code, [...where, ...p.path], p.code === 'LW_RULE_UNKNOWN_KEY' ? 'key' : 'value', p.message, p.hint))
}

function located(result: ConditionResult, add: (p: ConditionProblem) => void): CompiledCondition | undefined {
  for (const problem of result.problems) add(problem)
  return result.condition
}

/** The `field:` of every field test in a structured condition, checked against ECS names. */
function walkFields(spec: unknown, at: PathSegment[], report: Report): void {
  if (!isRecord(spec)) return
  if (typeof spec['field'] === 'string') checkField(spec['field'], [...at, 'field'], report)
  for (const kind of ['all', 'any'] as const) {
    const list = spec[kind]
    if (Array.isArray(list)) list.forEach((child, i) => walkFields(child, [...at, kind, i], report))
  }
  if (spec['not'] !== undefined) walkFields(spec['not'], [...at, 'not'], report)
}

function checkField(field: string, at: PathSegment[], report: Report): void {
  const suggestion = suggestField(field)
  if (suggestion !== undefined) report.add('LW_RULE_FIELD', at, 'value', `${field} is not an ECS field`, fieldHint(suggestion))
}

function fieldHint(suggestion: string): string {
  return `Did you mean "${suggestion}"? (A field of your own belongs under a name that is not an ECS field set, e.g. labels.* or app.*.)`
}

function crossCheck(raw: RawRule, at: PathSegment[], report: Report): void {
  if (raw.type === 'absence' && raw.end !== undefined) {
    for (const option of ['window', 'min_count'] as const) {
      if (raw[option] === undefined) continue
      report.add('LW_RULE_CONFLICT', [...at, option], 'key', 'applies to a flatline absence rule (no end:), not to one with end:',
        'Remove it (a correlated rule uses key and within), or remove end: for a flatline rule.')
    }
  }
  if (raw.realert_backoff > 1 && msOf(raw.realert_max) < msOf(raw.realert)) {
    report.add('LW_RULE_CONFLICT', [...at, 'realert_max'], 'value', 'is shorter than realert, so the window could not grow',
      'Raise realert_max, or lower realert.')
  }
}

function msOf(value: Duration): number {
  return typeof value === 'number' ? value : Math.ceil(ms(value as ms.StringValue))
}

function normalise(raw: RawRule, source: string): Rule {
  const base = {
    id: raw.id,
    name: raw.name ?? raw.id,
    severity: raw.severity,
    enabled: raw.enabled,
    group_by: raw.group_by,
    labels: Object.fromEntries(Object.entries(raw.labels).map(([k, v]) => [k, String(v)])),
    route: raw.route,
    group_wait: msOf(raw.group_wait),
    group_interval: msOf(raw.group_interval),
    realert: msOf(raw.realert),
    realert_backoff: raw.realert_backoff,
    realert_max: msOf(raw.realert_max),
    resolve: raw.resolve ?? false,
    source,
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    ...(raw.query !== undefined ? { query: raw.query } : {}),
    ...(raw.when !== undefined ? { when: raw.when } : {}),
    ...(raw.template !== undefined ? { template: raw.template } : {}),
  }
  switch (raw.type) {
    case 'match':
      return { ...base, type: 'match' }
    case 'frequency':
      return { ...base, type: 'frequency', threshold: raw.threshold!, window: msOf(raw.window!) }
    case 'ratio':
      return { ...base, type: 'ratio', base: raw.base!, threshold: raw.threshold!, min_count: raw.min_count!, window: msOf(raw.window!) }
    case 'absence':
      return raw.end !== undefined
        ? { ...base, type: 'absence', end: raw.end, key: raw.key!, within: msOf(raw.within!) }
        : { ...base, type: 'absence', min_count: raw.min_count ?? 1, window: msOf(raw.window!) }
    case 'new_value': {
      const rule: Rule = { ...base, type: 'new_value', field: raw.field!, forget_after: msOf(raw.forget_after!) }
      if (raw.regression_after !== undefined) rule.regression_after = msOf(raw.regression_after)
      return rule
    }
  }
}

