/**
 * Escaping for Telegram's HTML parse mode: whatever a log line contains, the escaped text is
 * accepted by Telegram (the stand-in's independent parser) and shows exactly the original.
 */
import t from 'tap'
import { escapeAttribute, escapeHtml, sanitizeText } from '../transports/telegram/escape'
import { tokenizeHtml } from '../transports/telegram/split'
import { parseTelegramHtml } from './support/telegram-api'

t.test('the three characters of text, and nothing else', async (t) => {
  t.equal(escapeHtml('<script>alert("x")</script> & co'), '&lt;script&gt;alert("x")&lt;/script&gt; &amp; co')
  t.equal(escapeHtml('already &amp; escaped'), 'already &amp;amp; escaped', 'entities in log text are text, shown as written')
  t.equal(escapeHtml('plain текст 😀'), 'plain текст 😀')
})

t.test('attributes also escape quotes', async (t) => {
  const url = 'https://kibana.example/app/discover#/?_a=(query:\'x "y"\')&b=<1>'
  const html = `<a href="${escapeAttribute(url)}">link</a>`
  t.notMatch(escapeAttribute(url), /["'<>]/)
  t.equal(parseTelegramHtml(html), 'link', 'Telegram accepts the link')
  const open = tokenizeHtml(html)[0]
  t.equal(open?.kind === 'open' ? open.attrs.href : undefined, url, 'the href decodes back to the URL')
})

t.test('text Telegram cannot take is made safe', async (t) => {
  t.equal(sanitizeText('\x1b[31mERROR\x1b[0m done'), 'ERROR done', 'ANSI colours removed')
  t.equal(sanitizeText('a\r\nb\tc\nd'), 'a\nb\tc\nd', 'CR dropped; tab and newline kept')
  t.equal(sanitizeText('nul\x00bell\x07'), 'nul\ufffdbell\ufffd', 'other controls become U+FFFD')
  t.equal(sanitizeText('cut \ud83d here'), 'cut \ufffd here', 'a lone high surrogate')
  t.equal(sanitizeText('cut \ude00 here'), 'cut \ufffd here', 'a lone low surrogate')
  t.equal(sanitizeText('emoji \ud83d\ude00 kept'), 'emoji 😀 kept')
  t.equal(escapeHtml('\x1b[1m<b>\x1b[0m'), '&lt;b&gt;')
})

t.test('any log text survives the round trip through Telegram', async (t) => {
  // A deterministic generator over the characters that break naive escaping.
  let seed = 42
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const pieces = ['<', '>', '&', '"', "'", '&amp;', '&lt;', '&#60;', '<b>', '</b>', '<script>', 'a', ' ', '\n', 'я', '😀', '\\', ';', '#']
  for (let i = 0; i < 500; i++) {
    let s = ''
    const n = Math.floor(random() * 30)
    for (let j = 0; j < n; j++) s += pieces[Math.floor(random() * pieces.length)]
    const escaped = escapeHtml(s)
    let shown: string | Error
    try {
      shown = parseTelegramHtml(escaped)
    } catch (err) {
      shown = err as Error
    }
    if (shown !== s) {
      t.fail(`round trip failed for ${JSON.stringify(s)}: ${String(shown)}`)
      return
    }
  }
  t.pass('500 random texts shown exactly as logged')
})
