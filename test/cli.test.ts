/**
 * The command line as a user meets it: help and version, usage mistakes (exit 2 with a message
 * that says what to do), check-config on good and broken files, setup against the real
 * Elasticsearch (idempotent) and an unreachable one (exit 1), and run refusing a bad config.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { closedPort, runCli, writeScenarioConfig } from './support/cli-process'
import { dropEs, esUrl } from './support/elasticsearch'
import { scenario } from './support/agent-harness'

const ROOT = join(__dirname, '..')
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

t.test('--help lists the commands and exits 0', async (t) => {
  const res = await runCli(['--help'])
  t.equal(res.code, 0)
  t.match(res.stdout, /^Usage: logwarden /)
  for (const command of ['run', 'check-config', 'setup', 'ship']) t.match(res.stdout, new RegExp(`\\n  ${command} `), `lists ${command}`)
})

t.test('--version prints the package version and exits 0', async (t) => {
  const res = await runCli(['--version'])
  t.equal(res.code, 0)
  t.equal(res.stdout.trim(), VERSION)
})

t.test('usage mistakes exit 2 and say what to do', async (t) => {
  const typo = await runCli(['shp', 'x.log'])
  t.equal(typo.code, 2, 'unknown command')
  t.match(typo.stderr, /unknown command 'shp'/)
  t.match(typo.stderr, /Did you mean ship\?/)
  t.match(typo.stderr, /--help/)

  for (const command of ['run', 'check-config', 'setup']) {
    const res = await runCli([command])
    t.equal(res.code, 2, `${command} without -c`)
    t.match(res.stderr, /required option '-c, --config <file>' not specified/)
  }
})

t.test('check-config accepts the bundled example', async (t) => {
  const res = await runCli(['check-config', '-c', join(ROOT, 'config.example.yaml')])
  t.equal(res.code, 0, 'exit 0', { stderr: res.stderr })
  t.match(res.stdout, /config\.example\.yaml: OK — 3 input\(s\)/)
  t.match(res.stdout, /\(no gzip: compression auto, every host is this machine\)/, 'the example ships to localhost: what auto means there is said')
  t.equal(res.stderr, '')
})

t.test('check-config reports each problem of a broken config with file:line:column and a suggestion', async (t) => {
  const dir = t.testdir({
    'broken.yaml': [
      'service: { name: shop }',
      'inputs:',
      '  - type: file',
      '    paths: ["./*.log"]',
      '    format: jsn',
      'elasticsearch:',
      '  hots: ["http://127.0.0.1:9200"]',
    ].join('\n') + '\n',
  })
  const file = join(dir, 'broken.yaml')
  const res = await runCli(['check-config', '-c', file])
  t.equal(res.code, 2)
  t.equal(res.stdout, '', 'nothing claims the file is OK')
  t.match(res.stderr, `${file}:7:3: LW_CONFIG_UNKNOWN_KEY: elasticsearch.hots: unknown key. Did you mean "hosts"?`)
  t.match(res.stderr, `${file}:5:13: LW_CONFIG_VALUE: inputs[0].format: "jsn" is not one of: auto, json, access, python, plain. Did you mean "json"?`)
})

t.test('setup installs the templates once; a second run finds them unchanged', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const s = scenario('clisetup')
  mkdirSync(s.logs, { recursive: true })
  t.teardown(() => dropEs(url, `${s.template}*`, [s.template, `${s.template}-deadletter`]))
  const config = writeScenarioConfig(s, url, [`paths: [${JSON.stringify(join(s.logs, '*.log'))}]`])

  const first = await runCli(['setup', '-c', config])
  t.equal(first.code, 0, 'exit 0', { stderr: first.stderr })
  t.match(first.stdout, `index template ${s.template}: created\n`)
  t.match(first.stdout, `index template ${s.template}-deadletter: created\n`)

  const second = await runCli(['setup', '-c', config])
  t.equal(second.code, 0, 'exit 0', { stderr: second.stderr })
  t.equal(second.stdout, `index template ${s.template}: unchanged\nindex template ${s.template}-deadletter: unchanged\n`)
})

t.test('setup against an unreachable Elasticsearch exits 1 and says what to check', async (t) => {
  const s = scenario('clisetupdown')
  const port = await closedPort()
  const config = writeScenarioConfig(s, `http://127.0.0.1:${port}`, ['paths: ["./*.log"]'])
  const res = await runCli(['setup', '-c', config])
  t.equal(res.code, 1)
  t.match(res.stderr, `LW_ES_SETUP: could not install the index templates at http://127.0.0.1:${port}`)
  t.match(res.stderr, /Check that Elasticsearch is running and reachable/)
  t.equal(res.stdout, '')
})

t.test('run refuses a config it cannot read or that is invalid, with exit 2', async (t) => {
  const dir = t.testdir({ 'syntax.yaml': 'service: [\n', 'empty.yaml': '# nothing yet\n', 'a-directory.yaml': {} })

  const missing = await runCli(['run', '-c', join(dir, 'missing.yaml')])
  t.equal(missing.code, 2, 'missing file')
  t.match(missing.stderr, /LW_CONFIG_READ: .*missing\.yaml: file not found\. Pass the path of a readable YAML file/)

  const directory = await runCli(['run', '-c', join(dir, 'a-directory.yaml')])
  t.equal(directory.code, 2, 'a directory')
  t.match(directory.stderr, /LW_CONFIG_READ: .*a directory, not a file/)

  const syntax = await runCli(['run', '-c', join(dir, 'syntax.yaml')])
  t.equal(syntax.code, 2, 'YAML syntax error')
  t.match(syntax.stderr, `${join(dir, 'syntax.yaml')}:2:1: LW_CONFIG_SYNTAX`)

  const empty = await runCli(['run', '-c', join(dir, 'empty.yaml')])
  t.equal(empty.code, 2, 'required keys missing')
  t.match(empty.stderr, /LW_CONFIG_MISSING_KEY: inputs: required key is missing/)
  t.match(empty.stderr, /LW_CONFIG_MISSING_KEY: service: required key is missing/)

  // Nothing was started: no state directory (default ./data) appeared next to the bad configs.
  t.same(readdirSync(dir).sort(), ['a-directory.yaml', 'empty.yaml', 'syntax.yaml'])
})
