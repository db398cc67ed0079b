/**
 * Telegram's limits are kept: a burst of alerts reaches the stand-in no faster than the per-chat,
 * per-group and overall limits allow, and every alert arrives (waiting, not dropping). The limits
 * are shrunk through the notifier's options to keep the test short; the assertions are on the
 * spacing of the stand-in's arrival times as a lower bound (a limit, not a speed).
 */
import t from 'tap'
import pino from 'pino'
import { TelegramNotifier } from '../transports/telegram/notifier'
import { TELEGRAM_LIMITS, type RateLimits } from '../transports/telegram/rate-limit'
import { notification } from './support/notifications'
import { TelegramApiStandin, type RecordedCall } from './support/telegram-api'

const GROUP = -1001000000001

/** The smallest time any `limit + 1` consecutive calls spanned. */
function tightestWindow(calls: RecordedCall[], limit: number): number {
  let min = Infinity
  for (let i = 0; i + limit < calls.length; i++) min = Math.min(min, (calls[i + limit] as RecordedCall).at - (calls[i] as RecordedCall).at)
  return min
}

t.test('the defaults are Telegram\'s published limits', async (t) => {
  t.same(TELEGRAM_LIMITS, {
    perChat: { limit: 1, windowMs: 1000 },
    perGroup: { limit: 20, windowMs: 60_000 },
    global: { limit: 30, windowMs: 1000 },
  })
})

t.test('40 alerts to one group: one per chat window, at most `limit` per group window, none lost', async (t) => {
  const standin = await TelegramApiStandin.start({ chats: [{ id: GROUP, type: 'supergroup', title: 'Ops' }] })
  t.teardown(() => standin.close())
  const limits: RateLimits = { perChat: { limit: 1, windowMs: 30 }, perGroup: { limit: 4, windowMs: 200 }, global: { limit: 30, windowMs: 1000 } }
  const notifier = new TelegramNotifier({
    token: standin.token, apiRoot: standin.apiRoot, limits, logger: pino({ level: 'silent' }),
    routes: { default: { chats: [{ chat_id: GROUP }], language: 'en', timezone: 'UTC' } },
  })
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => notifier.send(notification({ id: `a${i}`, ruleName: `alert ${i}` }))))
  t.ok(results.every((r) => r.ok), 'every alert delivered')
  const calls = standin.callsOf('sendMessage')
  t.equal(calls.length, 40, 'no alert dropped, none sent twice')
  t.same(standin.messages(GROUP).map((m) => Number(/alert (\d+)/.exec(m.text)?.[1])), Array.from({ length: 40 }, (_, i) => i), 'in order')
  t.ok(tightestWindow(calls, 1) >= 30, `consecutive messages at least 30 ms apart (tightest: ${tightestWindow(calls, 1)} ms)`)
  t.ok(tightestWindow(calls, 4) >= 200, `any 5 consecutive messages span at least 200 ms (tightest: ${tightestWindow(calls, 4)} ms)`)
})

t.test('several private chats: the overall limit holds across them', async (t) => {
  const chats = [2001, 2002, 2003]
  const standin = await TelegramApiStandin.start({ chats: chats.map((id) => ({ id, type: 'private' as const, first_name: `u${id}` })) })
  t.teardown(() => standin.close())
  const limits: RateLimits = { perChat: { limit: 1, windowMs: 10 }, perGroup: { limit: 1, windowMs: 60_000 }, global: { limit: 5, windowMs: 150 } }
  const notifier = new TelegramNotifier({
    token: standin.token, apiRoot: standin.apiRoot, limits, logger: pino({ level: 'silent' }),
    routes: { default: { chats: chats.map((chat_id) => ({ chat_id })), language: 'en', timezone: 'UTC' } },
  })
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => notifier.send(notification({ id: `p${i}` }))))
  t.ok(results.every((r) => r.ok && Object.keys(r.messageIds).length === 3))
  const calls = standin.callsOf('sendMessage')
  t.equal(calls.length, 24)
  t.ok(tightestWindow(calls, 5) >= 150, `any 6 consecutive calls span at least 150 ms (tightest: ${tightestWindow(calls, 5)} ms)`)
  for (const chat of chats) {
    t.ok(tightestWindow(calls.filter((c) => c.params.chat_id === chat), 1) >= 10, `chat ${chat}: at least 10 ms apart`)
    t.equal(standin.messages(chat).length, 8)
  }
  // Private chats are not groups: the tiny group limit above would have stretched this to minutes.
})
