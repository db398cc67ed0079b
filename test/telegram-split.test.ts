/**
 * Splitting long messages: every part is accepted by Telegram on its own (the stand-in's parser),
 * fits the limit, and together the parts show the whole text; cuts prefer paragraph and line
 * breaks and never fall inside a tag, an entity or a surrogate pair.
 */
import t, { type Test } from 'tap'
import { escapeHtml } from '../transports/telegram/escape'
import { splitHtml, splitPlain } from '../transports/telegram/split'
import { parseTelegramHtml } from './support/telegram-api'

const visible = (html: string): string => parseTelegramHtml(html)

function checkParts(t: Test, parts: string[], limit: number, original: string): void {
  for (const [i, part] of parts.entries()) {
    let shown = ''
    try {
      shown = visible(part)
    } catch (err) {
      t.fail(`part ${i} is refused: ${(err as Error).message}\n${part}`)
      return
    }
    t.ok(shown.length <= limit, `part ${i} has ${shown.length} ≤ ${limit} characters`)
    t.ok(shown.length > 0, `part ${i} is not empty`)
  }
  // Cuts may drop the line breaks they were made at; nothing else goes missing.
  t.equal(parts.map(visible).join('').replace(/\n/g, ''), visible(original).replace(/\n/g, ''), 'the parts show the whole text')
}

t.test('a message within the limit is returned unchanged', async (t) => {
  const html = '<b>short</b> &amp; sweet'
  t.same(splitHtml(html), [html])
  t.same(splitHtml('x'.repeat(4096)).length, 1, '4096 characters is still one message')
  t.same(splitHtml('&amp;'.repeat(4096)).length, 1, 'the limit counts characters after entity parsing')
  t.equal(splitHtml('&amp;'.repeat(4097)).length, 2)
})

t.test('cuts at paragraph breaks first, then line breaks, then spaces', async (t) => {
  const para = (c: string): string => `${c.repeat(30)} ${c.repeat(30)}`
  const html = [para('a'), para('b'), para('c')].join('\n\n')
  const parts = splitHtml(html, { limit: 140 })
  t.same(parts, [`${para('a')}\n\n${para('b')}\n\n`, para('c')])
  checkParts(t, parts, 140, html)

  const lines = Array.from({ length: 6 }, (_, i) => `line ${i} ${'x'.repeat(20)}`).join('\n')
  const byLine = splitHtml(lines, { limit: 60 })
  t.ok(byLine.every((p) => /^line \d/.test(p)), 'every part starts at a line')
  checkParts(t, byLine, 60, lines)

  const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ')
  const byWord = splitHtml(words, { limit: 40 })
  t.ok(byWord.every((p) => /^word\d+/.test(p) && /(word\d+ ?)$/.test(p)), 'no word is cut')
  checkParts(t, byWord, 40, words)
})

t.test('open tags are closed at the cut and opened again in the next part', async (t) => {
  const trace = Array.from({ length: 40 }, (_, i) => `    at handler${i} (/srv/app/src/module${i}.js:${i}:7)`).join('\n')
  const html = `<b>Error:</b> boom\n<pre><code class="language-js">${escapeHtml(trace)}</code></pre>\nafter`
  const parts = splitHtml(html, { limit: 500 })
  t.ok(parts.length > 3)
  for (const part of parts.slice(1, -1)) {
    t.ok(part.startsWith('<pre><code class="language-js">'), 'a middle part reopens pre and code, with attributes')
    t.ok(part.endsWith('</code></pre>'), 'and closes them')
  }
  checkParts(t, parts, 500, html)

  const nested = `<b>bold <i>${'italic '.repeat(40)}</i> tail</b>`
  checkParts(t, splitHtml(nested, { limit: 50 }), 50, nested)
})

t.test('entities, tags and surrogate pairs are never cut; text without spaces is cut hard', async (t) => {
  const entities = '&lt;&amp;&gt;&quot;&#128512;'.repeat(300)
  const parts = splitHtml(entities, { limit: 97 })
  checkParts(t, parts, 97, entities)

  const emoji = '😀'.repeat(100) // 200 UTF-16 code units
  const cut = splitHtml(emoji, { limit: 33 })
  t.ok(cut.every((p) => !/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(p)), 'no part starts or ends inside a pair')
  checkParts(t, cut, 33, emoji)

  const links = Array.from({ length: 30 }, (_, i) => `<a href="https://example.com/${i}?a=1&amp;b=2">link ${i}</a>`).join('')
  checkParts(t, splitHtml(links, { limit: 20 }), 20, links)
})

t.test('maxParts: the last part is cut at a safe boundary and marked', async (t) => {
  const html = `<pre>${Array.from({ length: 200 }, (_, i) => `frame ${i}`).join('\n')}</pre>`
  const parts = splitHtml(html, { limit: 100, maxParts: 3 })
  t.equal(parts.length, 3)
  t.ok(parts[2]?.endsWith('…</pre>'), 'the ellipsis is inside the closed tags')
  for (const part of parts) t.ok(visible(part).length <= 100)
  t.equal(splitHtml(html, { limit: 100, maxParts: 1 }).length, 1)
  t.match(visible(splitHtml(html, { limit: 100, maxParts: 1 })[0] as string), /^frame 0\n.*…$/s)
})

t.test('a 10 KB stack trace at Telegram\'s real limit', async (t) => {
  const trace = Array.from({ length: 200 }, (_, i) => `  File "/srv/app/views/orders_${i}.py", line ${i * 3}, in handle <module> & co`).join('\n')
  t.ok(trace.length > 10_000)
  const html = `🔴 <b>ERROR</b>\n\n<pre>${escapeHtml(trace)}</pre>`
  const parts = splitHtml(html)
  t.equal(parts.length, 4)
  checkParts(t, parts, 4096, html)
})

t.test('plain text: < and & are ordinary characters', async (t) => {
  const text = 'if a < b && c > d then <b> is not a tag; '.repeat(20)
  const parts = splitPlain(text, { limit: 100 })
  for (const p of parts) t.ok(p.length <= 100)
  t.equal(parts.join('').replace(/\n/g, '').replace(/ /g, ''), text.replace(/ /g, ''), 'all characters kept')
  t.ok(parts.slice(0, -1).every((p) => p.endsWith(' ')), 'cut after spaces')
})

t.test('random documents: every part valid and within the limit', async (t) => {
  let seed = 7
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)] as T
  const words = ['alpha', 'β', '😀', '&amp;', '&lt;x&gt;', 'GET /api?q=1&amp;r=2', '\n', '\n\n', ' ', 'x'.repeat(25)]
  const tags = ['b', 'i', 'u', 's', 'code', 'tg-spoiler']
  const gen = (depth: number): string => {
    let out = ''
    const n = 1 + Math.floor(random() * 12)
    for (let i = 0; i < n; i++) {
      if (depth < 3 && random() < 0.2) {
        const tag = pick(tags)
        out += `<${tag}>${gen(depth + 1)}</${tag}>`
      } else out += pick(words)
    }
    return out
  }
  for (let i = 0; i < 200; i++) {
    const html = Array.from({ length: 4 }, () => gen(0)).join('') + 'end'
    const limit = 10 + Math.floor(random() * 60)
    const parts = splitHtml(html, { limit })
    for (const part of parts) {
      let shown: string
      try {
        shown = visible(part)
      } catch (err) {
        t.fail(`${JSON.stringify(html)} at limit ${limit}: ${(err as Error).message} in ${JSON.stringify(part)}`)
        return
      }
      if (shown.length > limit) {
        t.fail(`part over the limit ${limit}: ${JSON.stringify(part)}`)
        return
      }
    }
    if (parts.map(visible).join('').replace(/\n/g, '') !== visible(html).replace(/\n/g, '')) {
      t.fail(`text lost for ${JSON.stringify(html)} at limit ${limit}`)
      return
    }
  }
  t.pass('200 random documents split correctly')
})
