import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import t from 'tap'
import { checkConfig } from '../agent/config/load'
import schema from '../agent/config/schema.json'

const root = join(__dirname, '..')
const example = join(root, 'config.example.yaml')
const text = readFileSync(example, 'utf8')

t.test('config.example.yaml loads without problems, with or without ES_URL', async (t) => {
  const bare = checkConfig(example, {})
  t.same(bare.problems.map((p) => p.format()), [])
  t.same(bare.config?.elasticsearch.hosts, ['http://127.0.0.1:9200'])
  const withUrl = checkConfig(example, { ES_URL: 'https://es.example.com:9200' })
  t.same(withUrl.config?.elasticsearch.hosts, ['https://es.example.com:9200'])
})

t.test('it tails the bundled example logs', async (t) => {
  const config = checkConfig(example, {}).config
  const paths = config?.inputs.flatMap((input) => input.paths) ?? []
  t.same(paths, ['app.log', 'access.log', 'django.log'].map((name) => join(root, 'examples/logs', name)))
  for (const file of paths) {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
    t.ok(lines.length >= 30 && lines.length <= 100, `${file}: a few dozen lines (${lines.length})`)
  }
  t.equal(config?.inputs[2]?.multiline?.type, 'python', 'the Django log joins its tracebacks')
})

t.test('the first line points editors at the schema', async (t) => {
  const match = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text.split('\n')[0] ?? '')
  t.ok(match, 'the modeline is the first line')
  t.ok(match && existsSync(resolve(dirname(example), match[1] ?? '')), 'and names the schema file')
})

/** Every option name the schema knows, wherever it is nested. */
function optionNames(node: unknown, names = new Set<string>()): Set<string> {
  if (typeof node !== 'object' || node === null) return names
  const record = node as Record<string, unknown>
  if (typeof record.properties === 'object' && record.properties !== null) {
    for (const name of Object.keys(record.properties)) names.add(name)
  }
  for (const [key, value] of Object.entries(record)) {
    if (key !== 'examples' && key !== 'default' && key !== 'if') optionNames(value, names)
  }
  return names
}

t.test('every option of the schema is shown in the example, set or in a comment', async (t) => {
  const names = [...optionNames(schema)]
  t.ok(names.length > 40)
  for (const name of names) {
    t.match(text, new RegExp(`^\\s*(#\\s*)?(- )?${name}:`, 'm'), `${name} appears as "${name}:"`)
  }
})

t.test('the example logs look like what they stand for', async (t) => {
  const logs = join(root, 'examples/logs')

  const app = readFileSync(join(logs, 'app.log'), 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  for (const entry of app) t.ok(typeof entry.level === 'number' && typeof entry.time === 'number' && typeof entry.msg === 'string', 'a pino line')
  const statuses = app.map((entry) => (entry.res as { statusCode?: number } | undefined)?.statusCode)
  t.ok(statuses.filter((status) => status === 500).length >= 2, 'a few 500s')
  t.ok(app.some((entry) => /\n {4}at /.test(String((entry.err as { stack?: string } | undefined)?.stack))), 'an error with a stack')

  const combined = /^\S+ \S+ \S+ \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "[A-Z]+ \S+ HTTP\/1\.[01]" (\d{3}) (\d+|-) "[^"]*" "[^"]*"$/
  const access = readFileSync(join(logs, 'access.log'), 'utf8').trimEnd().split('\n')
  for (const line of access) t.match(line, combined, 'nginx combined format')
  t.ok(access.some((line) => combined.exec(line)?.[1] === '500'), 'with 500s')

  const django = readFileSync(join(logs, 'django.log'), 'utf8')
  t.match(django, /^\[2025-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] ERROR \[django\.request:\d+\] Internal Server Error: /m)
  t.match(django, /^Traceback \(most recent call last\):\n {2}File "/m)
})
