/**
 * The Telegram Bot API stand-in speaks the real wire protocol (telegraf, the real client, works
 * against it unchanged), keeps Telegram's rules that matter to logwarden, and injects Telegram's
 * real failures with their real shapes.
 */
import t, { type Test } from 'tap'
import { Input, Telegraf, Telegram, TelegramError } from 'telegraf'
import { TelegramApiStandin, parseTelegramHtml } from './support/telegram-api'

const GROUP = -1001000000001
const PRIVATE = 1001
const FORUM = -1001000000002

async function start(t: Test): Promise<TelegramApiStandin> {
  const standin = await TelegramApiStandin.start({
    chats: [
      { id: GROUP, type: 'supergroup', title: 'Ops' },
      { id: PRIVATE, type: 'private', first_name: 'Tester', username: 'tester' },
      { id: FORUM, type: 'supergroup', title: 'Forum', is_forum: true, topics: [7] },
    ],
  })
  t.teardown(() => standin.close())
  return standin
}

type Answer = { status: number; body: { ok: boolean; result?: unknown; error_code?: number; description?: string; parameters?: Record<string, number> } }

async function post(standin: TelegramApiStandin, method: string, body: Record<string, unknown>, token = standin.token): Promise<Answer> {
  const res = await fetch(`${standin.apiRoot}/bot${token}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() as Answer['body'] }
}

t.test('telegraf talks to it: getMe, sendMessage with per-chat message ids, recorded parameters', async (t) => {
  const standin = await start(t)
  const api = new Telegram(standin.token, { apiRoot: standin.apiRoot })
  const me = await api.getMe()
  t.equal(me.username, standin.bot.username)
  t.equal(me.is_bot, true)

  const a = await api.sendMessage(GROUP, '<b>one</b> &amp; two', { parse_mode: 'HTML', disable_notification: true })
  const b = await api.sendMessage(GROUP, 'second')
  const c = await api.sendMessage(PRIVATE, 'first in another chat')
  t.same([a.message_id, b.message_id, c.message_id], [1, 2, 1], 'message ids count per chat')
  t.equal(a.text, 'one & two', 'the answer carries the text as users see it')
  const call = standin.callsOf('sendMessage')[0]
  t.match(call, { method: 'sendMessage', body: 'json', status: 200, params: { chat_id: GROUP, text: '<b>one</b> &amp; two', parse_mode: 'HTML', disable_notification: true } })
  t.match(standin.messages(GROUP)[0], { messageId: 1, text: 'one & two', source: '<b>one</b> &amp; two', silent: true, fromBot: true })
  t.equal(standin.messages(GROUP)[1]?.silent, false)
})

t.test('a wrong token is 401 Unauthorized, an unknown method 404, as Telegram answers', async (t) => {
  const standin = await start(t)
  const wrong = new Telegram('999:wrong-token-wrong-token', { apiRoot: standin.apiRoot })
  const err = await wrong.getMe().catch((e: unknown) => e)
  t.ok(err instanceof TelegramError)
  t.match(err, { code: 401, description: 'Unauthorized' })
  t.same((await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x' }, '999:wrong')).body, { ok: false, error_code: 401, description: 'Unauthorized' })
  const unknown = await post(standin, 'noSuchMethod', {})
  t.equal(unknown.status, 404)
  t.same(unknown.body, { ok: false, error_code: 404, description: 'Not Found' })
})

t.test('urlencoded and multipart bodies; sendDocument receives the file', async (t) => {
  const standin = await start(t)
  const form = await fetch(`${standin.apiRoot}/bot${standin.token}/sendMessage`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ chat_id: String(GROUP), text: 'from a form', disable_notification: 'true' }).toString(),
  })
  t.equal(form.status, 200)
  t.match(standin.calls.at(-1), { body: 'urlencoded', params: { chat_id: String(GROUP), text: 'from a form' } })
  t.equal(standin.messages(GROUP)[0]?.silent, true, 'form booleans are understood')

  const multipart = new FormData()
  multipart.append('chat_id', String(GROUP))
  multipart.append('text', 'multipart text')
  const mp = await fetch(`${standin.apiRoot}/bot${standin.token}/sendMessage`, { method: 'POST', body: multipart })
  t.equal(mp.status, 200)
  t.equal(standin.calls.at(-1)?.body, 'multipart')

  const api = new Telegram(standin.token, { apiRoot: standin.apiRoot })
  const dump = Buffer.from('-- PostgreSQL database dump\nCREATE TABLE t (id int);\n')
  const sent = await api.sendDocument(GROUP, Input.fromBuffer(dump, 'db.sql'), { caption: '<b>backup</b> ok', parse_mode: 'HTML' })
  t.equal(sent.document.file_name, 'db.sql')
  t.equal(sent.document.file_size, dump.length)
  t.equal(sent.caption, 'backup ok')
  const call = standin.callsOf('sendDocument')[0]
  t.equal(call?.body, 'multipart', 'telegraf sends files as multipart/form-data')
  t.equal(call?.files[0]?.field, 'document')
  t.equal(call?.files[0]?.filename, 'db.sql')
  t.ok(call?.files[0]?.content.equals(dump), 'the file arrives byte for byte')
  t.ok(standin.messages(GROUP).at(-1)?.document?.content.equals(dump))
})

t.test('HTML parse mode is checked as Telegram checks it', async (t) => {
  t.equal(parseTelegramHtml('<b>bold</b> <a href="https://x.io/?a=1&amp;b=2">link</a> &lt;tag&gt; &#128512; &quot;q&quot; AT&T'), 'bold link <tag> 😀 "q" AT&T')
  t.equal(parseTelegramHtml('<pre><code class="language-js">x</code></pre><span class="tg-spoiler">s</span>'), 'xs')
  const refuse = (html: string, pattern: RegExp): void => {
    t.throws(() => parseTelegramHtml(html), { code: 400, description: pattern }, html)
  }
  refuse('a <script>alert(1)</script>', /^Bad Request: can't parse entities: Unsupported start tag "script" at byte offset 2$/)
  refuse('<b>open', /can't parse entities: Can't find end tag corresponding to start tag "b"/)
  refuse('<b><i>x</b></i>', /can't parse entities: Unmatched end tag at byte offset \d+, expected "<\/i>", found "<\/b>"/)
  refuse('x</b>', /can't parse entities: Unexpected end tag/)
  refuse('1 < 2', /can't parse entities: Unexpected end of name token/)
  refuse('<span>x</span>', /can't parse entities: Tag "span" must have class "tg-spoiler"/)
  refuse('<b x="1"', /can't parse entities: Unclosed start tag/)

  const standin = await start(t)
  const bad = await post(standin, 'sendMessage', { chat_id: GROUP, text: 'path <script>', parse_mode: 'HTML' })
  t.equal(bad.status, 400)
  t.same(bad.body, { ok: false, error_code: 400, description: 'Bad Request: can\'t parse entities: Unsupported start tag "script" at byte offset 5' })
  t.equal((await post(standin, 'sendMessage', { chat_id: GROUP, text: 'path <script>' })).status, 200, 'without parse_mode the same text is fine')
  t.equal(standin.messages(GROUP).length, 1, 'a refused message is not stored')
})

t.test('text length: 4096 characters after entity parsing', async (t) => {
  const standin = await start(t)
  const full = '&amp;'.repeat(4096) // 20480 characters on the wire, 4096 after parsing
  t.equal((await post(standin, 'sendMessage', { chat_id: GROUP, text: full, parse_mode: 'HTML' })).status, 200)
  const over = await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x'.repeat(4097) })
  t.same(over.body, { ok: false, error_code: 400, description: 'Bad Request: message is too long' })
  t.same((await post(standin, 'sendMessage', { chat_id: GROUP, text: '  ' })).body.description, 'Bad Request: message text is empty')
})

t.test('editMessageText: edits, "message is not modified", unknown message', async (t) => {
  const standin = await start(t)
  const api = new Telegram(standin.token, { apiRoot: standin.apiRoot })
  const m = await api.sendMessage(GROUP, '<b>×1</b>', { parse_mode: 'HTML' })
  const edited = await api.editMessageText(GROUP, m.message_id, undefined, '<b>×2</b>', { parse_mode: 'HTML' })
  t.match(edited, { message_id: m.message_id, text: '×2' })
  t.match(standin.messages(GROUP)[0], { text: '×2', edits: 1 })
  const same = await api.editMessageText(GROUP, m.message_id, undefined, '<b>×2</b>', { parse_mode: 'HTML' }).catch((e: unknown) => e)
  t.match(same, { code: 400, description: /^Bad Request: message is not modified/ })
  const gone = await api.editMessageText(GROUP, 999, undefined, 'x').catch((e: unknown) => e)
  t.match(gone, { code: 400, description: 'Bad Request: message to edit not found' })
})

t.test('chat state: unknown chat, migrated group, blocked bot, forum topics', async (t) => {
  const standin = await start(t)
  t.same((await post(standin, 'sendMessage', { chat_id: 42, text: 'x' })).body, { ok: false, error_code: 400, description: 'Bad Request: chat not found' })

  standin.addChat({ id: -555, type: 'group', title: 'Old group' })
  standin.migrateChat(-555, -1005550000000)
  const moved = await post(standin, 'sendMessage', { chat_id: -555, text: 'x' })
  t.same(moved.body, { ok: false, error_code: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: -1005550000000 } })
  t.equal((await post(standin, 'sendMessage', { chat_id: -1005550000000, text: 'x' })).status, 200, 'the new supergroup exists')
  t.equal((await post(standin, 'getChat', { chat_id: -555 })).body.parameters?.migrate_to_chat_id, -1005550000000, 'getChat on the old id says where it went')

  standin.blockBot(PRIVATE)
  t.same((await post(standin, 'sendMessage', { chat_id: PRIVATE, text: 'x' })).body, { ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' })
  standin.blockBot(GROUP)
  t.equal((await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x' })).body.description, 'Forbidden: bot was kicked from the supergroup chat')

  const topic = await post(standin, 'sendMessage', { chat_id: FORUM, message_thread_id: 7, text: 'in topic' })
  t.match(topic.body.result, { message_thread_id: 7, is_topic_message: true })
  t.equal(standin.messages(FORUM)[0]?.threadId, 7)
  t.same((await post(standin, 'sendMessage', { chat_id: FORUM, message_thread_id: 8, text: 'x' })).body.description, 'Bad Request: message thread not found')
  t.match((await post(standin, 'getChat', { chat_id: FORUM })).body.result, { id: FORUM, type: 'supergroup', title: 'Forum', is_forum: true })
})

t.test('injected faults have Telegram\'s shapes, hit only their target, and run out', async (t) => {
  const standin = await start(t)
  standin.inject({ kind: 'retry_after', seconds: 7 }, { method: 'sendMessage', chatId: GROUP, times: 2 })
  t.equal((await post(standin, 'sendMessage', { chat_id: PRIVATE, text: 'other chat' })).status, 200, 'another chat is not hit')
  t.equal((await post(standin, 'getChat', { chat_id: GROUP })).status, 200, 'another method is not hit')
  for (let i = 0; i < 2; i++) {
    const limited = await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x' })
    t.equal(limited.status, 429)
    t.same(limited.body, { ok: false, error_code: 429, description: 'Too Many Requests: retry after 7', parameters: { retry_after: 7 } })
  }
  t.equal((await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x' })).status, 200, 'after `times` the fault is spent')
  t.equal(standin.callsOf('sendMessage').filter((c) => c.fault === 'retry_after').length, 2, 'faulted calls are recorded as such')

  standin.inject({ kind: 'blocked' }, { method: 'sendMessage', after: 1 })
  t.same([(await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x' })).status, (await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x' })).status], [200, 403], '`after` lets requests through first')

  const cases: Array<[Parameters<TelegramApiStandin['inject']>[0], number, string, Record<string, number>?]> = [
    [{ kind: 'parse_entities' }, 400, 'Bad Request: can\'t parse entities: Unsupported start tag "injected" at byte offset 0'],
    [{ kind: 'migrate', to: -1009 }, 400, 'Bad Request: group chat was upgraded to a supergroup chat', { migrate_to_chat_id: -1009 }],
    [{ kind: 'blocked' }, 403, 'Forbidden: bot was blocked by the user'],
    [{ kind: 'unauthorized' }, 401, 'Unauthorized'],
    [{ kind: 'chat_not_found' }, 400, 'Bad Request: chat not found'],
    [{ kind: 'server_error' }, 500, 'Internal Server Error'],
    [{ kind: 'server_error', status: 502 }, 502, 'Bad Gateway'],
  ]
  for (const [fault, status, description, parameters] of cases) {
    standin.inject(fault)
    const answer = await post(standin, 'sendMessage', { chat_id: GROUP, text: 'x' })
    t.equal(answer.status, status, fault.kind)
    t.same(answer.body, { ok: false, error_code: status, description, ...(parameters === undefined ? {} : { parameters }) }, fault.kind)
  }

  standin.inject({ kind: 'hang' })
  const hung = await fetch(`${standin.apiRoot}/bot${standin.token}/sendMessage`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ chat_id: GROUP, text: 'x' }), signal: AbortSignal.timeout(300),
  }).then(() => 'answered', (e: Error) => e.name)
  t.equal(hung, 'TimeoutError', 'a hung request gets no answer')
  t.match(standin.calls.at(-1), { fault: 'hang', status: undefined })
})

t.test('getUpdates: long polling, offsets, a second poller conflicts', async (t) => {
  const standin = await start(t)
  t.same((await post(standin, 'getUpdates', { timeout: 0 })).body.result, [], 'nothing queued, no wait')
  const waiting = post(standin, 'getUpdates', { timeout: 5 })
  await new Promise((r) => setTimeout(r, 50))
  const { updateId } = standin.pushMessage(PRIVATE, '/status now')
  const got = await waiting
  t.match(got.body.result, [{ update_id: updateId, message: { text: '/status now', chat: { id: PRIVATE }, entities: [{ type: 'bot_command', offset: 0, length: 7 }] } }])
  t.equal((await post(standin, 'getUpdates', { offset: updateId, timeout: 0 })).body.result instanceof Array, true)
  t.same((await post(standin, 'getUpdates', { offset: updateId + 1, timeout: 0 })).body.result, [], 'an offset past an update confirms it')

  const first = post(standin, 'getUpdates', { offset: updateId + 1, timeout: 5 })
  await new Promise((r) => setTimeout(r, 50))
  const second = post(standin, 'getUpdates', { offset: updateId + 1, timeout: 1 })
  t.match((await first).body, { ok: false, error_code: 409, description: /^Conflict: terminated by other getUpdates request/ })
  t.same((await second).body, { ok: true, result: [] }, 'the newer poll times out empty')
})

t.test('a telegraf bot runs against it: commands in, replies and callback answers out', async (t) => {
  const standin = await start(t)
  const bot = new Telegraf(standin.token, { telegram: { apiRoot: standin.apiRoot } })
  const answered = new Promise<string>((resolve) => {
    bot.command('ping', (ctx) => ctx.reply('pong'))
    bot.on('callback_query', async (ctx) => {
      await ctx.answerCbQuery('done')
      resolve('data' in ctx.callbackQuery ? ctx.callbackQuery.data : '')
    })
  })
  await bot.telegram.setMyCommands([{ command: 'ping', description: 'Is the bot alive?' }])
  t.same(standin.commands.get('default/'), [{ command: 'ping', description: 'Is the bot alive?' }])
  const refused = await bot.telegram.setMyCommands([{ command: 'Bad Command', description: 'x' }]).catch((e: unknown) => e)
  t.match(refused, { code: 400, description: 'Bad Request: BOT_COMMAND_INVALID' })

  void bot.launch({ dropPendingUpdates: false })
  t.teardown(() => bot.stop())
  standin.pushMessage(PRIVATE, '/ping')
  for (let i = 0; i < 100 && standin.messages(PRIVATE).every((m) => m.text !== 'pong'); i++) await new Promise((r) => setTimeout(r, 20))
  const pong = standin.messages(PRIVATE).find((m) => m.text === 'pong')
  t.ok(pong, 'the bot answered the command')
  const queryId = standin.pushCallbackQuery(PRIVATE, pong?.messageId ?? 0, 'mute:1h')
  t.equal(await answered, 'mute:1h')
  t.match(standin.callsOf('answerCallbackQuery')[0], { status: 200, params: { callback_query_id: queryId, text: 'done' } })
  t.equal((await post(standin, 'answerCallbackQuery', { callback_query_id: queryId })).body.description,
    'Bad Request: query is too old and response timeout expired or query ID is invalid', 'a query is answered once')
})

t.test('an outage: nothing listens until it is back on the same port', async (t) => {
  const standin = await start(t)
  const root = standin.apiRoot
  await standin.goOffline()
  const down = await fetch(`${root}/bot${standin.token}/getMe`).then(() => 'answered', (e: Error & { cause?: { code?: string } }) => e.cause?.code)
  t.equal(down, 'ECONNREFUSED')
  await standin.goOnline()
  t.equal(standin.apiRoot, root)
  t.equal((await post(standin, 'getMe', {})).status, 200)
})
