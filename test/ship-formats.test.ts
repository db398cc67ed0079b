/**
 * Every log format the agent claims to read — the bundled examples, read as config.example.yaml
 * says, and the parser fixtures, detected with `format: auto` — shipped through the real agent
 * (file input, framing, parsers, documents, the ECS template) to the real Elasticsearch:
 * nothing is refused over a field the ECS template maps (structlog's plain `"event": "..."` where
 * ECS has an object, a scalar under `http.response`), and a Python traceback arrives as one
 * document with its error fields, not as one document per line.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import t from 'tap'
import type { estypes } from '@elastic/elasticsearch'
import { loadConfig } from '../agent/config/load'
import type { AgentConfig, FileInputConfig, MultilineConfig } from '../agent/config/types'
import { createLogger } from '../agent/logger'
import { shipFiles, type ShipResult } from '../agent/ship'
import { agentConfig, dropScenario, fileInput, scenario, type Scenario } from './support/agent-harness'
import { allDocs, esUrl, refreshAndCount } from './support/elasticsearch'
import { sourceField } from './support/source-field'
import type { DeadLetter } from '../transports/elasticsearch/dead-letter'
import { documentTemplate } from '../transports/elasticsearch/template'

const ROOT = join(__dirname, '..')
const FIXTURES = join(ROOT, 'test', 'fixtures', 'parsers')
const EXAMPLE_DJANGO = join(ROOT, 'examples', 'logs', 'django.log')

function multiline(type: MultilineConfig['type']): MultilineConfig {
  return { type, negate: false, match: 'after', timeout: 2000, max_lines: 500, max_bytes: 10 * 1024 * 1024 }
}

/** Fixtures with tracebacks or stack traces, and the joining a user would configure for them. */
const JOINED: Record<string, MultilineConfig['type']> = {
  'django.log': 'python', 'gunicorn.log': 'python', 'logging-default.log': 'python', 'uvicorn.log': 'python',
  'java-stack.log': 'java', 'node-stack.log': 'java',
}

/** What to ship: each bundled example with its input from config.example.yaml, each fixture detected. */
function shipments(): Array<{ file: string; input: FileInputConfig }> {
  const example = loadConfig(join(ROOT, 'config.example.yaml'), { ES_URL: 'http://unused' })
  const out = example.inputs.flatMap((input) => input.paths.map((file) => ({ file, input: { ...input, paths: [file] } })))
  for (const name of readdirSync(FIXTURES).sort()) {
    if (!name.endsWith('.log') && !name.endsWith('.ndjson')) continue
    const file = join(FIXTURES, name)
    const joined = JOINED[name]
    out.push({ file, input: fileInput([file], { multiline: joined && multiline(joined) }) })
  }
  return out
}

/** The field a refusal's reason names: `object mapping for [http.response] ...`, `failed to parse field [n] ...`. */
function refusedField(reason: string): string | undefined {
  return /(?:object mapping for|failed to parse field|mapper|mapping) \[([^\]]+)\]/.exec(reason)?.[1]
}

/** Whether the ECS template maps `path` (or an object on the way to it): a refusal there is the template's doing. */
function templateMaps(properties: Record<string, estypes.MappingProperty>, path: string): boolean {
  const [head, ...rest] = path.split('.')
  const p = properties[head as string]
  if (p === undefined) return false
  if (rest.length === 0) return true
  const inner = (p as { properties?: Record<string, estypes.MappingProperty> }).properties
  return inner === undefined || templateMaps(inner, rest.join('.'))
}

interface Shipped {
  result: ShipResult
  refused: DeadLetter[]
}

/** Ships one file into its own indices (as one application would have), with a dead-letter file of its own. */
async function ship(s: Scenario, url: string, n: number, file: string, input: FileInputConfig): Promise<Shipped> {
  const base = agentConfig(s, url, [], { index: s.indexConfig.replace('%{', `f${n}-%{`) })
  const cfg: AgentConfig = { ...base, state_dir: join(s.stateDir, String(n)) }
  const result = await shipFiles([file], cfg, input, createLogger(process.env.LW_TEST_LOG ?? 'error'))
  const letters = join(cfg.state_dir, 'deadletter.ndjson')
  const refused = existsSync(letters)
    ? readFileSync(letters, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as DeadLetter)
    : []
  return { result, refused }
}

t.test('every bundled format ships; nothing is refused over an ECS field; tracebacks stay whole', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const s = scenario('shipformats')
  t.teardown(() => dropScenario(url, s))
  const ecs = documentTemplate(agentConfig(s, url, []).elasticsearch).template?.mappings?.properties ?? {}
  const files = shipments()
  t.equal(files.length, 3 + 17, 'three examples and seventeen fixtures')

  let created = 0
  for (const [n, { file, input }] of files.entries()) {
    const { result, refused } = await ship(s, url, n, file, input)
    const byTemplate = refused.filter((d) => templateMaps(ecs, refusedField(d.error.reason ?? '') ?? ''))
    t.same(byTemplate.map((d) => `${d.error.reason} — ${d.raw}`), [], `${basename(file)}: nothing refused over a field of the ECS template`)
    // The application's own fields may disagree between its lines (structlog's `exception` as a
    // string, then as a list): such lines are refused, and kept with their reason, not lost.
    if (refused.length > byTemplate.length) {
      t.comment(`${basename(file)}: refused over its own fields: ${refused.map((d) => d.error.reason).join('; ')}`)
    }
    t.equal(result.deadLettered, refused.length, `${basename(file)}: every refused entry is in the dead-letter file`)
    t.equal(result.created + result.deadLettered, result.entries, `${basename(file)}: ${result.entries} entries, each created or dead-lettered`)
    t.ok(result.entries > 0, `${basename(file)}: not empty`)
    created += result.created
  }
  const documents = `${s.index},-${s.template}-deadletter`
  t.equal(await refreshAndCount(url, documents), created, 'Elasticsearch holds every created document')

  const docs = (await allDocs(url, documents)).map((d) => d._source)
  const messageOf = (d: Record<string, unknown>): string => String(sourceField(d, 'message') ?? '')
  const fileOf = (d: Record<string, unknown>): string => String(sourceField(d, 'log.file.path') ?? '')

  // No joined file has a document that is a piece of a traceback or stack trace.
  for (const file of [EXAMPLE_DJANGO, ...Object.keys(JOINED).map((name) => join(FIXTURES, name))]) {
    const pieces = docs.filter((d) => fileOf(d) === file &&
      /^(Traceback \(most recent call last\)|The above exception|During handling of|Caused by: |\s+(File "|at |\.\.\. \d+ more))/.test(messageOf(d)))
    t.same(pieces.map(messageOf), [], `${basename(file)}: no traceback line shipped on its own`)
  }

  // examples/logs/django.log: one document per log record, each traceback inside its record.
  const records = readFileSync(EXAMPLE_DJANGO, 'utf8').split('\n').filter((l) => /^\[\d{4}-\d\d-\d\d /.test(l)).length
  const django = docs.filter((d) => fileOf(d) === EXAMPLE_DJANGO)
  t.equal(django.length, records, `examples/logs/django.log: ${records} records, as many documents`)
  const failed = django.filter((d) => messageOf(d).startsWith('Internal Server Error: /api/orders/42/'))
  t.equal(failed.length, 1, 'the chained traceback of /api/orders/42/ is one document')
  const doc = failed[0] ?? {}
  t.equal(sourceField(doc, 'log.level'), 'error')
  t.equal(sourceField(doc, 'error.type'), 'django.db.utils.OperationalError', 'error.type is the exception raised last')
  const stack = String(sourceField(doc, 'error.stack_trace') ?? '')
  t.match(stack, /^Traceback \(most recent call last\):\n {2}File "/, 'error.stack_trace starts with the traceback')
  t.match(stack, /psycopg2\.OperationalError: connection to server/, 'it holds the cause')
  t.match(stack, /The above exception was the direct cause of the following exception:/)
  t.match(stack, /django\.db\.utils\.OperationalError: connection to server at "10\.0\.0\.5"/, 'and the exception raised last')
  t.match(sourceField(doc, 'log.flags'), ['multiline'], 'flagged multiline')
})

t.test('format auto reads the bundled Django log as Python logging', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const s = scenario('shipautodjango')
  t.teardown(() => dropScenario(url, s))
  const { result, refused } = await ship(s, url, 0, EXAMPLE_DJANGO, fileInput([EXAMPLE_DJANGO], { multiline: multiline('python') }))
  t.same(refused, [])
  t.equal(result.parseErrors, 0, 'every record parsed (runserver request lines are not an access log)')
  const docs = (await allDocs(url, `${s.index},-${s.template}-deadletter`)).map((d) => d._source)
  const undated = docs.filter((d) => !String(sourceField(d, '@timestamp')).startsWith('2025-03-14')).map((d) => sourceField(d, 'message'))
  t.same(undated, [], 'every document has the time written in its line')
})
