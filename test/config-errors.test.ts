import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { checkConfig, ConfigError, loadConfig } from '../agent/config/load'

interface WithTestdir {
  testdir(files: Record<string, string>): string
}

/** The problems of a configuration, as printed, with the temp directory cut from the file name. */
function problems(t: WithTestdir, yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  const dir = t.testdir({ 'config.yaml': yaml })
  const result = checkConfig(join(dir, 'config.yaml'), env)
  return result.problems.map((p) => p.format().split(dir + '/').join(''))
}

const VALID_INPUT = 'inputs: [{ type: file, paths: ["./*.log"] }]\n'

t.test('YAML syntax errors give the place and a hint', async (t) => {
  t.same(problems(t, 'service:\n  name: shop\n name: other\n' + VALID_INPUT), [
    'config.yaml:3:1: LW_CONFIG_SYNTAX: All mapping items must start at the same column. Align keys of the same mapping at the same column, using spaces.',
  ])
  t.same(problems(t, 'service: { name: shop }\nservice: { name: again }\n' + VALID_INPUT), [
    'config.yaml:2:1: LW_CONFIG_SYNTAX: Map keys must be unique. Each key may appear once in a mapping: remove or merge the repeated one.',
  ])
  t.same(problems(t, 'service:\n\tname: shop\n' + VALID_INPUT)[0],
    'config.yaml:2:1: LW_CONFIG_SYNTAX: Tabs are not allowed as indentation. Indent with spaces, not tabs.')
  t.same(problems(t, 'service: { name: ${APP} }\n' + VALID_INPUT, { APP: 'shop' }), [
    'config.yaml:1:19: LW_CONFIG_SYNTAX: Unexpected flow-map-start at node end. Inside [ ] or { }, quote values that contain ${...}: "${VAR}".',
  ], 'the errors that follow from the first are left out')
  t.same(problems(t, 'service: { name: shop }\nservice: { name: b }\n' + VALID_INPUT + 'inputs: []\n'), [
    'config.yaml:2:1: LW_CONFIG_SYNTAX: Map keys must be unique. Each key may appear once in a mapping: remove or merge the repeated one.',
    'config.yaml:4:1: LW_CONFIG_SYNTAX: Map keys must be unique. Each key may appear once in a mapping: remove or merge the repeated one.',
  ], 'every duplicate key is reported')
  t.same(problems(t, 'service: { name: shop }\ninputs: [{ type: file, paths: *logs }]\n'), [
    'config.yaml:2:31: LW_CONFIG_SYNTAX: inputs[0].paths: alias *logs refers to no anchor. Define &logs on a value before this alias, or write the value here.',
  ])
})

t.test('an unknown key points at the key and suggests the closest allowed one', async (t) => {
  const yaml = [
    'service: { name: shop }',
    VALID_INPUT.trimEnd(),
    'elasticsearch:',
    '  hots: ["http://es:9200"]',
    '  max_docs: 100',
    '  tls_verify: false',
    '  colour: blue',
    'elasticserch: {}',
  ].join('\n')
  t.same(problems(t, yaml), [
    'config.yaml:4:3: LW_CONFIG_UNKNOWN_KEY: elasticsearch.hots: unknown key. Did you mean "hosts"?',
    // One level down, and the flat AgentConfig spelling: both lead to the nested option.
    'config.yaml:5:3: LW_CONFIG_UNKNOWN_KEY: elasticsearch.max_docs: unknown key. Did you mean "batch.max_docs"?',
    'config.yaml:6:3: LW_CONFIG_UNKNOWN_KEY: elasticsearch.tls_verify: unknown key. Did you mean "tls.verify"?',
    'config.yaml:7:3: LW_CONFIG_UNKNOWN_KEY: elasticsearch.colour: unknown key. Allowed here: hosts, username, password, api_key, tls, index, data_stream, batch, concurrency, compression, request_timeout, retry, template, dead_letter.',
    'config.yaml:8:1: LW_CONFIG_UNKNOWN_KEY: elasticserch: unknown key. Did you mean "elasticsearch"?',
  ])
})

t.test('a missing required key is reported at the mapping that lacks it', async (t) => {
  t.same(problems(t, 'service:\n  environment: prod\n' + VALID_INPUT), [
    'config.yaml:1:1: LW_CONFIG_MISSING_KEY: service.name: required key is missing. Add "name:" under service: Name of the service (ECS service.name), e.g. the name people use for it in alerts and dashboards.',
  ])
  t.same(problems(t, '# nothing yet\n'), [
    'config.yaml:1:1: LW_CONFIG_MISSING_KEY: inputs: required key is missing. Add "inputs:" at the top level: Where logs are read from. At least one input.',
    'config.yaml:1:1: LW_CONFIG_MISSING_KEY: service: required key is missing. Add "service:" at the top level: The application whose logs these are. Every entry carries it as ECS service.name / service.environment.',
  ], 'an empty file names every required key')
  t.same(problems(t, 'service: { name: shop }\ninputs:\n  - type: file\n    multiline: { type: pattern }\n'), [
    'config.yaml:3:5: LW_CONFIG_MISSING_KEY: inputs[0].paths: required key is missing. Add "paths:" under inputs[0]: Glob patterns of the files to tail (one or a list), relative to the configuration file\'s directory.',
    'config.yaml:4:5: LW_CONFIG_MISSING_KEY: inputs[0].multiline.pattern: required key is missing. Add "pattern:" under inputs[0].multiline.',
  ], 'pattern is required by type: pattern')
  t.same(problems(t, 'service: { name: shop }\n' + VALID_INPUT + 'elasticsearch:\n  password: ${PW}\n', { PW: 's3cret' }), [
    'config.yaml:3:1: LW_CONFIG_MISSING_KEY: elasticsearch.username: required when password is set. Add "username:" next to it.',
  ])
})

t.test('wrong kinds of values say what was expected, what was found, and give an example', async (t) => {
  const yaml = [
    'service: { name: shop }',
    VALID_INPUT.trimEnd(),
    'elasticsearch:',
    '  concurrency: two',
    '  compression: yes',
    '  batch: 100',
    'limits: { max_open_files: 0 }',
    'log: { level: verbos }',
  ].join('\n')
  t.same(problems(t, yaml), [
    'config.yaml:4:16: LW_CONFIG_TYPE: elasticsearch.concurrency: expected a whole number, got "two". For example: concurrency: 2',
    'config.yaml:5:16: LW_CONFIG_VALUE: elasticsearch.compression: "yes" is not one of: auto, true, false. Use one of these.',
    'config.yaml:6:10: LW_CONFIG_TYPE: elasticsearch.batch: expected a mapping, got 100. A bulk request is sent as soon as any of these limits is reached.',
    'config.yaml:7:27: LW_CONFIG_VALUE: limits.max_open_files: must be at least 1, got 0. For example: max_open_files: 256',
    'config.yaml:8:15: LW_CONFIG_VALUE: log.level: "verbos" is not one of: trace, debug, info, warn, error. Use one of these.',
  ])
  t.same(problems(t, 'service: { name: shop }\n' + VALID_INPUT + 'log: { level: warning }\n'), [
    'config.yaml:3:15: LW_CONFIG_VALUE: log.level: "warning" is not one of: trace, debug, info, warn, error. Did you mean "warn"?',
  ])
})

t.test('true or false in quotes, where an option takes true, false or a word, is shown without its quotes', async (t) => {
  const yaml = [
    'service: { name: shop }',
    VALID_INPUT.trimEnd(),
    'elasticsearch:',
    '  compression: "false"',
  ].join('\n')
  t.same(problems(t, yaml), [
    'config.yaml:4:16: LW_CONFIG_VALUE: elasticsearch.compression: "false" is not one of: auto, true, false. Write it without quotes: compression: false',
  ])
})

t.test('a value that may be one thing or a list gets one message, about the form it has', async (t) => {
  const base = 'service: { name: shop }\n'
  t.same(problems(t, base + 'inputs: [{ type: file, paths: 5 }]\n'), [
    'config.yaml:2:31: LW_CONFIG_TYPE: inputs[0].paths: expected text or a list, got 5. For example: paths: ["./examples/logs/*.log"]',
  ])
  t.same(problems(t, base + 'inputs: [{ type: file, paths: ["./a.log", 7] }]\n'), [
    'config.yaml:2:43: LW_CONFIG_TYPE: inputs[0].paths[1]: expected text, got 7. A file path, which may contain glob patterns (*, **, ?, [abc], {a,b}).',
  ])
  t.same(problems(t, base + 'inputs: [{ type: file, paths: [] }]\n'), [
    'config.yaml:2:31: LW_CONFIG_VALUE: inputs[0].paths: must list at least 1. Add at least one.',
  ])
  t.same(problems(t, base + VALID_INPUT + 'elasticsearch: { hosts: [http://es:9200, "es2:9200"] }\n'), [
    'config.yaml:3:42: LW_CONFIG_VALUE: elasticsearch.hosts[1]: expected an http:// or https:// URL, got "es2:9200". Write the full URL of each node, one per list item, e.g. ["http://es1:9200", "http://es2:9200"].',
  ])
  t.same(problems(t, base + VALID_INPUT + 'elasticsearch: { hosts: 9200 }\n'), [
    'config.yaml:3:25: LW_CONFIG_VALUE: elasticsearch.hosts: expected an http:// or https:// URL, got 9200. Write the full URL of each node, one per list item, e.g. ["http://es1:9200", "http://es2:9200"].',
  ])
})

t.test('durations, sizes, time zones and regular expressions are checked with their own codes', async (t) => {
  const yaml = [
    'service: { name: shop }',
    'inputs:',
    '  - type: file',
    '    paths: ./app.log',
    '    timezone: Europe/Moskow',
    '    max_line_bytes: 1 megabyte',
    '    scan_interval: 0s',
    '    multiline: { type: pattern, pattern: "^(at ", timeout: 2 seconds, max_bytes: 0 }',
    '  - type: file',
    '    paths: ./other.log',
    '    timezone: Moscow',
    'elasticsearch: { batch: { interval: true } }',
    'shutdown_timeout: 0',
  ].join('\n')
  t.same(problems(t, yaml), [
    'config.yaml:5:15: LW_CONFIG_TIMEZONE: inputs[0].timezone: "Europe/Moskow" is not a known time zone. Did you mean "Europe/Moscow"?',
    'config.yaml:6:21: LW_CONFIG_SIZE: inputs[0].max_line_bytes: expected a size, got "1 megabyte". Write a number and a unit: "512KiB", "5MiB", "1GiB" (KB/MB/GB mean the same, 1024-based; a plain number is bytes).',
    'config.yaml:7:20: LW_CONFIG_DURATION: inputs[0].scan_interval: must be longer than 0. Write a number and a unit: "500ms", "2s", "5m", "1h", "1d" (a plain number is milliseconds).',
    'config.yaml:8:42: LW_CONFIG_REGEX: inputs[0].multiline.pattern: not a valid regular expression: Unterminated group. Fix the expression (JavaScript syntax); in YAML, single quotes keep backslashes as they are: \'^\\s+at \'.',
    'config.yaml:8:60: LW_CONFIG_DURATION: inputs[0].multiline.timeout: expected a duration, got "2 seconds". Write a number and a unit: "500ms", "2s", "5m", "1h", "1d" (a plain number is milliseconds).',
    'config.yaml:8:82: LW_CONFIG_SIZE: inputs[0].multiline.max_bytes: must be larger than 0. Write a number and a unit: "512KiB", "5MiB", "1GiB" (KB/MB/GB mean the same, 1024-based; a plain number is bytes).',
    'config.yaml:11:15: LW_CONFIG_TIMEZONE: inputs[1].timezone: "Moscow" is not a known time zone. Did you mean "Europe/Moscow"?',
    'config.yaml:12:37: LW_CONFIG_DURATION: elasticsearch.batch.interval: expected a duration, got true. Write a number and a unit: "500ms", "2s", "5m", "1h", "1d" (a plain number is milliseconds).',
  ], 'every problem of the file at once, in line order; shutdown_timeout may be 0')
})

t.test('options that contradict each other are reported where the fix is', async (t) => {
  const yaml = [
    'service: { name: shop }',
    'inputs:',
    '  - type: file',
    '    paths: ./app.log',
    '    multiline: { type: python, negate: true }',
    'elasticsearch:',
    '  username: ${USER_NAME}',
    '  password: ${PASSWORD}',
    '  api_key: ${KEY}',
    '  index: "shop-%{+yyyy.MM.dd}"',
    '  data_stream: true',
    '  retry: { initial: 5s, max: 1s }',
    '  batch: { max_bytes: 8MiB }',
    '  tls: { ca_file: ./certs/missing.pem }',
    'limits: { memory_buffer: 4MiB }',
  ].join('\n')
  const found = problems(t, yaml, { USER_NAME: 'u', PASSWORD: 'p', KEY: 'k' })
  t.same(found.map((line) => line.replace(/file not found: .*missing\.pem/, 'file not found: <dir>/certs/missing.pem')), [
    'config.yaml:5:32: LW_CONFIG_CONFLICT: inputs[0].multiline.negate: applies only to type: pattern, not to type: python. Remove it, or set type: pattern.',
    'config.yaml:9:3: LW_CONFIG_CONFLICT: elasticsearch.api_key: cannot be used together with username/password. Keep either api_key or username and password.',
    'config.yaml:11:16: LW_CONFIG_CONFLICT: elasticsearch.data_stream: a data stream cannot have a date pattern in its name (index "shop-%{+yyyy.MM.dd}"). Remove data_stream: true to write daily indices, or use an index name without %{+...}.',
    'config.yaml:12:30: LW_CONFIG_CONFLICT: elasticsearch.retry.max: must not be shorter than retry.initial. Raise retry.max or lower retry.initial.',
    'config.yaml:14:19: LW_CONFIG_VALUE: elasticsearch.tls.ca_file: file not found: <dir>/certs/missing.pem. Give the path of the CA certificate (PEM); a relative path starts at the configuration file\'s directory.',
    'config.yaml:15:26: LW_CONFIG_CONFLICT: limits.memory_buffer: is smaller than elasticsearch.batch.max_bytes, so a full batch could never be held. Raise limits.memory_buffer or lower elasticsearch.batch.max_bytes.',
  ])
})

t.test('index names follow Elasticsearch\'s rules; the date pattern is allowed', async (t) => {
  const base = 'service: { name: shop }\n' + VALID_INPUT
  t.same(problems(t, base + 'elasticsearch: { index: "Logs-Shop" }\n'), [
    'config.yaml:3:25: LW_CONFIG_VALUE: elasticsearch.index: "Logs-Shop" is not a valid index name: it must be lowercase. Use lowercase letters, digits, "-", "_" and "."; a date pattern goes in as %{+yyyy.MM.dd}.',
  ])
  t.same(problems(t, base + 'elasticsearch: { dead_letter: { index: "_dead letters" } }\n'), [
    'config.yaml:3:40: LW_CONFIG_VALUE: elasticsearch.dead_letter.index: "_dead letters" is not a valid index name: it must not contain " ". Use lowercase letters, digits, "-", "_" and "."; a date pattern goes in as %{+yyyy.MM.dd}.',
  ])
  t.same(problems(t, base + 'elasticsearch: { index: "shop-%{+yyyy.MM.dd}" }\n'), [], 'uppercase MM of the date pattern is fine')
})

t.test('secrets written in the file are not repeated in messages', async (t) => {
  const found = problems(t, 'service: { name: shop }\n' + VALID_INPUT + 'elasticsearch: { username: elastic, password: 918273645 }\n')
  t.same(found, [
    'config.yaml:3:47: LW_CONFIG_TYPE: elasticsearch.password: expected text, got a number. For example: password: "${ES_PASSWORD}"',
  ])
  t.notMatch(found.join('\n'), /918273645/)
})

t.test('problems come sorted by line, whatever order they were found in', async (t) => {
  const yaml = 'log: { level: nope }\nservice: { name: shop, nmae: x }\ninputs: [{ type: socket, paths: ./a.log }]\n'
  const found = problems(t, yaml)
  t.same(found, [
    'config.yaml:1:15: LW_CONFIG_VALUE: log.level: "nope" is not one of: trace, debug, info, warn, error. Use one of these.',
    'config.yaml:2:24: LW_CONFIG_UNKNOWN_KEY: service.nmae: unknown key. Did you mean "name"?',
    'config.yaml:3:18: LW_CONFIG_VALUE: inputs[0].type: must be "file", got "socket". Use one of these.',
  ])
})

t.test('loadConfig throws one ConfigError that lists every problem', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'config.yaml')
  writeFileSync(file, 'service: { name: shop }\ninputs: []\nlog: { level: loud }\n')
  const err = t.throws(() => loadConfig(file, {})) as unknown
  t.ok(err instanceof ConfigError)
  const configError = err as ConfigError
  t.equal(configError.code, 'LW_CONFIG_INVALID')
  t.equal(configError.problems.length, 2)
  t.same(configError.format().split('\n'), [
    `${file}: LW_CONFIG_INVALID: 2 problems in the configuration:`,
    `${file}:2:9: LW_CONFIG_VALUE: inputs: must list at least 1. Where logs are read from. At least one input.`,
    `${file}:3:15: LW_CONFIG_VALUE: log.level: "loud" is not one of: trace, debug, info, warn, error. Use one of these.`,
  ])
  t.match(configError.message, /inputs: must list at least 1/, 'the message alone carries the problems too')
})

t.test('a configuration file that cannot be read', async (t) => {
  const dir = t.testdir({})
  const result = checkConfig(join(dir, 'nope.yaml'))
  t.equal(result.config, undefined)
  t.same(result.problems.map((p) => p.format().split(dir + '/').join('')), [
    'nope.yaml: LW_CONFIG_READ: nope.yaml: file not found. Pass the path of a readable YAML file; config.example.yaml is a documented starting point.',
  ])
  t.equal(checkConfig(dir).problems[0]?.code, 'LW_CONFIG_READ', 'a directory')
})
