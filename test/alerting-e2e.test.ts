/**
 * The whole alerting path in the real agent: log lines → rules → dedup → outbox → Telegram (the
 * loopback stand-in of the Bot API). Alerts do not wait for Elasticsearch (invariant 4), survive
 * a restart in the middle of a dedup window without re-sending (invariant 5), and pile up during
 * a Telegram outage to be delivered afterwards, each once.
 */
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { AgentConfig } from '../agent/config/types'
import { agentConfig, fileInput, scenario, sleep, startAgent, writeLines, type Scenario, esScenario } from './support/agent-harness'
import { TelegramApiStandin } from './support/telegram-api'

const CHAT = -1001234567890

const RULES = `rules:
  - id: test-5xx
    name: HTTP 5xx in a test
    type: match
    severity: error
    query: 'http.response.status_code >= 500'
    group_by: [url.path]
    realert: 1h
    group_wait: 0s
`

function config(s: Scenario, es: string, standin: TelegramApiStandin, over: Partial<AgentConfig['elasticsearch']> = {}): AgentConfig {
  const rulesDir = join(s.dir, 'rules')
  mkdirSync(rulesDir, { recursive: true })
  writeFileSync(join(rulesDir, 'test.yaml'), RULES)
  const cfg = agentConfig(s, es, [fileInput([join(s.logs, '*.log')], { format: 'json' })], over)
  cfg.rules = { builtin: false, paths: [rulesDir] }
  cfg.telegram = { bot_token: standin.token, api_root: standin.apiRoot }
  cfg.routes = { default: { chats: [{ chat_id: CHAT }], language: 'en', timezone: 'UTC' } }
  return cfg
}

function request(path: string, status: number, i: number): string {
  return JSON.stringify({ level: status >= 500 ? 50 : 30, time: 1_700_000_000_000 + i, msg: 'request completed', req: { method: 'GET', url: path }, res: { statusCode: status } }) + '\n'
}

async function waitFor(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

t.test('an alert reaches Telegram, escaped, even while Elasticsearch is down', async (t) => {
  const s = scenario('alert-esdown')
  mkdirSync(s.logs, { recursive: true })
  const standin = await TelegramApiStandin.start({ chats: [{ id: CHAT, type: 'supergroup', title: 'ops' }] })
  t.teardown(() => standin.close())
  // Nothing listens on port 1: Elasticsearch is down for the whole test. A small buffer makes
  // the reader run out of room and read ahead for the rules only.
  const cfg = config(s, 'http://127.0.0.1:1', standin, { batch_max_bytes: 16 * 1024 })
  cfg.limits.memory_buffer = 32 * 1024
  cfg.shutdown_timeout = 1000
  const agent = await startAgent(cfg)
  t.teardown(() => agent.stop())
  const log = join(s.logs, 'app.log')
  writeLines(log, 'filler', 0, 2000)
  appendFileSync(log, request('/api/<orders>&x', 503, 1))
  await waitFor('the alert', () => standin.callsOf('sendMessage').length > 0)
  const sent = standin.callsOf('sendMessage')
  t.equal(sent.length, 1, 'one alert')
  const text = String(sent[0]!.params['text'])
  t.match(text, /HTTP 5xx in a test/)
  t.match(text, /\/api\/&lt;orders&gt;&amp;x/, 'the path from the log is HTML-escaped')
  t.equal(sent[0]!.params['parse_mode'], 'HTML')
  t.ok(agent.sink.pendingBytes > 0, 'documents are still waiting for Elasticsearch')
})

t.test('a restart in the middle of a dedup window does not re-send; a Telegram outage delivers afterwards, once', async (t) => {
  const setup = esScenario(t, 'alert-restart')
  if (!setup) return
  const { url, s } = setup
  const standin = await TelegramApiStandin.start({ chats: [{ id: CHAT, type: 'supergroup', title: 'ops' }] })
  t.teardown(() => standin.close())
  const cfg = config(s, url, standin)
  const log = join(s.logs, 'app.log')

  let agent = await startAgent(cfg)
  appendFileSync(log, request('/a', 500, 1))
  await waitFor('the first alert', () => standin.callsOf('sendMessage').length === 1)
  await sleep(500) // a checkpoint is written
  t.ok(await agent.stop())

  agent = await startAgent(cfg)
  t.teardown(() => agent.stop())
  appendFileSync(log, request('/a', 500, 2))
  await sleep(3000)
  t.equal(standin.callsOf('sendMessage').length, 1, 'the same fingerprint within its realert window: no new message after the restart')

  // Telegram goes away while alerts for three new paths pile up; they all arrive once it is back.
  await standin.goOffline()
  for (const [i, path] of ['/orders-b', '/orders-c', '/orders-d'].entries()) appendFileSync(log, request(path, 502, 10 + i))
  await sleep(2500)
  await standin.goOnline()
  await waitFor('the piled-up alerts', () => standin.callsOf('sendMessage').length >= 4, 60_000)
  await sleep(2000)
  const texts = standin.callsOf('sendMessage').map((c) => String(c.params['text']))
  t.equal(texts.length, 4, 'each alert delivered once')
  for (const path of ['/orders-b', '/orders-c', '/orders-d']) t.equal(texts.filter((x) => x.includes(path)).length, 1, `${path} once`)
})
