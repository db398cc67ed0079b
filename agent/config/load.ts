/**
 * Reads the YAML configuration into an `AgentConfig`: parse (keeping positions) → `${VAR}`
 * interpolation → JSON Schema validation with defaults (schema.json, compiled once) → checks that
 * span several options → normalisation (durations to ms, sizes to bytes, paths resolved against the
 * configuration file's directory).
 *
 * Every problem found on the way is reported, not only the first, as an `LwError` whose `where` is
 * `file:line:column`, whose message starts with the key path, and whose hint says what to do.
 * Values that came from the environment are never printed: the `${...}` expression is shown instead.
 */
import fs from 'node:fs'
import path from 'node:path'
import type Ajv from 'ajv'
import type { ErrorObject, ValidateFunction } from 'ajv'
import bytes from 'bytes'
import ms from 'ms'
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Scalar, type YAMLError } from 'yaml'
import { LwError, type LwCode } from '../errors'
import { formats, indexNameProblem, regexProblem } from './formats'
import { interpolate } from './interpolate'
import { CONFIG_AJV_OPTIONS, prebuiltValidator } from './prebuilt'
import { formatKeyPath, pathToPointer, pointerToPath, SourceMap, valueAt, type PathSegment, type Target } from './positions'
import schema from './schema.json'
import { closest } from './suggest'
import type { AgentConfig, FileInputConfig, InputFormat, MultilineConfig, RouteConfig } from './types'
import { TYPE_WORDS, boundWords, listWords } from './words'

// ── the YAML as written, after the schema filled in defaults ─────────────────────────────────

/** "2s" or a number of milliseconds. */
type Duration = string | number
/** "5MiB" or a number of bytes. */
type Size = string | number

interface RawMultiline {
  type: MultilineConfig['type']
  pattern?: string
  negate: boolean
  match: MultilineConfig['match']
  timeout: Duration
  max_lines: number
  max_bytes: Size
}

interface RawFileInput {
  type: 'file'
  paths: string | string[]
  exclude: string | string[]
  format: InputFormat
  start_position: FileInputConfig['start_position']
  timezone: string
  max_line_bytes: Size
  multiline?: RawMultiline
  dataset?: string
  fields: Record<string, string | number | boolean>
  scan_interval: Duration
  close_inactive: Duration
}

interface RawConfig {
  service: { name: string; environment?: string }
  state_dir: string
  inputs: RawFileInput[]
  elasticsearch: {
    hosts: string | string[]
    username?: string
    password?: string
    api_key?: string
    tls: { ca_file?: string; verify: boolean }
    index: string
    data_stream?: boolean
    batch: { max_docs: number; max_bytes: Size; interval: Duration }
    concurrency: number
    compression: boolean | 'auto'
    request_timeout: Duration
    retry: { initial: Duration; max: Duration }
    template: { name: string; shards: number; replicas: number; setup_on_start: boolean }
    dead_letter: { index: string }
  }
  limits: { memory_buffer: Size; max_open_files: number }
  checkpoint_interval: Duration
  shutdown_timeout: Duration
  log: { level: AgentConfig['log']['level'] }
  rules: { builtin: boolean | string[]; paths: string | string[]; disable: string[] }
  telegram?: { bot_token: string; api_root: string }
  routes: Record<string, { chats: RouteConfig['chats']; language: RouteConfig['language']; timezone: string; silent_below?: RouteConfig['silent_below'] }>
  kibana?: { url: string }
  alerts: { index: string; edit_window: Duration; edit_budget: number; per_rule_per_minute: number }
}

// ── public API ───────────────────────────────────────────────────────────────────────────────

/** Thrown by `loadConfig`: all the problems found, each a located `LwError` of its own. */
export class ConfigError extends LwError {
  readonly problems: readonly LwError[]

  constructor(file: string, problems: readonly LwError[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
    super('LW_CONFIG_INVALID', `${count} in the configuration:\n${problems.map((p) => p.format()).join('\n')}`, {
      where: file,
    })
    this.problems = problems
  }

  /** The summary line, then one line per problem (each carries its own code and place). */
  override format(): string {
    return `${this.where}: ${this.code}: ${this.message}`
  }
}

export type CheckResult = { config: AgentConfig; problems: [] } | { config: undefined; problems: LwError[] }

/** Reads and validates `file`; never throws for a problem of the configuration: they are returned. */
export function checkConfig(file: string, env: NodeJS.ProcessEnv = process.env): CheckResult {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    return { config: undefined, problems: [readProblem(file, err)] }
  }
  return checkConfigText(text, file, env)
}

/** Reads and validates `file`, or throws a `ConfigError` listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const result = checkConfig(file, env)
  if (result.config === undefined) throw new ConfigError(file, result.problems)
  return result.config
}

/** `file` names the text in messages and anchors relative paths. */
export function checkConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): CheckResult {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  const report = new Reporter(file, new SourceMap(doc, lines))

  // After a syntax error the parser is lost and what it reports next is mostly a consequence, so
  // only the first is shown. Duplicate keys and unknown tags are found on a sound parse: all shown.
  const cascading = doc.errors.filter((error) => error.code !== 'DUPLICATE_KEY')
  for (const error of [...cascading.slice(0, 1), ...doc.errors.filter((error) => error.code === 'DUPLICATE_KEY'), ...doc.warnings]) {
    report.syntax(error, text)
  }
  if (doc.errors.length > 0) return report.result()

  interpolateDocument(doc, text, env, report)
  if (report.stopped) return report.result()

  const data = toPlainData(doc, report)
  if (data === undefined) return report.result()
  const written: unknown = structuredClone(data)
  validate(data, report)
  crossCheck(data, written, path.resolve(path.dirname(file)), report)
  if (report.count > 0) return report.result()
  // The schema accepted `data` and filled in its defaults, so it has the RawConfig shape.
  return { config: normalise(data as unknown as RawConfig, path.resolve(file)), problems: [] }
}

// ── collecting problems ──────────────────────────────────────────────────────────────────────

class Reporter {
  private readonly problems: LwError[] = []
  /** Pointer → the scalar as written, for values that came from `${...}`. */
  readonly expressions = new Map<string, string>()
  /** Pointers whose interpolation failed; schema errors there would only repeat the problem. */
  readonly failed = new Set<string>()
  /** Set when the document cannot be turned into data (an alias to nothing). */
  stopped = false

  constructor(
    private readonly file: string,
    private readonly source: SourceMap,
  ) {}

  get count(): number {
    return this.problems.length
  }

  add(code: LwCode, where: readonly PathSegment[], target: Target, what: string, hint?: string, subject = where): void {
    if (this.failed.has(pathToPointer(subject))) return
    const { line, column } = this.source.locate(where, target)
    const keyPath = subject.length === 0 ? '(top level)' : formatKeyPath(subject)
    this.problems.push(new LwError(code, `${keyPath}: ${what}`, { hint, where: `${this.file}:${line}:${column}` }))
  }

  addAt(code: LwCode, offset: number, what: string, hint: string): void {
    const { line, column } = this.source.at(offset)
    this.problems.push(new LwError(code, what, { hint, where: `${this.file}:${line}:${column}` }))
  }

  syntax(error: YAMLError, text: string): void {
    const lineStart = text.lastIndexOf('\n', error.pos[0] - 1) + 1
    const lineEnd = text.indexOf('\n', lineStart)
    const line = text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd)
    // `{` and `}` end a plain value inside [ ] and { }: the usual cause when a line has ${...} in a flow collection.
    const hint = /[[{].*\$\{/.test(line) && error.code !== 'DUPLICATE_KEY'
      ? 'Inside [ ] or { }, quote values that contain ${...}: "${VAR}".'
      : SYNTAX_HINTS[error.code] ?? 'Check the indentation (spaces only) and the quoting around here.'
    this.addAt('LW_CONFIG_SYNTAX', error.pos[0], error.message, hint)
  }

  /**
   * How a value is shown in a message: values from the environment as their `${...}` expression,
   * secrets not at all, credentials in URLs masked, long text shortened.
   */
  describe(where: readonly PathSegment[], value: unknown): string {
    const expression = this.expressions.get(pathToPointer(where))
    if (expression !== undefined) return JSON.stringify(expression)
    const key = [...where].reverse().find((segment) => typeof segment === 'string' && !/^\d+$/.test(segment))
    if (typeof value === 'string') {
      if (key !== undefined && SECRET_KEYS.has(String(key))) return 'the secret value'
      const masked = value.replace(/\/\/[^/@\s]*@/, '//***@')
      return JSON.stringify(masked.length > 80 ? masked.slice(0, 77) + '...' : masked)
    }
    if (typeof value === 'number' || typeof value === 'boolean') {
      return key !== undefined && SECRET_KEYS.has(String(key)) ? describeKind(value) : String(value)
    }
    return describeKind(value)
  }

  result(): CheckResult {
    const unique = new Map<string, { line: number; column: number; problem: LwError }>()
    for (const problem of this.problems) {
      const text = problem.format()
      const [, line, column] = /:(\d+):(\d+)$/.exec(problem.where ?? '') ?? ['', '0', '0']
      unique.set(text, { line: Number(line), column: Number(column), problem })
    }
    const sorted = [...unique.entries()]
      .sort(([a, x], [b, y]) => x.line - y.line || x.column - y.column || (a < b ? -1 : a > b ? 1 : 0))
      .map(([, { problem }]) => problem)
    return { config: undefined, problems: sorted }
  }
}

const SECRET_KEYS = new Set(['password', 'api_key'])

function describeKind(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return 'text'
  if (typeof value === 'boolean') return 'true/false'
  return 'a number'
}

const SYNTAX_HINTS: Record<string, string> = {
  DUPLICATE_KEY: 'Each key may appear once in a mapping: remove or merge the repeated one.',
  TAB_AS_INDENT: 'Indent with spaces, not tabs.',
  BAD_INDENT: 'Align keys of the same mapping at the same column, using spaces.',
  MISSING_CHAR: 'Close the quote or bracket that was opened before this point.',
  BLOCK_AS_IMPLICIT_KEY: 'Put a nested mapping on its own indented lines, or quote a value that contains ": ".',
  MULTIPLE_DOCS: 'Keep one YAML document in the file (remove the extra "---").',
  TAG_RESOLVE_FAILED: 'Remove the tag; for a value from the environment write "${VAR}".',
}

function readProblem(file: string, err: unknown): LwError {
  const code = (err as NodeJS.ErrnoException).code
  const what =
    code === 'ENOENT' ? 'file not found'
    : code === 'EISDIR' ? 'this is a directory, not a file'
    : code === 'EACCES' ? 'no permission to read it'
    : `cannot be read (${code ?? String(err)})`
  return new LwError('LW_CONFIG_READ', `${file}: ${what}`, {
    hint: 'Pass the path of a readable YAML file; config.example.yaml is a documented starting point.',
    where: file,
    cause: err,
  })
}

// ── ${VAR} interpolation over the document ───────────────────────────────────────────────────

/**
 * Replaces `${...}` in every string value in place. A scalar reached twice (through an alias) is
 * interpolated once but recorded at every path where it appears, so that it is masked everywhere.
 */
function interpolateDocument(doc: Document, text: string, env: NodeJS.ProcessEnv, report: Reporter): void {
  const outcome = new Map<Scalar, { original: string; substituted: boolean; failed: boolean }>()
  const open = new Set<unknown>()

  const visitScalar = (node: Scalar, where: PathSegment[]): void => {
    let done = outcome.get(node)
    if (done === undefined) {
      const original = node.value as string
      const result = interpolate(original, env)
      for (const issue of result.issues) {
        const start = node.range?.[0] ?? 0
        const found = node.range ? text.slice(start, node.range[1]).indexOf(issue.expression) : -1
        const offset = found < 0 ? start : start + found
        const keyPath = formatKeyPath(where)
        if (issue.kind === 'unset') {
          report.addAt('LW_CONFIG_ENV_UNSET', offset, `${keyPath}: environment variable ${issue.name} is not set (used in ${issue.expression})`,
            `Set ${issue.name} in the agent's environment, or give a default: \${${issue.name}:-value}.`)
        } else {
          report.addAt('LW_CONFIG_ENV_SYNTAX', offset, `${keyPath}: ${issue.expression} is not a valid variable reference: ${issue.reason}`,
            'Write ${NAME} or ${NAME:-default}; for a literal "${" write "$${".')
        }
      }
      node.value = result.value
      done = { original, substituted: result.substituted, failed: result.issues.length > 0 }
      outcome.set(node, done)
    }
    const pointer = pathToPointer(where)
    if (done.substituted || done.failed) report.expressions.set(pointer, done.original)
    if (done.failed) report.failed.add(pointer)
  }

  const visit = (node: unknown, where: PathSegment[]): void => {
    if (isAlias(node)) {
      const target = node.resolve(doc)
      if (target === undefined) {
        report.addAt('LW_CONFIG_SYNTAX', node.range?.[0] ?? 0, `${formatKeyPath(where)}: alias *${node.source} refers to no anchor`,
          `Define &${node.source} on a value before this alias, or write the value here.`)
        report.stopped = true
      } else if (!open.has(target)) {
        visit(target, where)
      }
    } else if (isMap(node)) {
      open.add(node)
      for (const pair of node.items) visit(pair.value, [...where, isScalar(pair.key) ? String(pair.key.value) : String(pair.key)])
      open.delete(node)
    } else if (isSeq(node)) {
      open.add(node)
      node.items.forEach((item, index) => visit(item, [...where, index]))
      open.delete(node)
    } else if (isScalar(node) && typeof node.value === 'string') {
      visitScalar(node, where)
    }
  }

  visit(doc.contents, [])
}

function toPlainData(doc: Document, report: Reporter): Record<string, unknown> | undefined {
  let data: unknown
  try {
    data = doc.toJS()
  } catch (err) {
    // Only pathological documents get here (e.g. an alias explosion).
    report.addAt('LW_CONFIG_SYNTAX', 0, `the document cannot be read: ${(err as Error).message}`, 'Simplify the anchors and aliases.')
    return undefined
  }
  // An empty file is an empty mapping, so the missing required keys get reported by name.
  if (data === null || data === undefined) return {}
  if (typeof data !== 'object' || Array.isArray(data)) {
    report.add('LW_CONFIG_TYPE', [], 'value', `expected a mapping of options, got ${describeKind(data)}`,
      'Start from config.example.yaml: the top level has service:, inputs:, elasticsearch: ...')
    return undefined
  }
  return data as Record<string, unknown>
}

// ── JSON Schema validation ───────────────────────────────────────────────────────────────────

let compiled: ValidateFunction | undefined

/** The validator generated at build time, else compiled on first use; kept either way. */
function validator(): ValidateFunction {
  compiled ??= prebuiltValidator(path.join(__dirname, 'schema-validator.js')) ?? compileConfigSchema()
  return compiled
}

/** The configuration schema compiled by ajv, with its custom formats. */
export function compileConfigSchema(options: Record<string, unknown> = {}): ValidateFunction {
  // ajv itself is loaded only here: the built agent validates with the generated code, and a
  // start does not load ajv's 61 modules (about 25 ms).
  const { default: AjvClass } = require('ajv') as { default: typeof Ajv }
  const ajv = new AjvClass({ ...CONFIG_AJV_OPTIONS, ...options })
  for (const [name, check] of Object.entries(formats)) ajv.addFormat(name, check)
  return ajv.compile(schema)
}

function validate(data: Record<string, unknown>, report: Reporter): void {
  const check = validator()
  if (check(data)) return
  if (coerce(data, check.errors ?? [], report) && check(data)) return
  for (const error of boil(check.errors ?? [])) explain(error, data, report)
}

/**
 * Two readings the schema cannot express, applied where ajv found the wrong type, after which the
 * data is validated again:
 * - a value from the environment is text; where the option wants a number or true/false, it is
 *   taken as one when it reads as one (CONCURRENCY=4);
 * - an empty value where a mapping or list is expected (`elasticsearch:` with every option below
 *   commented out) is an empty one, so the defaults apply.
 */
function coerce(data: Record<string, unknown>, errors: ErrorObject[], report: Reporter): boolean {
  let changed = false
  for (const error of errors) {
    if (error.keyword !== 'type' && error.keyword !== 'enum') continue
    const where = pointerToPath(error.instancePath)
    const value = valueAt(data, where)
    // An enum of mixed kinds (`compression: auto | true | false`) wants the kinds of its values.
    const wanted = error.keyword === 'enum' ? (error.params.allowedValues as unknown[]).map((v) => typeof v) : String(error.params.type).split(',')
    let coerced: unknown
    if (value === null) {
      coerced = wanted.includes('object') ? {} : wanted.includes('array') ? [] : undefined
    } else if (typeof value === 'string' && report.expressions.has(error.instancePath)) {
      if ((wanted.includes('integer') && /^-?\d+$/.test(value)) || (wanted.includes('number') && /^-?\d+(\.\d+)?$/.test(value))) {
        coerced = Number(value)
      } else if (wanted.includes('boolean') && (value === 'true' || value === 'false')) {
        coerced = value === 'true'
      }
    }
    if (coerced !== undefined && setAt(data, where, coerced)) changed = true
  }
  return changed
}

/**
 * ajv reports every branch of an anyOf/oneOf that failed. Of those, the useful ones are the errors
 * of the branch whose shape the value has: errors deeper inside the value, or errors at the value
 * other than "wrong type". When the value fits no branch at all, one "expected X or Y" says it.
 * `if` errors only restate the `then` errors that follow them.
 */
function boil(errors: ErrorObject[]): ErrorObject[] {
  let list = errors.filter((error) => error.keyword !== 'if')
  const alternatives = list
    .filter((error) => error.keyword === 'anyOf' || error.keyword === 'oneOf')
    .sort((a, b) => a.instancePath.length - b.instancePath.length)
  for (const alternative of alternatives) {
    const at = alternative.instancePath
    const related = list.filter((error) => error !== alternative && (error.instancePath === at || error.instancePath.startsWith(at + '/')))
    // No branch errors (a oneOf that more than one branch passed): ajv's own message is all there is.
    if (related.length === 0) continue
    const wrongType = related.filter((error) => error.keyword === 'type' && error.instancePath === at)
    const others = related.filter((error) => !wrongType.includes(error))
    list = list.filter((error) => error !== alternative && !wrongType.includes(error))
    if (others.length === 0 && wrongType.length > 0) {
      const types = wrongType.flatMap((error) => String(error.params.type).split(','))
      list.push({ ...wrongType[0], params: { type: [...new Set(types)].join(',') }, parentSchema: alternative.parentSchema })
    }
  }
  return list
}

/** The definition an error comes from (`#/definitions/duration/pattern` → duration), if any. */
function definitionOf(error: ErrorObject): string | undefined {
  return /^#\/definitions\/([^/]+)\//.exec(error.schemaPath)?.[1]
}


function exampleHint(key: PathSegment | undefined, parentSchema: ErrorObject['parentSchema']): string | undefined {
  const examples: unknown = parentSchema?.examples
  if (!Array.isArray(examples) || examples.length === 0 || key === undefined) return undefined
  return `For example: ${key}: ${JSON.stringify(examples[0])}`
}

function describedHint(parentSchema: ErrorObject['parentSchema']): string | undefined {
  const description: unknown = parentSchema?.description
  return typeof description === 'string' ? description : undefined
}

const DURATION_HINT = 'Write a number and a unit: "500ms", "2s", "5m", "1h", "1d" (a plain number is milliseconds).'
const SIZE_HINT = 'Write a number and a unit: "512KiB", "5MiB", "1GiB" (KB/MB/GB mean the same, 1024-based; a plain number is bytes).'

/** Turns one (boiled) ajv error into a located problem with a message a person can act on. */
function explain(error: ErrorObject, data: Record<string, unknown>, report: Reporter): void {
  const where = pointerToPath(error.instancePath)
  const value = valueAt(data, where)
  const shown = report.describe(where, value)
  const key = [...where].reverse().find((segment) => !/^\d+$/.test(segment))
  const definition = definitionOf(error)

  switch (definition) {
    case 'duration':
    case 'durationOrZero':
      if (isZero(value)) return report.add('LW_CONFIG_DURATION', where, 'value', 'must be longer than 0', DURATION_HINT)
      return report.add('LW_CONFIG_DURATION', where, 'value', `expected a duration, got ${shown}`, DURATION_HINT)
    case 'size':
      if (isZero(value)) return report.add('LW_CONFIG_SIZE', where, 'value', 'must be larger than 0', SIZE_HINT)
      return report.add('LW_CONFIG_SIZE', where, 'value', `expected a size, got ${shown}`, SIZE_HINT)
    case 'url':
      return report.add('LW_CONFIG_VALUE', where, 'value', `expected an http:// or https:// URL, got ${shown}`,
        'Write the full URL of each node, one per list item, e.g. ["http://es1:9200", "http://es2:9200"].')
  }

  switch (error.keyword) {
    case 'additionalProperties': {
      const unknown = String(error.params.additionalProperty)
      const suggestion = suggestKey(unknown, error.parentSchema)
      const allowed = Object.keys(propertiesOf(error.parentSchema))
      const hint = suggestion !== undefined ? `Did you mean "${suggestion}"?` : `Allowed here: ${allowed.join(', ')}.`
      return report.add('LW_CONFIG_UNKNOWN_KEY', [...where, unknown], 'key', 'unknown key', hint)
    }
    case 'required': {
      const missing = String(error.params.missingProperty)
      const description = describedHint(propertiesOf(error.parentSchema)[missing])
      const place = where.length === 0 ? 'at the top level' : `under ${formatKeyPath(where)}`
      const hint = `Add "${missing}:" ${place}${description !== undefined ? `: ${description}` : '.'}`
      return report.add('LW_CONFIG_MISSING_KEY', where, 'key', 'required key is missing', hint, [...where, missing])
    }
    case 'dependencies': {
      const missing = String(error.params.missingProperty)
      return report.add('LW_CONFIG_MISSING_KEY', where, 'key', `required when ${String(error.params.property)} is set`,
        `Add "${missing}:" next to it.`, [...where, missing])
    }
    case 'type': {
      const wanted = String(error.params.type).split(',').map((type) => TYPE_WORDS[type] ?? type)
      const hint = exampleHint(key, error.parentSchema) ?? describedHint(error.parentSchema)
      return report.add('LW_CONFIG_TYPE', where, 'value', `expected ${listWords(wanted)}, got ${shown}`, hint)
    }
    case 'enum':
    case 'const': {
      const allowed: unknown[] = error.keyword === 'enum' ? (error.params.allowedValues as unknown[]) : [error.params.allowedValue]
      const choices = allowed.map(String)
      const suggestion = typeof value === 'string' && !report.expressions.has(error.instancePath) ? closest(value, choices) : undefined
      const what = choices.length === 1 ? `must be "${choices[0]}", got ${shown}` : `${shown} is not one of: ${choices.join(', ')}`
      // "true" in quotes where true is allowed: the quotes are the mistake.
      const unquoted = typeof value === 'string' && allowed.some((v) => typeof v !== 'string' && String(v) === value)
      const hint = unquoted ? `Write it without quotes: ${key}: ${value}` : suggestion !== undefined ? `Did you mean "${suggestion}"?` : 'Use one of these.'
      return report.add('LW_CONFIG_VALUE', where, 'value', what, hint)
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const what = boundWords(error.keyword, error.params.limit)
      return report.add('LW_CONFIG_VALUE', where, 'value', `must be ${what}, got ${shown}`, exampleHint(key, error.parentSchema))
    }
    case 'minItems': {
      const limit = Number(error.params.limit)
      return report.add('LW_CONFIG_VALUE', where, 'value', `must list at least ${limit}`,
        exampleHint(key, error.parentSchema) ?? describedHint(error.parentSchema) ?? `Add at least ${limit === 1 ? 'one' : limit}.`)
    }
    case 'minLength':
      return report.add('LW_CONFIG_VALUE', where, 'value', 'must not be empty', exampleHint(key, error.parentSchema) ?? describedHint(error.parentSchema))
    case 'format':
      return explainFormat(String(error.params.format), where, value, shown, report)
  }
  report.add('LW_CONFIG_VALUE', where, 'value', error.message ?? 'is not valid', describedHint(error.parentSchema))
}

function explainFormat(format: string, where: string[], value: unknown, shown: string, report: Reporter): void {
  const text = String(value)
  if (format === 'timezone') {
    const suggestion = report.expressions.has(pathToPointer(where)) ? undefined : suggestTimeZone(text)
    report.add('LW_CONFIG_TIMEZONE', where, 'value', `${shown} is not a known time zone`,
      suggestion !== undefined ? `Did you mean "${suggestion}"?` : 'Use an IANA zone name such as "Europe/Moscow" or "UTC".')
  } else if (format === 'regex') {
    report.add('LW_CONFIG_REGEX', where, 'value', `not a valid regular expression: ${regexProblem(text)}`,
      'Fix the expression (JavaScript syntax); in YAML, single quotes keep backslashes as they are: \'^\\s+at \'.')
  } else {
    report.add('LW_CONFIG_VALUE', where, 'value', `${shown} is not a valid index name: ${indexNameProblem(text)}`,
      'Use lowercase letters, digits, "-", "_" and "."; a date pattern goes in as %{+yyyy.MM.dd}.')
  }
}

function propertiesOf(schemaNode: unknown): Record<string, Record<string, unknown>> {
  const properties = (schemaNode as { properties?: unknown } | undefined)?.properties
  return typeof properties === 'object' && properties !== null ? (properties as Record<string, Record<string, unknown>>) : {}
}

/**
 * A key allowed here, or one level down (`max_docs` written directly under elasticsearch means
 * `batch.max_docs`), also under the flat name the options have in AgentConfig (`batch_max_docs`).
 */
function suggestKey(unknown: string, parentSchema: unknown): string | undefined {
  const properties = propertiesOf(parentSchema)
  const direct = closest(unknown, Object.keys(properties))
  if (direct !== undefined) return direct
  const nested = new Map<string, string>()
  for (const [name, property] of Object.entries(properties)) {
    const target = typeof property.$ref === 'string' ? resolveRef(property.$ref) : property
    for (const child of Object.keys(propertiesOf(target))) {
      nested.set(`${name}_${child}`, `${name}.${child}`)
      if (!nested.has(child)) nested.set(child, `${name}.${child}`)
    }
  }
  const match = closest(unknown, nested.keys())
  return match === undefined ? undefined : nested.get(match)
}

function resolveRef(ref: string): unknown {
  return ref.replace(/^#\//, '').split('/').reduce<unknown>((node, segment) => (node as Record<string, unknown> | undefined)?.[segment], schema)
}

// ── value checks used by the schema's custom formats (agent/config/formats.ts) ───────────────

/**
 * Intl accepts any letter case; the rest of the agent compares zone names, so the canonical one
 * is stored. UTC, the default, is left as it is: asking Intl loads its zone data, megabytes of memory.
 */
function canonicalZone(name: string): string {
  return name === 'UTC' ? name : new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone
}

function suggestTimeZone(name: string): string | undefined {
  const zones = [...Intl.supportedValuesOf('timeZone'), 'UTC']
  const whole = closest(name, zones)
  if (whole !== undefined) return whole
  // "Moscow" or "Europe/Moskow": compare the city part too.
  const byCity = new Map(zones.map((zone) => [zone.slice(zone.lastIndexOf('/') + 1), zone]))
  const city = closest(name.slice(name.lastIndexOf('/') + 1), byCity.keys())
  return city === undefined ? undefined : byCity.get(city)
}

// ── checks across options ────────────────────────────────────────────────────────────────────

/**
 * What one option's schema cannot see. `data` has the defaults filled in (and values from the
 * environment converted); `written` is what the file said, for "only if the user set it" where the
 * option has a default. Both may still be malformed where the schema complained, so every value is
 * checked for its type before use.
 */
function crossCheck(data: unknown, written: unknown, dir: string, report: Reporter): void {
  const es = ['elasticsearch']
  if (valueAt(data, [...es, 'api_key']) !== undefined
    && (valueAt(data, [...es, 'username']) !== undefined || valueAt(data, [...es, 'password']) !== undefined)) {
    report.add('LW_CONFIG_CONFLICT', [...es, 'api_key'], 'key', 'cannot be used together with username/password',
      'Keep either api_key or username and password.')
  }

  const index = valueAt(data, [...es, 'index'])
  if (valueAt(data, [...es, 'data_stream']) === true && typeof index === 'string' && index.includes('%{+')) {
    report.add('LW_CONFIG_CONFLICT', [...es, 'data_stream'], 'value', `a data stream cannot have a date pattern in its name (index ${report.describe([...es, 'index'], index)})`,
      'Remove data_stream: true to write daily indices, or use an index name without %{+...}.')
  }

  const initial = toMs(valueAt(data, [...es, 'retry', 'initial']))
  const max = toMs(valueAt(data, [...es, 'retry', 'max']))
  if (initial !== undefined && max !== undefined && max < initial) {
    report.add('LW_CONFIG_CONFLICT', [...es, 'retry', 'max'], 'value', 'must not be shorter than retry.initial',
      'Raise retry.max or lower retry.initial.')
  }

  const buffer = toBytes(valueAt(data, ['limits', 'memory_buffer']))
  const batch = toBytes(valueAt(data, [...es, 'batch', 'max_bytes']))
  if (buffer !== undefined && batch !== undefined && buffer < batch) {
    report.add('LW_CONFIG_CONFLICT', ['limits', 'memory_buffer'], 'value', 'is smaller than elasticsearch.batch.max_bytes, so a full batch could never be held',
      'Raise limits.memory_buffer or lower elasticsearch.batch.max_bytes.')
  }

  const caPath = [...es, 'tls', 'ca_file']
  const caFile = valueAt(data, caPath)
  if (typeof caFile === 'string' && caFile !== '' && !fs.existsSync(path.resolve(dir, caFile))) {
    // The absolute path says where it was looked for, unless the path came from the environment.
    const shown = report.expressions.has(pathToPointer(caPath)) ? report.describe(caPath, caFile) : path.resolve(dir, caFile)
    report.add('LW_CONFIG_VALUE', caPath, 'value', `file not found: ${shown}`,
      'Give the path of the CA certificate (PEM); a relative path starts at the configuration file\'s directory.')
  }

  const inputs = valueAt(written, ['inputs'])
  if (Array.isArray(inputs)) {
    inputs.forEach((_, i) => {
      const multiline = ['inputs', i, 'multiline']
      const type = valueAt(written, [...multiline, 'type'])
      if (typeof type !== 'string' || type === 'pattern') return
      for (const option of ['pattern', 'negate', 'match']) {
        if (valueAt(written, [...multiline, option]) === undefined) continue
        report.add('LW_CONFIG_CONFLICT', [...multiline, option], 'key', `applies only to type: pattern, not to type: ${type}`,
          'Remove it, or set type: pattern.')
      }
    })
  }
}

// ── normalisation ────────────────────────────────────────────────────────────────────────────

function normalise(raw: RawConfig, source: string): AgentConfig {
  const dir = path.dirname(source)
  const es = raw.elasticsearch
  const config: AgentConfig = {
    source,
    service: { name: raw.service.name },
    state_dir: path.resolve(dir, raw.state_dir),
    inputs: raw.inputs.map((input) => normaliseFileInput(input, raw.service.name, dir)),
    elasticsearch: {
      hosts: list(es.hosts),
      tls_verify: es.tls.verify,
      index: es.index,
      data_stream: es.data_stream ?? !es.index.includes('%{+'),
      batch_max_docs: es.batch.max_docs,
      batch_max_bytes: sizeOf(es.batch.max_bytes),
      batch_interval: durationOf(es.batch.interval),
      concurrency: es.concurrency,
      compression: es.compression,
      request_timeout: durationOf(es.request_timeout),
      retry_initial: durationOf(es.retry.initial),
      retry_max: durationOf(es.retry.max),
      template_name: es.template.name,
      number_of_shards: es.template.shards,
      number_of_replicas: es.template.replicas,
      setup_on_start: es.template.setup_on_start,
      dead_letter_index: es.dead_letter.index,
    },
    limits: { memory_buffer: sizeOf(raw.limits.memory_buffer), max_open_files: raw.limits.max_open_files },
    checkpoint_interval: durationOf(raw.checkpoint_interval),
    shutdown_timeout: durationOf(raw.shutdown_timeout),
    log: { level: raw.log.level },
    rules: { builtin: raw.rules.builtin, paths: list(raw.rules.paths).map((p) => path.resolve(dir, p)), disable: raw.rules.disable },
    routes: Object.fromEntries(Object.entries(raw.routes).map(([name, r]) => [name, { ...r }])),
    alerts: {
      index: raw.alerts.index,
      edit_window: durationOf(raw.alerts.edit_window),
      edit_budget: raw.alerts.edit_budget,
      per_rule_per_minute: raw.alerts.per_rule_per_minute,
    },
  }
  if (raw.telegram !== undefined) config.telegram = { ...raw.telegram }
  if (raw.kibana !== undefined) config.kibana = { ...raw.kibana }
  if (raw.service.environment !== undefined) config.service.environment = raw.service.environment
  if (es.username !== undefined) config.elasticsearch.username = es.username
  if (es.password !== undefined) config.elasticsearch.password = es.password
  if (es.api_key !== undefined) config.elasticsearch.api_key = es.api_key
  if (es.tls.ca_file !== undefined) config.elasticsearch.ca_file = path.resolve(dir, es.tls.ca_file)
  return config
}

function normaliseFileInput(raw: RawFileInput, serviceName: string, dir: string): FileInputConfig {
  const input: FileInputConfig = {
    type: 'file',
    paths: list(raw.paths).map((glob) => path.resolve(dir, glob)),
    // Exclusions are patterns such as "*.gz" matched against the files found, not paths to resolve.
    exclude: list(raw.exclude),
    format: raw.format,
    start_position: raw.start_position,
    // Intl accepts any letter case; the rest of the agent compares zone names, so store the canonical one.
    timezone: canonicalZone(raw.timezone),
    max_line_bytes: sizeOf(raw.max_line_bytes),
    dataset: raw.dataset ?? `${serviceName}.log`,
    fields: raw.fields,
    scan_interval: durationOf(raw.scan_interval),
    close_inactive: durationOf(raw.close_inactive),
  }
  if (raw.multiline !== undefined) {
    const m = raw.multiline
    input.multiline = {
      type: m.type,
      negate: m.negate,
      match: m.match,
      timeout: durationOf(m.timeout),
      max_lines: m.max_lines,
      max_bytes: sizeOf(m.max_bytes),
    }
    if (m.pattern !== undefined) input.multiline.pattern = m.pattern
  }
  return input
}

function list(value: string | string[]): string[] {
  return typeof value === 'string' ? [value] : value
}

function isZero(value: unknown): boolean {
  return value === 0 || (typeof value === 'string' && /^[0.]+\s*[a-zA-Z]*$/.test(value))
}

/** Milliseconds of a duration the schema accepted; undefined for anything else (used before validation is known to pass). */
function toMs(value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value !== 'string') return undefined
  // The schema's pattern admits only forms `ms` reads; anything else (unvalidated yet) gives NaN.
  const parsed = ms(value as ms.StringValue)
  return Number.isFinite(parsed) ? Math.ceil(parsed) : undefined
}

/** Bytes of a size the schema accepted; undefined for anything else. */
function toBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value !== 'string') return undefined
  // `bytes` knows kb/mb/gb/tb, already 1024-based; it does not know the IEC spelling KiB/MiB, nor "5M".
  const match = /^([0-9]+(?:\.[0-9]+)?) ?(?:([kKmMgGtT])[iI]?)?[bB]?$/.exec(value)
  if (match === null) return undefined
  const parsed = match[2] === undefined ? Math.floor(Number(match[1])) : bytes.parse(`${match[1]}${match[2]}b`)
  return parsed !== null && Number.isFinite(parsed) ? parsed : undefined
}

function durationOf(value: Duration): number {
  return toMs(value) as number
}

function sizeOf(value: Size): number {
  return toBytes(value) as number
}

// ── small helpers over plain data ────────────────────────────────────────────────────────────


function setAt(data: unknown, where: readonly PathSegment[], value: unknown): boolean {
  const parent = valueAt(data, where.slice(0, -1))
  if (typeof parent !== 'object' || parent === null || where.length === 0) return false
  ;(parent as Record<string, unknown>)[String(where[where.length - 1])] = value
  return true
}
