import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../agent/config/load'
import schema from '../agent/config/schema.json'
import type { AgentConfig } from '../agent/config/types'

t.test('a minimal configuration gets every default', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'service: { name: shop }\ninputs:\n  - type: file\n    paths: logs/*.log\n' })
  const expected: AgentConfig = {
    source: join(dir, 'config.yaml'),
    service: { name: 'shop' },
    state_dir: join(dir, 'data'),
    inputs: [
      {
        type: 'file',
        paths: [join(dir, 'logs/*.log')],
        exclude: [],
        format: 'auto',
        start_position: 'beginning',
        timezone: 'UTC',
        max_line_bytes: 1024 * 1024,
        dataset: 'shop.log',
        fields: {},
        scan_interval: 10_000,
        close_inactive: 300_000,
      },
    ],
    elasticsearch: {
      hosts: ['http://127.0.0.1:9200'],
      tls_verify: true,
      index: 'logs-logwarden-default',
      data_stream: true,
      batch_max_docs: 2000,
      batch_max_bytes: 5 * 1024 * 1024,
      batch_interval: 1000,
      concurrency: 2,
      compression: 'auto',
      request_timeout: 30_000,
      retry_initial: 500,
      retry_max: 30_000,
      template_name: 'logwarden',
      number_of_shards: 1,
      number_of_replicas: 1,
      setup_on_start: true,
      dead_letter_index: 'logwarden-deadletter',
    },
    limits: { memory_buffer: 16 * 1024 * 1024, max_open_files: 256 },
    checkpoint_interval: 1000,
    shutdown_timeout: 10_000,
    log: { level: 'info' },
    rules: { builtin: true, paths: [], disable: [] },
    routes: {},
    alerts: { index: 'logwarden-alerts', edit_window: 3_600_000, edit_budget: 20, per_rule_per_minute: 20 },
  }
  t.same(loadConfig(join(dir, 'config.yaml'), {}), expected)
})

t.test('every option as written maps to its AgentConfig field', async (t) => {
  const yaml = `
service: { name: billing, environment: staging }
state_dir: /var/lib/logwarden
inputs:
  - type: file
    paths: ["./app/*.log", "/var/log/billing/**/*.json"]
    exclude: "*.gz"
    format: json
    start_position: end
    timezone: europe/moscow
    max_line_bytes: 256KB
    multiline:
      type: pattern
      pattern: '^\\s+at '
      negate: true
      match: before
      timeout: 1.5s
      max_lines: 50
      max_bytes: 512KiB
    dataset: billing.app
    fields: { labels.team: payments, labels.shard: 3, canary: true }
    scan_interval: 30s
    close_inactive: 1h
elasticsearch:
  hosts: https://es.internal:9200
  api_key: abc123==
  tls: { ca_file: certs/ca.pem, verify: false }
  index: billing-%{+yyyy.MM.dd}
  batch: { max_docs: 500, max_bytes: 1048576, interval: 250 }
  concurrency: 4
  compression: false
  request_timeout: 1m
  retry: { initial: 1s, max: 2m }
  template: { name: billing, shards: 3, replicas: 0, setup_on_start: false }
  dead_letter: { index: billing-dead }
limits: { memory_buffer: 1GiB, max_open_files: 32 }
checkpoint_interval: 5s
shutdown_timeout: 0
log: { level: debug }
`
  const dir = t.testdir({ 'config.yaml': yaml, certs: { 'ca.pem': '-----BEGIN CERTIFICATE-----\n' } })
  const expected: AgentConfig = {
    source: join(dir, 'config.yaml'),
    service: { name: 'billing', environment: 'staging' },
    state_dir: '/var/lib/logwarden',
    inputs: [
      {
        type: 'file',
        paths: [join(dir, 'app/*.log'), '/var/log/billing/**/*.json'],
        exclude: ['*.gz'],
        format: 'json',
        start_position: 'end',
        timezone: 'Europe/Moscow',
        max_line_bytes: 256 * 1024,
        multiline: { type: 'pattern', pattern: '^\\s+at ', negate: true, match: 'before', timeout: 1500, max_lines: 50, max_bytes: 512 * 1024 },
        dataset: 'billing.app',
        fields: { 'labels.team': 'payments', 'labels.shard': 3, canary: true },
        scan_interval: 30_000,
        close_inactive: 3_600_000,
      },
    ],
    elasticsearch: {
      hosts: ['https://es.internal:9200'],
      api_key: 'abc123==',
      ca_file: join(dir, 'certs/ca.pem'),
      tls_verify: false,
      index: 'billing-%{+yyyy.MM.dd}',
      data_stream: false,
      batch_max_docs: 500,
      batch_max_bytes: 1_048_576,
      batch_interval: 250,
      concurrency: 4,
      compression: false,
      request_timeout: 60_000,
      retry_initial: 1000,
      retry_max: 120_000,
      template_name: 'billing',
      number_of_shards: 3,
      number_of_replicas: 0,
      setup_on_start: false,
      dead_letter_index: 'billing-dead',
    },
    limits: { memory_buffer: 1024 ** 3, max_open_files: 32 },
    checkpoint_interval: 5000,
    shutdown_timeout: 0,
    log: { level: 'debug' },
    rules: { builtin: true, paths: [], disable: [] },
    routes: {},
    alerts: { index: 'logwarden-alerts', edit_window: 3_600_000, edit_budget: 20, per_rule_per_minute: 20 },
  }
  t.same(loadConfig(join(dir, 'config.yaml'), {}), expected)
})

t.test('relative paths start at the configuration file, not at the working directory', async (t) => {
  const dir = t.testdir({ etc: { 'config.yaml': 'service: { name: a }\nstate_dir: ../state\ninputs: [{ type: file, paths: ../logs/a.log }]\n' } })
  const config = loadConfig(join(dir, 'etc', 'config.yaml'), {})
  t.equal(config.state_dir, join(dir, 'state'))
  t.same(config.inputs[0]?.paths, [join(dir, 'logs/a.log')])
  t.equal(config.source, join(dir, 'etc', 'config.yaml'))
})

t.test('an empty section means all its defaults', async (t) => {
  // What is left when every option under a key is commented out.
  const yaml = 'service: { name: a }\ninputs:\n  - type: file\n    paths: a.log\n    exclude:\n    fields:\nelasticsearch:\n  # hosts: []\nlimits:\nlog:\n'
  const dir = t.testdir({ 'config.yaml': yaml, 'defaults.yaml': 'service: { name: a }\ninputs: [{ type: file, paths: a.log }]\n' })
  const defaults = loadConfig(join(dir, 'defaults.yaml'), {})
  t.same({ ...loadConfig(join(dir, 'config.yaml'), {}), source: defaults.source }, defaults)
})

t.test('data_stream follows the index name unless it is set', async (t) => {
  const load = (es: string) => {
    const dir = t.testdir({ 'config.yaml': `service: { name: a }\ninputs: [{ type: file, paths: a.log }]\nelasticsearch: ${es}\n` })
    return loadConfig(join(dir, 'config.yaml'), {}).elasticsearch.data_stream
  }
  t.equal(load('{ index: logs-a-default }'), true)
  t.equal(load('{ index: "a-%{+yyyy.MM}" }'), false)
  t.equal(load('{ index: logs-a-default, data_stream: false }'), false, 'a plain index with a plain name')
})

t.test('the forms of sizes and durations', async (t) => {
  const load = (line: string) => {
    const dir = t.testdir({ 'config.yaml': `service: { name: a }\ninputs: [{ type: file, paths: a.log, ${line} }]\n` })
    return loadConfig(join(dir, 'config.yaml'), {}).inputs[0]
  }
  t.equal(load('max_line_bytes: 2MiB')?.max_line_bytes, 2 * 1024 * 1024)
  t.equal(load('max_line_bytes: 2MB')?.max_line_bytes, 2 * 1024 * 1024, 'MB is 1024-based, as in the bytes package')
  t.equal(load('max_line_bytes: 2 mb')?.max_line_bytes, 2 * 1024 * 1024)
  t.equal(load('max_line_bytes: 1.5k')?.max_line_bytes, 1536)
  t.equal(load('max_line_bytes: 100B')?.max_line_bytes, 100)
  t.equal(load('max_line_bytes: "4096"')?.max_line_bytes, 4096)
  t.equal(load('scan_interval: 500ms')?.scan_interval, 500)
  t.equal(load('scan_interval: 2 s')?.scan_interval, 2000)
  t.equal(load('scan_interval: 1d')?.scan_interval, 86_400_000)
  t.equal(load('scan_interval: 0.5ms')?.scan_interval, 1, 'a fraction of a millisecond is not zero')
})

/** Every object in the schema, with its place, for the checks below. */
function* objects(node: unknown, where: string): Generator<[string, Record<string, unknown>]> {
  if (typeof node !== 'object' || node === null) return
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) yield* objects(item, `${where}/${i}`)
    return
  }
  const record = node as Record<string, unknown>
  yield [where, record]
  for (const [key, value] of Object.entries(record)) {
    if (key === 'examples' || key === 'default') continue
    yield* objects(value, `${where}/${key}`)
  }
}

t.test('the schema documents every option and closes every mapping', async (t) => {
  let properties = 0
  for (const [where, node] of objects(schema, '#')) {
    // Maps keyed by the user's own names (input fields, route names) are closed by their value schema.
    const isMap = where === '#/definitions/fileInput/properties/fields' || node.propertyNames !== undefined
    if (node.type === 'object' && !isMap) {
      t.equal(node.additionalProperties, false, `${where} allows no unknown keys`)
    }
    if (typeof node.properties === 'object' && node.properties !== null && !where.endsWith('/if')) {
      for (const [name, property] of Object.entries(node.properties as Record<string, Record<string, unknown>>)) {
        properties++
        t.type(property.description, 'string', `${where}/properties/${name} has a description`)
      }
    }
  }
  t.ok(properties > 50, `all ${properties} properties were checked`)
})
