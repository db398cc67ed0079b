/**
 * `doctor` checks the token and every configured chat without posting, and explains each problem
 * in plain words; `testAlert` posts a sample alert to every route and reports each outcome.
 */
import t, { type Test } from 'tap'
import pino from 'pino'
import { Writable } from 'node:stream'
import { ConsoleNotifier } from '../transports/console/notifier'
import { doctor, testAlert } from '../transports/telegram/doctor'
import { TelegramNotifier, type TelegramRoute } from '../transports/telegram/notifier'
import { TelegramApiStandin } from './support/telegram-api'

const GROUP = -1001000000001
const FORUM = -1001000000002
const PRIVATE = 1001
const route = (chats: TelegramRoute['chats']): TelegramRoute => ({ chats, language: 'en', timezone: 'UTC' })

async function start(t: Test): Promise<TelegramApiStandin> {
  const standin = await TelegramApiStandin.start({
    chats: [
      { id: GROUP, type: 'supergroup', title: 'Ops' },
      { id: FORUM, type: 'supergroup', title: 'Forum', is_forum: true, topics: [7] },
      { id: PRIVATE, type: 'private', first_name: 'Tester' },
    ],
  })
  t.teardown(() => standin.close())
  return standin
}

t.test('everything right: one ✓ line per check', async (t) => {
  const standin = await start(t)
  const report = await doctor({
    token: standin.token, apiRoot: standin.apiRoot,
    routes: { default: route([{ chat_id: GROUP }, { chat_id: PRIVATE }]), forum: route([{ chat_id: FORUM, thread_id: 7 }]) },
  })
  t.same(report, {
    ok: true,
    lines: [
      '✓ token: the bot is @logwarden_test_bot (id 123456789).',
      '✓ route "default" → chat -1001000000001: "Ops" (supergroup).',
      '✓ route "default" → chat 1001: "Tester" (private). (A private chat receives alerts only while the user has not blocked the bot; test-alert shows it.)',
      '✓ route "forum" → chat -1001000000002 topic 7: "Forum" (supergroup with topics).',
    ],
  })
  t.equal(standin.callsOf('sendMessage').length, 0, 'doctor posts nothing')
})

t.test('a wrong token: explained once, chats not checked, the token not repeated', async (t) => {
  const standin = await start(t)
  const token = '999999:AAH-not-the-right-token-at-all'
  const report = await doctor({ token, apiRoot: standin.apiRoot, routes: { default: route([{ chat_id: GROUP }]) } })
  t.equal(report.ok, false)
  t.equal(report.lines.length, 2)
  t.match(report.lines[0], /^✗ token: LW_TELEGRAM_AUTH: telegram\.token: Telegram rejected the bot token \(401 Unauthorized\): it is wrong or was revoked\. Copy the token from @BotFather/)
  t.equal(report.lines[1], '✗ chats: not checked, the token has to work first.')
  t.notMatch(report.lines.join('\n'), 'AAH-not-the-right-token')
  t.equal(standin.callsOf('getChat').length, 0)
})

t.test('chat problems, each explained with what to do', async (t) => {
  const standin = await start(t)
  standin.addChat({ id: -555, type: 'group', title: 'Old' })
  standin.migrateChat(-555, -1005550000000)
  standin.addChat({ id: -777, type: 'supergroup', title: 'Left' })
  standin.blockBot(-777)
  const report = await doctor({
    token: standin.token, apiRoot: standin.apiRoot,
    routes: {
      ops: route([{ chat_id: 4242 }, { chat_id: -555 }, { chat_id: -777 }, { chat_id: GROUP, thread_id: 3 }]),
      empty: route([]),
    },
  })
  t.equal(report.ok, false)
  t.match(report.lines, [
    /^✓ token/,
    /^✗ route "ops" → chat 4242: LW_TELEGRAM_CHAT_NOT_FOUND: chat 4242: Telegram does not know this chat, or the bot is not in it \(400 Bad Request: chat not found\)\. Check chat_id in routes\.ops .*press Start/,
    /^✗ route "ops" → chat -555: LW_TELEGRAM_MIGRATED: chat -555: the group was upgraded to a supergroup and has a new id -1005550000000\. .*replace the chat_id with -1005550000000 in routes\.ops\.$/,
    /^✗ route "ops" → chat -777: LW_TELEGRAM_FORBIDDEN: chat -777: Telegram does not let the bot write there \(403 Forbidden: bot was kicked from the supergroup chat\)\. The bot is not in this chat any more: add it back/,
    /^✗ route "ops" → chat -1001000000001 topic 3: thread_id 3 is set but "Ops" \(supergroup\) has no topics: .*Remove thread_id from routes\.ops/,
    /^✗ route "empty": no chats: .*routes\.empty\.chats\.$/,
  ])
  t.equal(report.lines.length, 6)
})

t.test('Telegram not answering is said so; the checks go on', async (t) => {
  const standin = await start(t)
  standin.inject({ kind: 'hang' }, { method: 'getMe' })
  const report = await doctor({ token: standin.token, apiRoot: standin.apiRoot, timeoutMs: 200, routes: { default: route([{ chat_id: GROUP }]) } })
  t.equal(report.ok, false)
  t.match(report.lines[0], /^✗ token: LW_TELEGRAM_UNAVAILABLE: telegram\.token: Telegram did not answer in time/)
  t.match(report.lines[1], /^✓ route "default" → chat -1001000000001/)
})

t.test('testAlert: a sample alert to every route, each outcome reported', async (t) => {
  const standin = await start(t)
  standin.blockBot(PRIVATE)
  const notifier = new TelegramNotifier({
    token: standin.token, apiRoot: standin.apiRoot, logger: pino({ level: 'silent' }),
    limits: { perChat: { limit: 1, windowMs: 5 }, perGroup: { limit: 20, windowMs: 100 }, global: { limit: 30, windowMs: 5 } },
    routes: { default: route([{ chat_id: GROUP }]), oncall: { ...route([{ chat_id: PRIVATE }]), language: 'ru' } },
  })
  const report = await testAlert(notifier, ['default', 'oncall'], Date.UTC(2024, 0, 2, 3, 4, 5))
  t.equal(report.ok, false)
  t.same(report.results.default, { ok: true, messageIds: { [String(GROUP)]: 1 } })
  t.match(report.lines, [
    '✓ route "default": test alert delivered (-1001000000001 #1).',
    '✗ route "oncall": test alert not delivered:',
    /^ {4}LW_TELEGRAM_FORBIDDEN: telegram chat 1001 \(route "oncall"\): .*blocked by the user/,
  ])
  const shown = standin.messages(GROUP)[0]?.text ?? ''
  t.match(shown, /^🟠 WARNING · logwarden test alert/)
  t.match(shown, 'Time: 2024-01-02 03:04:05 UTC')
  t.match(shown, 'if you can read this, alerts for this route arrive here')

  const printed: string[] = []
  const consoleNotifier = new ConsoleNotifier({ stream: new Writable({ write(c: Buffer, _e, done) { printed.push(c.toString()); done() } }) })
  const onConsole = await testAlert(consoleNotifier, ['default'])
  t.equal(onConsole.ok, true)
  t.match(printed.join(''), 'logwarden test alert')
})
