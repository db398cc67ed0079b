/**
 * Notification → Telegram message: accepted by Telegram's HTML parser whatever the log entry holds
 * (`<script>`, `&`, a 10 KB stack trace), the key fields shown, labels in English, Russian and
 * Indonesian, times in the route's zone, a correct Kibana Discover link, per-rule Mustache
 * templates with escaping, and the plain-text rendering.
 */
import t from 'tap'
import { formatNotification, formatTime, htmlToPlain, kibanaDiscoverUrl } from '../transports/telegram/format'
import { tokenizeHtml } from '../transports/telegram/split'
import { AT, notification } from './support/notifications'
import { parseTelegramHtml } from './support/telegram-api'

const STACK = 'TypeError: Cannot read properties of undefined (reading \'id\')\n' +
  Array.from({ length: 160 }, (_, i) => `    at handler${i} (/srv/app/src/routes/orders.js:${100 + i}:13) <anonymous> & more`).join('\n')

const hostile = notification({
  ruleName: 'HTTP 5xx <checkout> & co',
  more: 37,
  total: 14,
  firstAt: AT - 4 * 60_000,
  lastAt: AT,
  event: {
    fields: {
      'http.request.method': 'GET',
      'url.path': '/search',
      'url.query': 'q=<script>alert(document.cookie)</script>&page=1',
      'http.response.status_code': 500,
      'client.ip': '203.0.113.9',
      'user_agent.original': '<script>alert(1)</script> sqlmap/1.7',
      'user.name': 'tom & jerry',
      'error.type': 'TypeError',
      'error.message': 'Cannot read properties of undefined (reading \'id\') in <Cart> & <Order>',
      'error.stack_trace': STACK,
      'service.name': 'api',
      'service.environment': 'production',
      'host.name': 'web-1',
    },
    exception: { fingerprint: 'a1b2c3d4e5', type: 'TypeError', message: 'Cannot read properties of undefined', frames: [], count: 120, firstSeen: AT - 3 * 86_400_000, lastSeen: AT, regression: true },
  },
})

t.test('a hostile entry: Telegram accepts the HTML and shows the values exactly', async (t) => {
  t.ok(STACK.length > 10_000, 'the stack trace is over 10 KB')
  for (const language of ['en', 'ru', 'id'] as const) {
    const { html, text } = formatNotification(hostile, { language, timezone: 'UTC', kibanaUrl: 'https://kibana.example.com' })
    let shown = ''
    t.doesNotThrow(() => { shown = parseTelegramHtml(html) }, `${language}: Telegram parses it`)
    t.ok(shown.length <= 4096, `${language}: one message (${shown.length} characters): only the top frames are shown`)
    t.match(shown, 'HTTP 5xx <checkout> & co')
    t.match(shown, 'GET /search?q=<script>alert(document.cookie)</script>&page=1 → 500')
    t.match(shown, '<script>alert(1)</script> sqlmap/1.7')
    t.match(shown, 'tom & jerry')
    t.match(shown, "TypeError: Cannot read properties of undefined (reading 'id') in <Cart> & <Order>")
    t.match(shown, 'at handler0 (/srv/app/src/routes/orders.js:100:13) <anonymous> & more')
    t.notMatch(shown, 'handler8 ', 'at most 8 frames')
    t.match(shown, 'a1b2c3d4e5')
    t.equal(text, shown.replace(/(Open in Kibana|Открыть в Kibana|Buka di Kibana)$/, (m) => `${m}: ${kibanaDiscoverUrl(hostile, 'https://kibana.example.com')}`),
      `${language}: the plain text is what Telegram shows, with the link's URL spelled out`)
  }
  const { html } = formatNotification(hostile, { language: 'en', timezone: 'UTC' })
  t.notMatch(html, /<script>|<Cart>|tom & jerry/, 'no raw value from the entry in the markup')
})

t.test('labels in English, Russian and Indonesian', async (t) => {
  const show = (language: 'en' | 'ru' | 'id', more = 37): string =>
    parseTelegramHtml(formatNotification({ ...hostile, more }, { language, timezone: 'UTC', kibanaUrl: 'https://k.example' }).html)
  const en = show('en')
  for (const s of ['🔴 ERROR · HTTP 5xx', 'Environment: production', 'Service: api', 'Host: web-1', 'Time: 2015-05-17 10:05:03 UTC', 'Request: GET', 'Client IP: 203.0.113.9', 'User agent:', 'User: tom & jerry', 'Error: TypeError', 'Count: 14', 'First seen: 10:01:03', 'Last seen: 10:05:03', 'Fingerprint: a1b2c3d4e5', 'seen 120 times', '🔁 regression', 'and 37 more like this', 'Rule: http.5xx', 'Open in Kibana']) t.match(en, s, `en: ${s}`)
  const ru = show('ru')
  for (const s of ['ОШИБКА', 'Окружение: production', 'Сервис: api', 'Хост: web-1', 'Время:', 'Запрос:', 'IP клиента:', 'Пользователь:', 'Ошибка:', 'Количество: 14', 'Впервые:', 'Последний раз:', 'Отпечаток:', 'встречалась 120 раз', 'регрессия', 'и ещё 37 похожих', 'Правило:', 'Открыть в Kibana']) t.match(ru, s, `ru: ${s}`)
  t.match(show('ru', 1), 'и ещё 1 похожее', 'ru: singular')
  t.match(show('ru', 22), 'и ещё 22 похожих')
  const id = show('id')
  for (const s of ['GALAT', 'Lingkungan: production', 'Layanan: api', 'Waktu:', 'Permintaan:', 'IP klien:', 'Pengguna:', 'Jumlah: 14', 'Pertama terlihat:', 'Terakhir terlihat:', 'Sidik jari:', 'terlihat 120 kali', 'regresi', 'dan 37 lainnya yang serupa', 'Aturan:', 'Buka di Kibana']) t.match(id, s, `id: ${s}`)
  for (const [severity, word] of [['critical', '🚨 KRITIS'], ['warning', '🟠 PERINGATAN'], ['info', '🔵 INFO']] as const) {
    t.match(parseTelegramHtml(formatNotification(notification({ severity }), { language: 'id', timezone: 'UTC' }).html), word)
  }
  t.match(parseTelegramHtml(formatNotification(notification({ state: 'resolved' }), { language: 'ru', timezone: 'UTC' }).html), /^✅ РЕШЕНО · HTTP 5xx/)
  t.notMatch(show('en', 0), 'more like this', 'no "more" line without more')
})

t.test('times in the route\'s IANA zone', async (t) => {
  t.equal(formatTime(AT, 'UTC'), '2015-05-17 10:05:03 UTC')
  t.equal(formatTime(AT, 'Europe/Moscow'), '2015-05-17 13:05:03 UTC+03:00')
  t.equal(formatTime(AT, 'Asia/Jakarta'), '2015-05-17 17:05:03 UTC+07:00')
  t.equal(formatTime(AT, 'America/New_York'), '2015-05-17 06:05:03 UTC-04:00', 'summer time')
  t.equal(formatTime(AT - 86_400_000, 'UTC', AT), '2015-05-16 10:05:03 UTC', 'another day keeps its date')
  t.equal(formatTime(AT - 60_000, 'UTC', AT), '10:04:03', 'the same day shows the clock only')
  t.equal(formatTime(Date.UTC(2015, 4, 17, 22, 0, 0), 'Asia/Jakarta', AT), '2015-05-18 05:00:00 UTC+07:00', 'days are local days')
  t.throws(() => formatTime(AT, 'Mars/Olympus'), RangeError)
  t.match(parseTelegramHtml(formatNotification(hostile, { language: 'en', timezone: 'Asia/Jakarta' }).html), 'Time: 2015-05-17 17:05:03 UTC+07:00')
})

t.test('UTC, written without Intl, reads as Intl writes every other zone', async (t) => {
  const intl = new Intl.DateTimeFormat('en-US', {
    timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  })
  const expected = (ms: number): string => {
    const p: Record<string, string> = {}
    for (const part of intl.formatToParts(new Date(ms))) p[part.type] = part.value
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} UTC`
  }
  // Midnights, the last millisecond of a day, a leap day, the epoch, and a spread of instants.
  const instants = [0, Date.UTC(2024, 1, 29, 0, 0, 0), Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(1999, 11, 31, 23, 59, 59, 500), AT]
  for (let ms = Date.UTC(2000, 0, 1); ms < Date.UTC(2040, 0, 1); ms += 7_777_777_777) instants.push(ms)
  for (const ms of instants) t.equal(formatTime(ms, 'UTC'), expected(ms), new Date(ms).toISOString())
  t.equal(formatTime(Date.UTC(2024, 1, 29, 23, 59, 59), 'UTC', Date.UTC(2024, 1, 29, 0, 0, 0)), '23:59:59', 'the same UTC day: the clock only')
  t.equal(formatTime(Date.UTC(2024, 1, 29, 23, 59, 59), 'UTC', Date.UTC(2024, 2, 1, 0, 0, 0)), '2024-02-29 23:59:59 UTC', 'the next day: the date too')
  t.throws(() => formatTime(NaN, 'UTC'), RangeError, 'no time: the same error as any zone')
})

t.test('the Kibana Discover link: time window and group key, correctly encoded', async (t) => {
  const n = notification({
    firstAt: AT - 60_000,
    lastAt: AT,
    event: { groupKey: { 'client.ip': '203.0.113.9', 'user.name': 'O\'Brien "the admin" !', 'url.path': '' } },
  })
  const url = kibanaDiscoverUrl(n, 'https://kibana.example.com/s/ops/', 'logs-dv')
  const parsed = new URL(url)
  t.equal(parsed.origin + parsed.pathname, 'https://kibana.example.com/s/ops/app/discover', 'trailing slash handled, space kept')
  const hash = new URLSearchParams(parsed.hash.replace(/^#\/\?/, ''))
  t.equal(hash.get('_g'), "(filters:!(),time:(from:'2015-05-17T09:49:03.000Z',to:'2015-05-17T10:10:03.000Z'))", '15 minutes before the first match, 5 after the last')
  t.equal(hash.get('_a'),
    "(dataSource:(dataViewId:'logs-dv',type:dataView),query:(language:kuery,query:'client.ip:\"203.0.113.9\" and user.name:\"O!'Brien \\\"the admin\\\" !!\"'))",
    'KQL quotes escaped with \\, rison quotes and bangs with !, empty values left out')
  t.notMatch(url.slice(url.indexOf('#')), /[ "<>]/, 'nothing unencoded that breaks a URL')

  const noKey = kibanaDiscoverUrl(notification({ event: { groupKey: {}, exception: { fingerprint: 'f', type: 'ValueError', frames: [], count: 1, firstSeen: AT, lastSeen: AT, regression: false } } }), 'https://k')
  t.match(decodeURIComponent(noKey), "query:'error.type:\"ValueError\"'", 'without a group key, the exception type')

  const { html } = formatNotification(n, { language: 'en', timezone: 'UTC', kibanaUrl: 'https://kibana.example.com/s/ops/', kibanaDataView: 'logs-dv' })
  const link = tokenizeHtml(html).find((tok) => tok.kind === 'open' && tok.name === 'a')
  t.equal(link?.kind === 'open' ? link.attrs.href : undefined, url, 'the href in the message is the URL')
  t.notMatch(formatNotification(n, { language: 'en', timezone: 'UTC' }).html, '<a ', 'no link without kibanaUrl')
})

t.test('stack frames: fingerprint frames first, Python tracebacks from the innermost call', async (t) => {
  const withFrames = notification({ event: { fields: { 'error.type': 'E', 'error.stack_trace': STACK }, exception: { fingerprint: 'f', frames: ['orders.js in handler', 'cart.js in total'], count: 1, firstSeen: AT, lastSeen: AT, regression: false } } })
  t.match(parseTelegramHtml(formatNotification(withFrames, { language: 'en', timezone: 'UTC' }).html), /orders\.js in handler\ncart\.js in total/)

  const trace = ['Traceback (most recent call last):',
    ...Array.from({ length: 12 }, (_, i) => [`  File "/srv/app/step${i}.py", line ${i}, in step${i}`, `    step${i + 1}()`]).flat(),
    'ZeroDivisionError: division by zero'].join('\n')
  const python = notification({ event: { fields: { 'error.type': 'ZeroDivisionError', 'error.message': 'division by zero', 'error.stack_trace': trace } } })
  const shown = parseTelegramHtml(formatNotification(python, { language: 'en', timezone: 'UTC' }).html)
  t.match(shown, 'File "/srv/app/step11.py", line 11, in step11', 'the innermost frame')
  t.notMatch(shown, 'step0.py', 'outer frames beyond the limit are left out')
  t.notMatch(shown, /<pre>|Traceback/)
})

t.test('long values are clipped; a business event shows its message', async (t) => {
  const n = notification({ event: { fields: { 'user_agent.original': 'A'.repeat(5000), message: 'user signed up: bob@example.com' } } })
  const shown = parseTelegramHtml(formatNotification(n, { language: 'en', timezone: 'UTC' }).html)
  t.match(shown, `User agent: ${'A'.repeat(199)}…`)
  t.notMatch(shown, 'A'.repeat(200))
  t.match(shown, 'user signed up: bob@example.com')
})

t.test('a rule\'s Mustache template replaces the body, with values escaped', async (t) => {
  const template = '💳 <b>{{rule.name}}</b> for {{user}} ({{fields.client.ip}})\n{{#exception}}fp {{fingerprint}}{{/exception}}{{^exception}}no exception{{/exception}} at {{time}}\n<code>{{fields.url.query}}</code> ×{{count}}'
  const n = { ...hostile, template }
  const { html, text } = formatNotification(n, { language: 'en', timezone: 'UTC', kibanaUrl: 'https://k' })
  const shown = parseTelegramHtml(html)
  t.match(shown, '💳 HTTP 5xx <checkout> & co for tom & jerry (203.0.113.9)')
  t.match(shown, 'fp a1b2c3d4e5 at 2015-05-17 10:05:03 UTC')
  t.match(shown, 'q=<script>alert(document.cookie)</script>&page=1 ×14')
  t.match(shown, /^🔴 ERROR · HTTP 5xx <checkout> & co\n\n💳/, 'the header stays')
  t.match(shown, /and 37 more like this\nRule: http\.5xx\nOpen in Kibana$/, 'the footer stays')
  t.notMatch(shown, 'Count:', 'the standard body is replaced')
  t.equal(text, htmlToPlain(html))

  const broken = formatNotification({ ...hostile, template: '{{#open}} never closed' }, { language: 'ru', timezone: 'UTC' })
  const fallback = parseTelegramHtml(broken.html)
  t.match(fallback, 'Количество: 14', 'a template that fails falls back to the standard layout')
  t.match(fallback, 'Шаблон сообщения правила не сработал; показан стандартный вид: Unclosed section "open"')
})

t.test('plain text: markup removed, entities decoded, links spelled out', async (t) => {
  t.equal(htmlToPlain('<b>a &amp; b</b> <a href="https://x.io/?a=1&amp;b=2">here</a> <a href="https://y.io">https://y.io</a> &lt;3'),
    'a & b here: https://x.io/?a=1&b=2 https://y.io <3')
  const { text } = formatNotification(hostile, { language: 'en', timezone: 'UTC' })
  t.notMatch(text, /<\/?(b|i|code|pre)>|&amp;|&lt;/)
  t.match(text, 'tom & jerry')
})
