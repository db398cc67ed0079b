/**
 * `logwarden status` reads what a real agent left in its state directory: how far each file is
 * shipped, and an alert Telegram refuses for good (the bot was blocked), which is kept in the
 * outbox and shown with what to do — exit 1, so a monitor can tell.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { agentConfig, fileInput, sleep, startAgent, waitForCount, writeLines, esScenario } from './support/agent-harness'
import { runCli } from './support/cli-process'
import { TelegramApiStandin } from './support/telegram-api'

const CHAT = 1001

t.test('status: files shipped, and a blocked alert kept with what to do', async (t) => {
  const setup = esScenario(t, 'status')
  if (!setup) return
  const { url, s } = setup
  const standin = await TelegramApiStandin.start({ chats: [{ id: CHAT, type: 'private', first_name: 'Tester' }] })
  t.teardown(() => standin.close())
  standin.blockBot(CHAT)

  const rulesDir = join(s.dir, 'rules')
  mkdirSync(rulesDir, { recursive: true })
  writeFileSync(join(rulesDir, 'r.yaml'), `rules:
  - { id: status-5xx, name: HTTP 5xx in the status test, type: match, severity: error, query: 'http.response.status_code >= 500', group_wait: 0s }
`)
  const log = join(s.logs, 'app.log')
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')], { format: 'json' })])
  cfg.rules = { builtin: false, paths: [rulesDir] }
  cfg.telegram = { bot_token: standin.token, api_root: standin.apiRoot }
  cfg.routes = { default: { chats: [{ chat_id: CHAT }], language: 'en', timezone: 'UTC' } }
  const agent = await startAgent(cfg)
  writeLines(log, 'ok', 0, 20)
  appendFileSync(log, JSON.stringify({ level: 50, time: 1_700_000_000_000, msg: 'boom', req: { method: 'GET', url: '/pay' }, res: { statusCode: 502 } }) + '\n')
  await waitForCount(url, s.index, 21, 20_000)
  const until = Date.now() + 20_000
  while (standin.callsOf('sendMessage').length === 0 && Date.now() < until) await sleep(100)
  await sleep(500) // the refusal is recorded and a checkpoint written
  t.ok(await agent.stop(), 'the agent stopped with everything acknowledged')

  // The same state directory and inputs, as a configuration file the CLI reads.
  const config = join(s.dir, 'status.yaml')
  writeFileSync(config, [
    'service: { name: testapp }',
    `state_dir: ${JSON.stringify(s.stateDir)}`,
    'inputs:',
    `  - { type: file, paths: [${JSON.stringify(join(s.logs, '*.log'))}] }`,
    `elasticsearch: { hosts: [${JSON.stringify(url)}], index: ${JSON.stringify(s.indexConfig)} }`,
  ].join('\n') + '\n')
  const res = await runCli(['status', '-c', config])
  t.equal(res.code, 1, 'exit 1: an alert is blocked', { stdout: res.stdout, stderr: res.stderr })
  t.match(res.stdout, /^Agent: not running, state in /m)
  t.match(res.stdout, /^Checkpoint: saved \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/m)
  t.match(res.stdout, new RegExp(`^  ${log.replace(/[/.]/g, '\\$&')}: all [\\d.]+ [KMG]?B shipped$`, 'm'), 'the file, shipped to its end')
  t.match(res.stdout, /^Dead letters: none$/m)
  t.match(res.stdout, /^Alerts waiting for delivery: 1 \(1 blocked, 0 failed, 0 queued\)$/m)
  t.match(res.stdout, /^  blocked: "HTTP 5xx in the status test" \(status-5xx, error\) to route default via telegram/m)
  t.match(res.stdout, /bot was blocked by the user/, 'Telegram\'s reason, in the words the notifier put it')

  const json = await runCli(['status', '-c', config, '--json'])
  const st = JSON.parse(json.stdout) as { files: Array<{ path: string; shipped: number; size: number; state: string }>; alerts: Array<{ state: string; ruleId: string }> }
  t.same(st.files.map((f) => ({ path: f.path, state: f.state, done: f.shipped === f.size })), [{ path: log, state: 'current', done: true }])
  t.same(st.alerts.map((a) => [a.state, a.ruleId]), [['blocked', 'status-5xx']])
})
