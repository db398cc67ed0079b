import { join } from 'node:path'
import t from 'tap'
import { interpolate } from '../agent/config/interpolate'
import { checkConfig } from '../agent/config/load'

interface WithTestdir {
  testdir(files: Record<string, string>): string
}

function check(t: WithTestdir, yaml: string, env: NodeJS.ProcessEnv) {
  const dir = t.testdir({ 'config.yaml': yaml })
  const result = checkConfig(join(dir, 'config.yaml'), env)
  return { config: result.config, problems: result.problems.map((p) => p.format().split(dir + '/').join('')) }
}

const INPUT = 'inputs: [{ type: file, paths: ./app.log }]\n'

t.test('interpolate: variables, defaults and the escape', async (t) => {
  const env = { HOST: 'es.internal', EMPTY: '', PORT: '9201' }
  t.same(interpolate('http://${HOST}:${PORT}/', env), { value: 'http://es.internal:9201/', substituted: true, issues: [] })
  t.same(interpolate('${MISSING:-fallback}', env).value, 'fallback', 'default when unset')
  t.same(interpolate('${EMPTY:-fallback}', env).value, 'fallback', 'default when empty, as in the shell')
  t.same(interpolate('${EMPTY}', env), { value: '', substituted: true, issues: [] }, 'set but empty is empty')
  t.same(interpolate('${HOST:-}', env).value, 'es.internal')
  t.same(interpolate('${MISSING:-a:-b}', env).value, 'a:-b', 'the default runs to the closing brace')
  t.same(interpolate('cost: $5, $${HOST} stays', env), { value: 'cost: $5, ${HOST} stays', substituted: false, issues: [] })
  t.same(interpolate('no expressions', env), { value: 'no expressions', substituted: false, issues: [] })
  t.same(interpolate('${HOST}', { HOST: '${PORT}' }).value, '${PORT}', 'a value is not interpolated again')
})

t.test('interpolate: unset variables and malformed expressions are issues with their place', async (t) => {
  t.same(interpolate('x-${NOPE}-${ALSO}', {}).issues, [
    { kind: 'unset', name: 'NOPE', expression: '${NOPE}', index: 2 },
    { kind: 'unset', name: 'ALSO', expression: '${ALSO}', index: 10 },
  ])
  t.same(interpolate('${OPEN', {}).issues, [{ kind: 'syntax', expression: '${OPEN', index: 0, reason: 'there is no closing "}"' }])
  t.same(interpolate('a ${1X} b', {}).issues, [
    { kind: 'syntax', expression: '${1X}', index: 2, reason: 'a variable name is letters, digits and _, not starting with a digit' },
  ])
  const reasonOf = (text: string): string | undefined => {
    const issue = interpolate(text, {}).issues[0]
    return issue?.kind === 'syntax' ? issue.reason : undefined
  }
  t.equal(reasonOf('${VAR:default}'), 'a default is written with ":-", as in ${NAME:-default}')
  t.equal(reasonOf('${}'), 'the variable name is empty')
})

t.test('values from the environment reach the configuration', async (t) => {
  const yaml = [
    'service: { name: "${APP_NAME}", environment: "${DEPLOY_ENV:-staging}" }',
    INPUT.trimEnd(),
    'elasticsearch:',
    '  hosts: ["${ES_URL:-http://127.0.0.1:9200}"]',
    '  username: ${ES_USERNAME}',
    '  password: ${ES_PASSWORD}',
    '  index: logs-${APP_NAME}-default',
    '  dead_letter: { index: "literal-$${not-a-var}" }',
  ].join('\n')
  const { config, problems } = check(t, yaml, { APP_NAME: 'shop', ES_USERNAME: 'elastic', ES_PASSWORD: '12345', ES_URL: 'https://es:9200' })
  t.same(problems, [])
  t.same(config?.service, { name: 'shop', environment: 'staging' })
  t.same(config?.elasticsearch.hosts, ['https://es:9200'])
  t.equal(config?.elasticsearch.password, '12345', 'a password of digits stays text')
  t.equal(config?.elasticsearch.index, 'logs-shop-default')
  t.equal(config?.elasticsearch.dead_letter_index, 'literal-${not-a-var}', '$${ is a literal ${')
})

t.test('a variable is taken as the number or boolean the option expects', async (t) => {
  const yaml = [
    'service: { name: shop }',
    INPUT.trimEnd(),
    'elasticsearch:',
    '  concurrency: "${CONCURRENCY}"',
    '  compression: ${COMPRESS}',
    '  batch: { interval: "${FLUSH:-250}" }',
  ].join('\n')
  const { config, problems } = check(t, yaml, { CONCURRENCY: '4', COMPRESS: 'false' })
  t.same(problems, [])
  t.equal(config?.elasticsearch.concurrency, 4)
  t.equal(config?.elasticsearch.compression, false)
  t.equal(config?.elasticsearch.batch_interval, 250, 'a bare number is milliseconds')
  t.equal(check(t, yaml, { CONCURRENCY: '4', COMPRESS: 'auto' }).config?.elasticsearch.compression, 'auto', 'a word the option allows stays a word')
  t.equal(check(t, yaml, { CONCURRENCY: '4', COMPRESS: 'true' }).config?.elasticsearch.compression, true)

  const wrong = check(t, yaml, { CONCURRENCY: 'four', COMPRESS: 'no' })
  t.same(wrong.problems, [
    'config.yaml:4:16: LW_CONFIG_TYPE: elasticsearch.concurrency: expected a whole number, got "${CONCURRENCY}". For example: concurrency: 2',
    'config.yaml:5:16: LW_CONFIG_VALUE: elasticsearch.compression: "${COMPRESS}" is not one of: auto, true, false. Use one of these.',
  ], 'the expression is shown, not the value')
})

t.test('an unset variable is an error at the expression, naming the variable and the fix', async (t) => {
  const yaml = [
    'service: { name: shop }',
    INPUT.trimEnd(),
    'elasticsearch:',
    '  hosts: ["https://${ES_HOST}:9200"]',
    '  concurrency: ${WORKERS}',
    '  # ${IN_A_COMMENT} is left alone',
    '  template: { name: "${BROKEN" }',
  ].join('\n')
  const { config, problems } = check(t, yaml, {})
  t.equal(config, undefined)
  t.same(problems, [
    'config.yaml:4:20: LW_CONFIG_ENV_UNSET: elasticsearch.hosts[0]: environment variable ES_HOST is not set (used in ${ES_HOST}). Set ES_HOST in the agent\'s environment, or give a default: ${ES_HOST:-value}.',
    // No "expected a whole number" as well: the value is missing, not wrong.
    'config.yaml:5:16: LW_CONFIG_ENV_UNSET: elasticsearch.concurrency: environment variable WORKERS is not set (used in ${WORKERS}). Set WORKERS in the agent\'s environment, or give a default: ${WORKERS:-value}.',
    'config.yaml:7:22: LW_CONFIG_ENV_SYNTAX: elasticsearch.template.name: ${BROKEN is not a valid variable reference: there is no closing "}". Write ${NAME} or ${NAME:-default}; for a literal "${" write "$${".',
  ])
})

t.test('the same missing variable twice in one value is reported once', async (t) => {
  const { problems } = check(t, 'service: { name: "${APP}-${APP}" }\n' + INPUT, {})
  t.same(problems, [
    'config.yaml:1:19: LW_CONFIG_ENV_UNSET: service.name: environment variable APP is not set (used in ${APP}). Set APP in the agent\'s environment, or give a default: ${APP:-value}.',
  ])
})

t.test('values from the environment never appear in messages', async (t) => {
  const secret = 'Tr0ub4dor&3'
  const yaml = [
    'service: { name: shop }',
    'inputs:',
    '  - type: file',
    '    paths: ./app.log',
    '    timezone: ${SECRET}',
    '    format: "${SECRET}"',
    '    multiline: { type: pattern, pattern: "${BAD_REGEX}" }',
    'elasticsearch:',
    '  hosts: ["${SECRET}"]',
    '  index: "${SECRET}"',
    '  tls: { ca_file: "${SECRET}" }',
  ].join('\n')
  const { problems } = check(t, yaml, { SECRET: secret, BAD_REGEX: `(${secret}` })
  t.equal(problems.length, 6, problems.join('\n'))
  for (const line of problems) t.notMatch(line, secret, line)
  t.match(problems.join('\n'), /timezone: "\$\{SECRET\}" is not a known time zone/)
  t.match(problems.join('\n'), /format: "\$\{SECRET\}" is not one of/)
  t.match(problems.join('\n'), /hosts\[0\]: expected an http:\/\/ or https:\/\/ URL, got "\$\{SECRET\}"/)
})

t.test('an alias of a value from the environment is masked wherever it is used', async (t) => {
  const yaml = [
    'service: { name: shop }',
    'inputs:',
    '  - { type: file, paths: ./a.log, timezone: &zone "${ZONE}" }',
    '  - { type: file, paths: ./b.log, timezone: *zone }',
  ].join('\n')
  const { problems } = check(t, yaml, { ZONE: 'Mars/Olympus' })
  t.same(problems, [
    'config.yaml:3:51: LW_CONFIG_TIMEZONE: inputs[0].timezone: "${ZONE}" is not a known time zone. Use an IANA zone name such as "Europe/Moscow" or "UTC".',
    // Where the alias is used: that is the line for inputs[1].
    'config.yaml:4:45: LW_CONFIG_TIMEZONE: inputs[1].timezone: "${ZONE}" is not a known time zone. Use an IANA zone name such as "Europe/Moscow" or "UTC".',
  ])
})
