/**
 * The console notifier (no bot token configured): readable plain-text alerts on stderr, numbered,
 * with updates of an earlier alert marked as such.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { ConsoleNotifier } from '../transports/console/notifier'
import { AT, notification } from './support/notifications'

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = []
  return { stream: new Writable({ write(c: Buffer, _e, done) { chunks.push(c.toString()); done() } }), text: () => chunks.join('') }
}

t.test('prints a readable alert and numbers it', async (t) => {
  const out = capture()
  const notifier = new ConsoleNotifier({ stream: out.stream, timezone: 'Europe/Moscow' })
  t.equal(notifier.name, 'console')
  const n = notification({ more: 3, total: 9, firstAt: AT - 60_000, event: { fields: { 'http.request.method': 'GET', 'url.path': '/a&b', 'user.name': '<admin>', 'http.response.status_code': 502 } } })
  t.same(await notifier.send(n), { ok: true, messageIds: { console: 1 } })
  const printed = out.text()
  t.match(printed, /^─{60}\nalert #1 \(route default\)\n🔴 ERROR · HTTP 5xx\n/)
  t.match(printed, 'Request: GET /a&b → 502', 'plain text: no markup, no entities')
  t.match(printed, 'User: <admin>')
  t.match(printed, 'Time: 2015-05-17 13:05:03 UTC+03:00', 'in the configured zone')
  t.match(printed, 'Count: 9 · First seen: 13:04:03 · Last seen: 13:05:03')
  t.match(printed, 'and 3 more like this')
  t.notMatch(printed, /<\/?(b|i|code|pre)>|&amp;|&lt;/)
  t.match(printed, /─{60}\n$/)

  t.same(await notifier.send(notification({ id: 'second' })), { ok: true, messageIds: { console: 2 } })
  const update = await notifier.send({ ...n, total: 10, edit: { messageIds: { console: 1 } } })
  t.same(update, { ok: true, messageIds: { console: 1 } })
  t.match(out.text(), /alert #1 updated \(route default\)\n[^]*Count: 10/)
})

t.test('labels in the chosen language, and a Kibana link spelled out', async (t) => {
  const out = capture()
  await new ConsoleNotifier({ stream: out.stream, language: 'id', kibanaUrl: 'https://kibana.local' }).send(notification())
  t.match(out.text(), 'GALAT · HTTP 5xx')
  t.match(out.text(), 'Buka di Kibana: https://kibana.local/app/discover#/?_g=')
})

t.test('stderr by default', async (t) => {
  const written: string[] = []
  const original = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    written.push(String(chunk))
    const done = rest.find((r): r is (err?: Error) => void => typeof r === 'function')
    done?.()
    return true
  }) as typeof process.stderr.write
  try {
    await new ConsoleNotifier().send(notification())
  } finally {
    process.stderr.write = original
  }
  t.match(written.join(''), 'alert #1 (route default)')
})

t.test('a stream that fails: the alert stays retryable', async (t) => {
  const broken = new Writable({ write(_c, _e, done) { done(new Error('EPIPE: broken pipe')) } })
  broken.on('error', () => undefined)
  const result = await new ConsoleNotifier({ stream: broken }).send(notification())
  t.same(result, { ok: false, messageIds: {}, retryable: true, error: 'the console stream refused the alert: EPIPE: broken pipe' })
})
