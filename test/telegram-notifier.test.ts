/**
 * TelegramNotifier against the Bot API stand-in: delivery to every chat of a route (forum topics,
 * silent delivery), each Telegram failure handled as a person would (plain-text fallback, 429
 * waits, group migration, errors that name the chat and say what to do, retryable outages and
 * hung requests), edits within the window and budget, splitting, and the bot token never showing
 * in an error or a log line.
 */
import t, { type Test } from 'tap'
import pino from 'pino'
import { Writable } from 'node:stream'
import { TelegramNotifier, type TelegramNotifierOptions, type TelegramRoute } from '../transports/telegram/notifier'
import type { RateLimits } from '../transports/telegram/rate-limit'
import { notification } from './support/notifications'
import { TelegramApiStandin } from './support/telegram-api'

const GROUP = -1001000000001
const OTHER = -1001000000003
const PRIVATE = 1001
const FORUM = -1001000000002

/** Limits small enough for quick tests; the limits themselves are tested in telegram-rate-limit. */
const FAST: RateLimits = { perChat: { limit: 1, windowMs: 5 }, perGroup: { limit: 100, windowMs: 100 }, global: { limit: 100, windowMs: 5 } }

interface Setup {
  standin: TelegramApiStandin
  notifier: TelegramNotifier
  logs: string[]
  /** The log as one text, for "the token is not in it". */
  log(): string
}

async function setup(t: Test, routes: Record<string, TelegramRoute> = { default: { chats: [{ chat_id: GROUP }], language: 'en', timezone: 'UTC' } }, options: Partial<TelegramNotifierOptions> = {}): Promise<Setup> {
  const standin = await TelegramApiStandin.start({
    chats: [
      { id: GROUP, type: 'supergroup', title: 'Ops' },
      { id: OTHER, type: 'supergroup', title: 'Dev' },
      { id: PRIVATE, type: 'private', first_name: 'Tester' },
      { id: FORUM, type: 'supergroup', title: 'Forum', is_forum: true, topics: [7] },
    ],
  })
  t.teardown(() => standin.close())
  const logs: string[] = []
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { logs.push(chunk.toString()); done() } })
  const notifier = new TelegramNotifier({ token: standin.token, apiRoot: standin.apiRoot, routes, limits: FAST, logger: pino({ level: 'warn' }, sink), ...options })
  return { standin, notifier, logs, log: () => logs.join('') }
}

function assertNoToken(t: Test, s: Setup, text: string | undefined): void {
  const secret = s.standin.token.slice(s.standin.token.indexOf(':') + 1)
  t.notOk(text?.includes(secret), 'the token is not in the error')
  t.notOk(s.log().includes(secret), 'the token is not in the log')
}

t.test('delivers HTML to every chat of the route; forum topics; ids per configured chat', async (t) => {
  const s = await setup(t, { ops: { chats: [{ chat_id: GROUP }, { chat_id: FORUM, thread_id: 7 }, { chat_id: String(PRIVATE) }], language: 'en', timezone: 'UTC' } })
  const result = await s.notifier.send(notification({ route: 'ops' }))
  t.same(result, { ok: true, messageIds: { [String(GROUP)]: 1, [`${FORUM}/7`]: 1, [String(PRIVATE)]: 1 } })
  const sent = s.standin.callsOf('sendMessage')
  t.equal(sent.length, 3)
  for (const call of sent) {
    t.equal(call.status, 200)
    t.match(call.params, { parse_mode: 'HTML', link_preview_options: { is_disabled: true } })
    t.notOk('disable_notification' in call.params, 'an error is delivered with sound')
  }
  t.equal(sent.find((c) => c.params.chat_id === FORUM)?.params.message_thread_id, 7)
  t.equal(s.standin.messages(FORUM)[0]?.threadId, 7, 'the message landed in the topic')
  t.match(s.standin.messages(GROUP)[0]?.text, /^🔴 ERROR · HTTP 5xx/)
})

t.test('severities below silent_below, and resolved notices, are delivered without sound', async (t) => {
  const s = await setup(t, { default: { chats: [{ chat_id: GROUP }], language: 'en', timezone: 'UTC', silent_below: 'error' } })
  await s.notifier.send(notification({ id: 'w', severity: 'warning' }))
  await s.notifier.send(notification({ id: 'i', severity: 'info' }))
  await s.notifier.send(notification({ id: 'e', severity: 'error' }))
  await s.notifier.send(notification({ id: 'c', severity: 'critical' }))
  await s.notifier.send(notification({ id: 'r', severity: 'critical', state: 'resolved' }))
  t.same(s.standin.messages(GROUP).map((m) => m.silent), [true, true, false, false, true])
})

t.test('"can\'t parse entities": the message is sent again as plain text', async (t) => {
  const s = await setup(t)
  s.standin.inject({ kind: 'parse_entities' }, { method: 'sendMessage' })
  const result = await s.notifier.send(notification({ event: { fields: { 'user.name': 'tom & jerry' } } }))
  t.equal(result.ok, true)
  const [html, plain] = s.standin.callsOf('sendMessage')
  t.equal(html?.params.parse_mode, 'HTML')
  t.notOk(plain !== undefined && 'parse_mode' in plain.params, 'the second attempt has no parse mode')
  t.match(plain?.params.text, 'User: tom & jerry', 'plain text, entities decoded')
  t.equal(result.messageIds[String(GROUP)], 1, 'the id of the message that arrived (the refused one was never stored)')
  t.match(s.log(), 'LW_TELEGRAM_PARSE')

  // A rule template with tags Telegram does not support is refused by Telegram itself.
  const templated = await s.notifier.send(notification({ id: 'tpl', template: '<p>{{user}} did it</p>' }))
  t.equal(templated.ok, true)
  t.match(s.standin.messages(GROUP).at(-1)?.text, '<p>alice did it</p>', 'shown as written, nothing lost')
})

t.test('429: waits retry_after and tries again; gives the alert back when it keeps coming', async (t) => {
  const s = await setup(t)
  s.standin.inject({ kind: 'retry_after', seconds: 1 }, { method: 'sendMessage' })
  const result = await s.notifier.send(notification())
  t.equal(result.ok, true)
  const [limited, retried] = s.standin.callsOf('sendMessage')
  t.equal(limited?.status, 429)
  t.equal(retried?.status, 200)
  t.ok((retried?.at ?? 0) - (limited?.at ?? 0) >= 1000, 'the retry came at least retry_after later')

  const s2 = await setup(t, undefined, { maxAttempts: 2 })
  s2.standin.inject({ kind: 'retry_after', seconds: 1 }, { method: 'sendMessage', times: 2 })
  const tired = await s2.notifier.send(notification())
  t.match(tired, { ok: false, retryable: true, retryAfter: 1000, messageIds: {} })
  t.match(tired.error, /LW_TELEGRAM_RATE_LIMITED: telegram chat -1001000000001 \(route "default"\): Telegram asks to slow down/)
  t.equal(s2.standin.callsOf('sendMessage').length, 2, 'maxAttempts calls')

  const s3 = await setup(t, undefined, { maxRetryWaitMs: 5_000 })
  s3.standin.inject({ kind: 'retry_after', seconds: 30 }, { method: 'sendMessage' })
  const long = await s3.notifier.send(notification())
  t.match(long, { ok: false, retryable: true, retryAfter: 30_000 }, 'a long wait is left to the outbox')
  t.equal(s3.standin.callsOf('sendMessage').length, 1)
})

t.test('a group upgraded to a supergroup: sent to the new id, remembered, and a warning with the id', async (t) => {
  const s = await setup(t, { default: { chats: [{ chat_id: -555 }], language: 'en', timezone: 'UTC' } })
  s.standin.addChat({ id: -555, type: 'group', title: 'Old' })
  s.standin.migrateChat(-555, -1005550000000)
  const first = await s.notifier.send(notification({ id: 'a' }))
  t.same(first, { ok: true, messageIds: { '-555': 1 } }, 'keyed by the configured id')
  t.equal(s.standin.messages(-1005550000000).length, 1, 'delivered to the supergroup')
  t.match(s.log(), /LW_TELEGRAM_MIGRATED.*new id -1005550000000.*replace the chat_id with -1005550000000 in/)
  const before = s.standin.callsOf('sendMessage').length
  await s.notifier.send(notification({ id: 'b' }))
  const after = s.standin.callsOf('sendMessage')
  t.equal(after.length - before, 1, 'the next alert goes straight to the new id')
  t.equal(after.at(-1)?.params.chat_id, -1005550000000)
})

t.test('failures that need a person: not retryable, the chat named, what to do said', async (t) => {
  const cases: Array<{ name: string; arrange: (s: Setup) => void; chat?: number; expect: RegExp }> = [
    { name: '401', arrange: (s) => s.standin.inject({ kind: 'unauthorized' }), expect: /^LW_TELEGRAM_AUTH: telegram chat -1001000000001 \(route "default"\): Telegram rejected the bot token \(401 Unauthorized\).*@BotFather/ },
    { name: '403 blocked', chat: PRIVATE, arrange: (s) => s.standin.blockBot(PRIVATE), expect: /^LW_TELEGRAM_FORBIDDEN: telegram chat 1001 \(route "default"\): .*bot was blocked by the user.*press Start/ },
    { name: '403 kicked', arrange: (s) => s.standin.blockBot(GROUP), expect: /^LW_TELEGRAM_FORBIDDEN: .*kicked.*add it back to the group/ },
    { name: 'chat not found', chat: 4242, arrange: () => undefined, expect: /^LW_TELEGRAM_CHAT_NOT_FOUND: telegram chat 4242 \(route "default"\): .*Check chat_id in routes\.default/ },
  ]
  for (const c of cases) {
    const s = await setup(t, { default: { chats: [{ chat_id: c.chat ?? GROUP }], language: 'en', timezone: 'UTC' } })
    c.arrange(s)
    const result = await s.notifier.send(notification())
    t.match(result, { ok: false, retryable: false, messageIds: {} }, c.name)
    t.match(result.error, c.expect, c.name)
    assertNoToken(t, s, result.error)
  }
  const s = await setup(t, { default: { chats: [{ chat_id: FORUM, thread_id: 99 }], language: 'en', timezone: 'UTC' } })
  const topic = await s.notifier.send(notification())
  t.match(topic, { ok: false, retryable: false })
  t.match(topic.error, /^LW_TELEGRAM_THREAD_NOT_FOUND: telegram chat -1001000000002 topic 99 \(route "default"\): .*thread_id/)
})

t.test('outages are retryable: 5xx, nothing listening, a request that never gets an answer', async (t) => {
  const s = await setup(t, undefined, { requestTimeoutMs: 300 })
  s.standin.inject({ kind: 'server_error', status: 502 })
  const bad = await s.notifier.send(notification({ id: '5xx' }))
  t.match(bad, { ok: false, retryable: true })
  t.match(bad.error, /^LW_TELEGRAM_UNAVAILABLE: .*502 Bad Gateway/)

  s.standin.inject({ kind: 'hang' })
  const hung = await s.notifier.send(notification({ id: 'hang' }))
  t.match(hung, { ok: false, retryable: true })
  t.match(hung.error, /LW_TELEGRAM_UNAVAILABLE: .*did not answer in time/)
  t.equal(s.standin.calls.at(-1)?.fault, 'hang')

  await s.standin.goOffline()
  const down = await s.notifier.send(notification({ id: 'down' }))
  t.match(down, { ok: false, retryable: true })
  t.match(down.error, /LW_TELEGRAM_UNAVAILABLE: .*cannot be reached.*ECONNREFUSED/)
  assertNoToken(t, s, down.error)
  await s.standin.goOnline()
  t.match(await s.notifier.send(notification({ id: 'down' })), { ok: true }, 'delivered once Telegram is back')
})

t.test('a partial failure: the chats that got it are not posted to again on retry', async (t) => {
  const s = await setup(t, { default: { chats: [{ chat_id: GROUP }, { chat_id: PRIVATE }], language: 'en', timezone: 'UTC' } })
  s.standin.blockBot(PRIVATE)
  const first = await s.notifier.send(notification({ id: 'p' }))
  t.match(first, { ok: false, retryable: false, messageIds: { [String(GROUP)]: 1 } })
  t.match(first.error, /telegram chat 1001/)
  s.standin.blockBot(PRIVATE, false)
  const retry = await s.notifier.send(notification({ id: 'p' }))
  t.same(retry, { ok: true, messageIds: { [String(GROUP)]: 1, [String(PRIVATE)]: 1 } })
  t.equal(s.standin.messages(GROUP).length, 1, 'the group got it once')
  t.equal(s.standin.messages(PRIVATE).length, 1)
})

t.test('edits: within the budget the message is edited, then a new one is posted', async (t) => {
  let now = 1_000_000
  const s = await setup(t, undefined, { editBudget: 3, editWindowMs: 60_000, clock: () => now })
  const base = notification({ id: 'e' })
  const first = await s.notifier.send(base)
  const id = first.messageIds[String(GROUP)] as number
  for (let total = 2; total <= 4; total++) {
    const edited = await s.notifier.send({ ...base, total, lastAt: base.lastAt + total * 1000, edit: { messageIds: first.messageIds } })
    t.same(edited, { ok: true, messageIds: { [String(GROUP)]: id } }, `edit ${total - 1} keeps the message`)
  }
  t.equal(s.standin.callsOf('editMessageText').length, 3)
  t.match(s.standin.messages(GROUP)[0], { edits: 3, text: /Count: 4/ })
  t.equal(s.standin.messages(GROUP).length, 1)

  const over = await s.notifier.send({ ...base, total: 5, edit: { messageIds: first.messageIds } })
  t.not(over.messageIds[String(GROUP)], id, 'the budget is spent: a new message')
  t.equal(s.standin.messages(GROUP).length, 2)
  t.match(s.standin.messages(GROUP)[1]?.text, /Count: 5/)

  const again = await s.notifier.send({ ...base, total: 5, edit: { messageIds: over.messageIds } })
  t.same(again.messageIds, over.messageIds, 'the new message is edited next')
  t.match(s.standin.callsOf('editMessageText').at(-1), { status: 400, description: /message is not modified/ })
  t.equal(again.ok, true, '"message is not modified" is success')

  now += 61_000
  const late = await s.notifier.send({ ...base, total: 6, edit: { messageIds: over.messageIds } })
  t.equal(s.standin.messages(GROUP).length, 3, 'past the edit window: a new message')
  t.equal(late.messageIds[String(GROUP)], 3)

  const gone = await s.notifier.send({ ...base, total: 7, edit: { messageIds: { [String(GROUP)]: 999 } } })
  t.equal(gone.messageIds[String(GROUP)], 4, 'a message that no longer exists: a new one')
})

t.test('a message over 4096 characters is split; the first part\'s id is the message\'s', async (t) => {
  const s = await setup(t, undefined, { maxParts: 3 })
  const result = await s.notifier.send(notification({ template: `<pre>{{fields.message}}</pre>`, event: { fields: { message: 'line & <more>\n'.repeat(1000) } } }))
  const parts = s.standin.callsOf('sendMessage')
  t.equal(parts.length, 3, 'at most maxParts messages')
  t.ok(parts.every((p) => p.status === 200), 'Telegram accepted every part')
  t.same(result.messageIds, { [String(GROUP)]: 1 })
  t.match(s.standin.messages(GROUP)[2]?.text, /…/, 'the last part says it was cut')

  // The second part fails: the chat already shows the head of the alert, so it is not sent again.
  s.standin.inject({ kind: 'server_error' }, { method: 'sendMessage', after: 1 })
  const partial = await s.notifier.send(notification({ id: 'partial', template: `<pre>{{fields.message}}</pre>`, event: { fields: { message: 'x\n'.repeat(3000) } } }))
  t.same(partial, { ok: true, messageIds: { [String(GROUP)]: 4 } })
  t.equal(s.standin.messages(GROUP).length, 4, 'only the first part arrived, once')
  t.match(s.log(), /the rest of a long alert was not delivered: LW_TELEGRAM_UNAVAILABLE/)
})

t.test('one chat\'s messages keep their order when sent at once', async (t) => {
  const s = await setup(t)
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => s.notifier.send(notification({ id: `o${i}`, ruleName: `rule ${i}` }))))
  t.same(results.map((r) => r.messageIds[String(GROUP)]), [1, 2, 3, 4, 5])
  t.same(s.standin.messages(GROUP).map((m) => /rule \d/.exec(m.text)?.[0]), ['rule 0', 'rule 1', 'rule 2', 'rule 3', 'rule 4'])
})

t.test('configuration mistakes are caught early or named', async (t) => {
  const s = await setup(t)
  const unrouted = await s.notifier.send(notification({ route: 'payments' }))
  t.match(unrouted, { ok: false, retryable: false })
  t.match(unrouted.error, /^LW_TELEGRAM_NO_ROUTE: rule http\.5xx: route "payments" is not configured \(routes: default\)/)
  t.throws(() => new TelegramNotifier({ token: 'x:y', routes: { default: { chats: [], language: 'en', timezone: 'Mars/Olympus' } } }),
    { code: 'LW_CONFIG_TIMEZONE', message: 'routes.default.timezone: "Mars/Olympus" is not an IANA zone known to this Node.js' })
  t.throws(() => new TelegramNotifier({ token: ' ', routes: {} }), { code: 'LW_CONFIG_VALUE', message: 'telegram.token: empty' })
})
