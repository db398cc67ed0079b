/**
 * Unit tests for alert rules, in the manner of `promtool test rules`: log input at points in
 * time, and the alerts expected of it. `logwarden rules test FILE...` runs them; every built-in
 * pack ships with its test file and CI runs them.
 *
 * A test file (YAML, named `*.test.yaml` so the rule loader passes it by):
 *
 *   rule_files: [http.yaml]            # relative to the test file
 *   tests:
 *     - name: a burst of 5xx from one client fires once
 *       tick: 1s                       # how often the clock ticks (default 1s, as the agent)
 *       until: 10m                     # run the clock on to here after the last input (default: the last input)
 *       input:
 *         - at: 0s                     # when (from the start of the test)
 *           line: '10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 500 12 "-" "curl/8"'
 *           format: access             # json | access | python | plain; default: detected from the line
 *           repeat: 12                 # the same input 12 times ...
 *           every: 5s                  # ... 5s apart (default 1s)
 *         - at: 2m
 *           entry: { level: 50, msg: boom, err: { type: TypeError, message: x, stack: "..." } }
 *       expect:
 *         - rule: http-5xx-burst
 *           group_key: { client.ip: 10.0.0.1 }   # the listed keys must have these values
 *           count: 1                   # exactly this many events (default: at least one)
 *           state: firing              # or resolved (default firing)
 *
 * `line` is parsed with the agent's own parsers, so packs are tested on real log lines; `entry`
 * is a JSON log line written as YAML (it goes through the JSON parser, as a JSON input's lines
 * do). Inputs are evaluated in time order on a virtual clock that ticks every `tick` in between
 * (ticks due at or before an input run before it), which is what the agent does live — so a test
 * passes exactly when the rules would behave that way in production. Entries count at the test's
 * time, not at the timestamps written in the lines.
 *
 * Every event must be expected: an event no expectation selects fails the test, so
 * `expect: []` means "must not fire" (the way to pin down false positives). Each test runs on
 * fresh rule state.
 */
import { readFile } from 'node:fs/promises'
import fs from 'node:fs'
import path from 'node:path'
import ms from 'ms'
import { LineCounter, parseDocument, type YAMLError } from 'yaml'
import type { Entry } from '../agent/entry'
import { formatKeyPath, SourceMap, type PathSegment, type Target } from '../agent/config/positions'
import { closest } from '../agent/config/suggest'
import type { LwCode } from '../agent/errors'
import { detectFormat, parserFor, type ParserFormat } from '../agent/parsers'
import type { CompiledRule } from './compiled'
import { RuleEngine } from './engine'
import type { AlertEvent, Millis } from './model'
import { loadRules as loadRuleFiles } from './load'
import { RuleIndex } from './rule-index'
import { formatDuration } from './types/runtime'

/** What the loader gives back (rules/load.ts loadRules); problems print with `format()`. */
export type RuleLoader = (paths: string[]) => { rules: CompiledRule[]; problems: Array<{ format(): string }> }

const FORMATS: readonly ParserFormat[] = ['json', 'access', 'python', 'plain']
const STATES = ['firing', 'resolved'] as const
/** The virtual clock's zero. Fixed, so a test's event ids are the same on every run. */
const T0: Millis = Date.UTC(2024, 0, 1)
/** Ticks one test may run: beyond this the test should use a coarser `tick`. */
const MAX_TICKS = 1_000_000
const PARSE_CONTEXT = { timezone: 'UTC' }

interface Input {
  at: Millis
  text: string
  format: ParserFormat | undefined
  /** Where the input is written, for messages. */
  where: string
}

interface Expectation {
  rule: string
  groupKey: Record<string, string> | undefined
  count: number | undefined
  state: 'firing' | 'resolved'
  where: string
}

interface TestCase {
  name: string
  tick: Millis
  until: Millis | undefined
  inputs: Input[]
  expect: Expectation[]
}

interface TestFile {
  ruleFiles: string[]
  tests: TestCase[]
}

/** A mistake in the test file itself, located like the rule loader's. */
class Problems {
  readonly list: string[] = []
  constructor(private readonly file: string, private readonly map: SourceMap) {}

  add(code: LwCode, at: readonly PathSegment[], message: string, hint: string, target: Target = 'value'): void {
    const { line, column } = this.map.locate(at, target)
    const key = formatKeyPath(at)
    this.list.push(`${this.file}:${line}:${column}: ${code}: ${key === '' ? '' : key + ': '}${message}. ${hint}`)
  }

  where(at: readonly PathSegment[]): string {
    const { line, column } = this.map.locate(at, 'key')
    return `${this.file}:${line}:${column}`
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkKeys(p: Problems, at: PathSegment[], value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue
    const guess = closest(key, allowed)
    p.add('LW_RULE_UNKNOWN_KEY', [...at, key], 'unknown key in a rule test file',
      guess === undefined ? `The keys here are: ${allowed.join(', ')}.` : `Did you mean "${guess}"?`, 'key')
  }
}

function duration(p: Problems, at: PathSegment[], value: unknown, zeroOk: boolean): Millis | undefined {
  let result: number | undefined
  if (typeof value === 'number') result = value
  else if (typeof value === 'string') result = ms(value as ms.StringValue) as number | undefined
  if (result === undefined || !Number.isFinite(result) || result < 0 || (!zeroOk && result === 0)) {
    p.add('LW_RULE_DURATION', at, `${JSON.stringify(value)} is not a duration${zeroOk ? '' : ' above zero'}`,
      'Write it as "0s", "30s", "5m", "2h", "1d" or a number of milliseconds.')
    return undefined
  }
  return result
}

function readInputs(p: Problems, at: PathSegment[], value: unknown): Input[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) {
    p.add('LW_RULE_TYPE', at, 'must be a list of inputs', 'Write `input:` followed by `- at: 0s` items.')
    return []
  }
  const inputs: Input[] = []
  value.forEach((item, i) => {
    const here = [...at, i]
    if (!isRecord(item)) {
      p.add('LW_RULE_TYPE', here, 'an input must be a mapping', 'Give `at:` and one of `line:` or `entry:`.')
      return
    }
    checkKeys(p, here, item, ['at', 'line', 'entry', 'format', 'repeat', 'every'])
    const atTime = item['at'] === undefined ? undefined : duration(p, [...here, 'at'], item['at'], true)
    if (item['at'] === undefined) p.add('LW_RULE_MISSING_KEY', here, 'the input has no `at`', 'Say when it happens, e.g. `at: 0s`.')
    let text: string | undefined
    let format: ParserFormat | undefined
    if ((item['line'] === undefined) === (item['entry'] === undefined)) {
      p.add('LW_RULE_CONFLICT', here, 'an input needs exactly one of `line` and `entry`',
        'Use `line:` for a raw log line, `entry:` for a JSON log line written as YAML.')
    } else if (item['line'] !== undefined) {
      if (typeof item['line'] !== 'string' || item['line'].length === 0) {
        p.add('LW_RULE_TYPE', [...here, 'line'], 'must be the text of a log line', 'Quote it: line: \'...\'.')
      } else {
        // A block scalar (`line: |`) ends with a newline that framing would not have kept.
        text = item['line'].replace(/\r?\n$/, '')
      }
      const f = item['format']
      if (f !== undefined) {
        if (typeof f === 'string' && (FORMATS as readonly string[]).includes(f)) format = f as ParserFormat
        else p.add('LW_RULE_VALUE', [...here, 'format'], `${JSON.stringify(f)} is not a log format`, `Use one of ${FORMATS.join(', ')}.`)
      }
    } else {
      if (!isRecord(item['entry'])) {
        p.add('LW_RULE_TYPE', [...here, 'entry'], 'must be a mapping (a JSON log line written as YAML)', 'E.g. entry: { level: error, msg: boom }.')
      } else {
        text = JSON.stringify(item['entry'])
        format = 'json'
      }
      if (item['format'] !== undefined && item['format'] !== 'json') {
        p.add('LW_RULE_CONFLICT', [...here, 'format'], '`entry` is always a JSON line', 'Drop `format`, or give the raw text as `line`.')
      }
    }
    let repeat = 1
    if (item['repeat'] !== undefined) {
      const r = item['repeat']
      if (typeof r === 'number' && Number.isInteger(r) && r >= 1 && r <= 100_000) repeat = r
      else p.add('LW_RULE_VALUE', [...here, 'repeat'], `${JSON.stringify(r)} is not a count from 1 to 100000`, 'Give how many times the input occurs.')
    }
    let every = 1000
    if (item['every'] !== undefined) every = duration(p, [...here, 'every'], item['every'], true) ?? every
    if (atTime === undefined || text === undefined) return
    const where = p.where(here)
    for (let k = 0; k < repeat; k++) inputs.push({ at: atTime + k * every, text, format, where })
  })
  return inputs
}

function readExpectations(p: Problems, at: PathSegment[], value: unknown): Expectation[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) {
    p.add('LW_RULE_TYPE', at, 'must be a list of expected alerts', 'Write `expect: []` for "must not fire".')
    return []
  }
  const out: Expectation[] = []
  value.forEach((item, i) => {
    const here = [...at, i]
    if (!isRecord(item)) {
      p.add('LW_RULE_TYPE', here, 'an expected alert must be a mapping', 'Give at least `rule:`.')
      return
    }
    checkKeys(p, here, item, ['rule', 'group_key', 'count', 'state'])
    const rule = item['rule']
    if (typeof rule !== 'string' || rule.length === 0) {
      p.add(rule === undefined ? 'LW_RULE_MISSING_KEY' : 'LW_RULE_TYPE', rule === undefined ? here : [...here, 'rule'],
        'an expected alert needs the `rule` id', 'Give the id of the rule expected to fire.')
      return
    }
    let groupKey: Record<string, string> | undefined
    const g = item['group_key']
    if (g !== undefined) {
      if (!isRecord(g) || Object.values(g).some((v) => v !== null && typeof v === 'object')) {
        p.add('LW_RULE_TYPE', [...here, 'group_key'], 'must map field paths to values', 'E.g. group_key: { client.ip: 10.0.0.1 }.')
      } else {
        groupKey = {}
        for (const [k, v] of Object.entries(g)) groupKey[k] = v === null ? '' : String(v)
      }
    }
    let count: number | undefined
    const c = item['count']
    if (c !== undefined) {
      if (typeof c === 'number' && Number.isInteger(c) && c >= 0) count = c
      else p.add('LW_RULE_VALUE', [...here, 'count'], `${JSON.stringify(c)} is not a count`, 'Give how many events are expected (0 or more).')
    }
    let state: 'firing' | 'resolved' = 'firing'
    const s = item['state']
    if (s !== undefined) {
      if (s === 'firing' || s === 'resolved') state = s
      else p.add('LW_RULE_VALUE', [...here, 'state'], `${JSON.stringify(s)} is not an alert state`, `Use one of ${STATES.join(', ')}.`)
    }
    out.push({ rule, groupKey, count, state, where: p.where(here) })
  })
  return out
}

function readTests(p: Problems, value: unknown): TestCase[] {
  if (!Array.isArray(value)) {
    p.add(value === undefined ? 'LW_RULE_MISSING_KEY' : 'LW_RULE_TYPE', value === undefined ? [] : ['tests'],
      'a rule test file needs a list of `tests`', 'Add `tests:` with items of `name`, `input` and `expect`.')
    return []
  }
  const tests: TestCase[] = []
  value.forEach((item, i) => {
    const here: PathSegment[] = ['tests', i]
    if (!isRecord(item)) {
      p.add('LW_RULE_TYPE', here, 'a test must be a mapping', 'Give `name`, `input` and `expect`.')
      return
    }
    checkKeys(p, here, item, ['name', 'input', 'expect', 'tick', 'until'])
    const name = typeof item['name'] === 'string' && item['name'].length > 0 ? item['name'] : `test ${i + 1}`
    if (item['name'] !== undefined && typeof item['name'] !== 'string') p.add('LW_RULE_TYPE', [...here, 'name'], 'must be text', 'Name what the test checks.')
    if (item['expect'] === undefined) {
      p.add('LW_RULE_MISSING_KEY', here, 'the test has no `expect`', 'List the alerts expected, or `expect: []` for "must not fire".')
    }
    const tick = item['tick'] === undefined ? 1000 : duration(p, [...here, 'tick'], item['tick'], false) ?? 1000
    const until = item['until'] === undefined ? undefined : duration(p, [...here, 'until'], item['until'], true)
    const inputs = readInputs(p, [...here, 'input'], item['input'])
    const expect = readExpectations(p, [...here, 'expect'], item['expect'])
    const end = Math.max(until ?? 0, ...inputs.map((x) => x.at))
    if (end / tick > MAX_TICKS) {
      p.add('LW_RULE_VALUE', [...here, item['tick'] === undefined ? 'until' : 'tick'],
        `the test runs ${formatDuration(end)} in ticks of ${formatDuration(tick)}: over ${MAX_TICKS} ticks`,
        `Set a coarser \`tick\` (e.g. tick: ${formatDuration(Math.ceil(end / MAX_TICKS / 60_000) * 60_000)}).`)
    }
    tests.push({ name, tick, until, inputs, expect })
  })
  return tests
}

/** Reads and checks a test file; problems are located `file:line:column`. */
function parseTestFile(file: string, text: string): { test?: TestFile; problems: string[] } {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const p = new Problems(file, new SourceMap(doc, lines))
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e: YAMLError) => {
        const { line, col } = lines.linePos(e.pos[0])
        return `${file}:${line}:${col}: LW_RULE_SYNTAX: ${e.message.split('\n')[0]}. Fix the YAML (indentation, quoting, duplicate keys).`
      }),
    }
  }
  const root: unknown = doc.toJS()
  if (!isRecord(root)) {
    return { problems: [`${file}:1:1: LW_RULE_TYPE: a rule test file must be a mapping with rule_files and tests. See rules/test-runner.ts for the layout.`] }
  }
  checkKeys(p, [], root, ['rule_files', 'tests'])
  const rf = root['rule_files']
  let ruleFiles: string[] = []
  if (!Array.isArray(rf) || rf.length === 0 || rf.some((f) => typeof f !== 'string' || f.length === 0)) {
    p.add(rf === undefined ? 'LW_RULE_MISSING_KEY' : 'LW_RULE_TYPE', rf === undefined ? [] : ['rule_files'],
      'a rule test file needs `rule_files`: the rule files (or directories) it tests', 'E.g. rule_files: [http.yaml], relative to the test file.')
  } else {
    ruleFiles = (rf as string[]).map((f) => path.resolve(path.dirname(file), f))
  }
  const tests = readTests(p, root['tests'])
  if (p.list.length > 0) return { problems: p.list }
  return { test: { ruleFiles, tests }, problems: [] }
}

function parseInput(input: Input): { fields: Entry['fields']; object?: Record<string, unknown> } {
  const format = input.format ?? detectFormat([input.text.split('\n', 1)[0]!])
  const result = parserFor(format)(input.text, PARSE_CONTEXT)
  return result.object === undefined ? { fields: result.fields } : { fields: result.fields, object: result.object }
}

/** Runs one test on fresh rule state: every event it produced. */
function runCase(rules: CompiledRule[], test: TestCase): AlertEvent[] {
  const engine = new RuleEngine(rules, { timestamps: 'arrival', index: (list) => new RuleIndex(list) })
  const inputs = test.inputs.slice().sort((a, b) => a.at - b.at)
  const events: AlertEvent[] = []
  let nextTick = test.tick
  let offset = 0
  const advance = (to: Millis): void => {
    for (; nextTick <= to; nextTick += test.tick) events.push(...engine.tick(T0 + nextTick))
  }
  for (const input of inputs) {
    advance(input.at)
    const parsed = parseInput(input)
    const entry: Entry = { sourceId: 'rules-test', offset, end: offset + Buffer.byteLength(input.text) + 1, text: input.text, ...parsed }
    offset = entry.end
    events.push(...engine.evaluate(entry, T0 + input.at))
  }
  advance(Math.max(test.until ?? 0, inputs.length === 0 ? 0 : inputs[inputs.length - 1]!.at))
  return events
}

function selects(e: Expectation, event: AlertEvent): boolean {
  if (event.ruleId !== e.rule || event.state !== e.state) return false
  if (e.groupKey === undefined) return true
  for (const [k, v] of Object.entries(e.groupKey)) if (event.groupKey[k] !== v) return false
  return true
}

function describeKey(groupKey: Record<string, string>): string {
  const parts = Object.entries(groupKey).map(([k, v]) => `${k}: ${v}`)
  return parts.length === 0 ? '' : ` {${parts.join(', ')}}`
}

function describeExpectation(e: Expectation): string {
  const count = e.count === undefined ? 'at least once' : `${e.count} time${e.count === 1 ? '' : 's'}`
  return `${e.rule}${e.groupKey === undefined ? '' : describeKey(e.groupKey)} ${e.state} ${count}`
}

function describeEvent(event: AlertEvent): string {
  return `${event.ruleId}${describeKey(event.groupKey)} ${event.state} at +${formatDuration(event.at - T0)}: ${event.summary}`
}

/** Checks what fired against what was expected: the lines explaining each failure (none when it passed). */
function verdict(test: TestCase, events: AlertEvent[]): string[] {
  const failures: string[] = []
  const expected = new Set<AlertEvent>()
  for (const e of test.expect) {
    const selected = events.filter((event) => selects(e, event))
    for (const event of selected) expected.add(event)
    const ok = e.count === undefined ? selected.length > 0 : selected.length === e.count
    if (!ok) failures.push(`expected ${describeExpectation(e)} (${e.where}), got ${selected.length}`)
  }
  const unexpected = events.filter((event) => !expected.has(event))
  if (unexpected.length > 0) {
    failures.push(test.expect.length === 0 ? 'expected nothing to fire' : `${unexpected.length} event${unexpected.length === 1 ? '' : 's'} no expectation selects`)
  }
  if (failures.length > 0) {
    if (events.length === 0) failures.push('fired: nothing')
    else failures.push('fired:', ...events.map((event) => `  ${expected.has(event) ? ' ' : '!'} ${describeEvent(event)}`))
  }
  return failures
}

/**
 * Runs the tests of one file. `loadRules` is the rule loader (rules/load.ts): a rule file that
 * does not load fails the file with the loader's messages. `ok` is true when every test passed.
 */
export async function runRuleTests(file: string, loadRules: RuleLoader): Promise<{ ok: boolean; output: string }> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { ok: false, output: `${file}: LW_RULE_READ: the rule test file ${code === 'ENOENT' ? 'is not there' : `cannot be read (${code ?? String(err)})`}. Give the path of a *.test.yaml file.\n` }
  }
  const parsed = parseTestFile(file, text)
  if (parsed.test === undefined) return { ok: false, output: `${file}\n${parsed.problems.map((l) => `  ${l}`).join('\n')}\n` }
  const { ruleFiles, tests } = parsed.test
  const loaded = loadRules(ruleFiles)
  if (loaded.problems.length > 0) {
    const lines = loaded.problems.map((problem) => `  ${problem.format()}`)
    return { ok: false, output: `${file}\n  the rule files do not load; fix them first:\n${lines.join('\n')}\n` }
  }
  const ids = loaded.rules.map((r) => r.rule.id)
  const unknown: string[] = []
  for (const test of tests) {
    for (const e of test.expect) {
      if (ids.includes(e.rule)) continue
      const guess = closest(e.rule, ids)
      unknown.push(`  ${e.where}: LW_RULE_VALUE: no rule "${e.rule}" in ${ruleFiles.map((f) => path.relative(process.cwd(), f)).join(', ')}. ${guess === undefined ? 'Check the rule id.' : `Did you mean "${guess}"?`}`)
    }
  }
  if (unknown.length > 0) return { ok: false, output: `${file}\n${unknown.join('\n')}\n` }

  const out: string[] = [file]
  let failed = 0
  for (const test of tests) {
    const failures = verdict(test, runCase(loaded.rules, test))
    if (failures.length === 0) {
      out.push(`  ok    ${test.name}`)
    } else {
      failed++
      out.push(`  FAIL  ${test.name}`, ...failures.map((l) => `        ${l}`))
    }
  }
  out.push(`  ${tests.length} test${tests.length === 1 ? '' : 's'}, ${failed === 0 ? 'all passed' : `${failed} failed`}`)
  return { ok: failed === 0, output: out.join('\n') + '\n' }
}

/** *.test.yaml / *.test.yml: rule test files (the loader leaves them out of the rules). */
function isTestFileName(name: string): boolean {
  return /\.test\.ya?ml$/i.test(name)
}

/** The test files `paths` stand for: files as given, directories searched for *.test.yaml. */
function testFiles(paths: readonly string[]): string[] {
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (isTestFileName(entry.name)) files.push(full)
    }
  }
  for (const p of paths) {
    let directory = false
    try {
      directory = fs.statSync(p).isDirectory()
    } catch {
      // Not there: runRuleTests reports it.
    }
    if (directory) walk(p)
    else files.push(p)
  }
  return files
}

/**
 * `logwarden rules test FILE|DIR...`: runs every test file, writes the report to `write`, and
 * returns the exit code: 0 all passed, 1 a test failed or a file has a problem, 2 no test file.
 * `loadRules` defaults to the rule loader.
 */
export async function ruleTestsCli(paths: string[], write: (text: string) => void = (text) => process.stdout.write(text), loadRules?: RuleLoader): Promise<number> {
  const files = testFiles(paths)
  if (files.length === 0) {
    write(`LW_CLI_USAGE: no rule test files in ${paths.length === 0 ? 'the arguments' : paths.join(', ')}. Give *.test.yaml files or directories holding them.\n`)
    return 2
  }
  const loader = loadRules ?? loadRuleFiles
  let ok = true
  for (const file of files) {
    const result = await runRuleTests(file, loader)
    write(result.output)
    ok &&= result.ok
  }
  return ok ? 0 : 1
}
