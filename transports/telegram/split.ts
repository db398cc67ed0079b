/**
 * Splitting a message longer than Telegram's limit (4096 characters of text after entity parsing,
 * counted in UTF-16 code units) into parts that are each valid on their own: a cut never falls
 * inside a tag, an entity (`&amp;`) or a surrogate pair, and every tag open at a cut is closed at
 * the end of the part and opened again at the start of the next (a `<pre>` stack trace stays
 * monospaced across two messages). Cuts prefer a paragraph break, then a line break, then a space.
 *
 * Only the tags Telegram supports are tags here; anything else that starts with `<` is text, as
 * it is for Telegram. Malformed markup (a template author's) is tolerated: the parts are no worse
 * than the input.
 */

export const TELEGRAM_TEXT_LIMIT = 4096

/** The tags of Telegram's HTML parse mode (https://core.telegram.org/bots/api#html-style). */
const TELEGRAM_TAGS: ReadonlySet<string> = new Set([
  'b', 'strong', 'i', 'em', 'u', 'ins', 's', 'strike', 'del', 'span', 'tg-spoiler', 'a', 'code', 'pre',
  'blockquote', 'tg-emoji', 'tg-time',
])

export type HtmlToken =
  | { kind: 'open'; name: string; raw: string; attrs: Record<string, string> }
  | { kind: 'close'; name: string; raw: string }
  /** One visible character: a code point or an entity; `text` is what it shows, `raw` how it is written. */
  | { kind: 'text'; raw: string; text: string }

const OPEN_TAG = /<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z][a-zA-Z0-9-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*>/y
const CLOSE_TAG = /<\/([a-zA-Z][a-zA-Z0-9-]*)\s*>/y
const ATTRIBUTE = /([a-zA-Z][a-zA-Z0-9-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g
const ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(lt|gt|amp|quot));/y
const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' }

const ENTITY_ANYWHERE = new RegExp(ENTITY.source, 'g')

/** Decodes the entities Telegram understands; other `&...` sequences stay as written. */
function decodeEntities(value: string): string {
  return value.replace(ENTITY_ANYWHERE, (_m, dec?: string, hex?: string, name?: string) => entityText(dec, hex, name))
}

function entityText(dec: string | undefined, hex: string | undefined, name: string | undefined): string {
  const code = dec !== undefined ? Number(dec) : hex !== undefined ? parseInt(hex, 16) : -1
  if (code >= 0) return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '\ufffd'
  return NAMED[name as string] as string
}

/**
 * HTML (tags = true) or plain text (tags = false: every character is text, `<` and `&` included)
 * as tokens. Entities are decoded in HTML only.
 */
export function tokenizeHtml(input: string, tags = true): HtmlToken[] {
  const tokens: HtmlToken[] = []
  let i = 0
  while (i < input.length) {
    const c = input.charCodeAt(i)
    if (tags && c === 0x3c /* < */) {
      CLOSE_TAG.lastIndex = i
      const close = CLOSE_TAG.exec(input)
      if (close && TELEGRAM_TAGS.has((close[1] as string).toLowerCase())) {
        tokens.push({ kind: 'close', name: (close[1] as string).toLowerCase(), raw: close[0] })
        i += close[0].length
        continue
      }
      OPEN_TAG.lastIndex = i
      const open = OPEN_TAG.exec(input)
      if (open && TELEGRAM_TAGS.has((open[1] as string).toLowerCase())) {
        tokens.push({ kind: 'open', name: (open[1] as string).toLowerCase(), raw: open[0], attrs: parseAttributes(open[2] ?? '') })
        i += open[0].length
        continue
      }
    } else if (tags && c === 0x26 /* & */) {
      ENTITY.lastIndex = i
      const entity = ENTITY.exec(input)
      if (entity) {
        tokens.push({ kind: 'text', raw: entity[0], text: entityText(entity[1], entity[2], entity[3]) })
        i += entity[0].length
        continue
      }
    }
    const width = c >= 0xd800 && c <= 0xdbff && i + 1 < input.length ? 2 : 1
    const ch = input.slice(i, i + width)
    tokens.push({ kind: 'text', raw: ch, text: ch })
    i += width
  }
  return tokens
}

function parseAttributes(source: string): Record<string, string> {
  const attrs: Record<string, string> = {}
  for (const m of source.matchAll(ATTRIBUTE)) attrs[(m[1] as string).toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')
  return attrs
}

export interface SplitOptions {
  /** Visible characters per part (UTF-16 code units, as Telegram counts). Default 4096. */
  limit?: number
  /** At most this many parts; the last one is cut at a safe boundary and ends with `ellipsis`. Default: no cap. */
  maxParts?: number
  /** Appended to a part that was cut short. Default "…". */
  ellipsis?: string
}

/** Splits Telegram HTML into valid parts (see the file comment). A message within the limit is returned as is. */
export function splitHtml(html: string, options: SplitOptions = {}): string[] {
  return split(tokenizeHtml(html), html, options)
}

/** Splits plain text (no parse mode) the same way: `<` and `&` are ordinary characters there. */
export function splitPlain(text: string, options: SplitOptions = {}): string[] {
  return split(tokenizeHtml(text, false), text, options)
}

const isText = (t: HtmlToken | undefined, ch: string): boolean => t !== undefined && t.kind === 'text' && t.text === ch

function split(tokens: HtmlToken[], whole: string, options: SplitOptions): string[] {
  const limit = options.limit ?? TELEGRAM_TEXT_LIMIT
  const maxParts = Math.max(1, options.maxParts ?? Number.POSITIVE_INFINITY)
  const ellipsis = options.ellipsis ?? '…'
  if (limit < ellipsis.length + 1) throw new RangeError(`split limit ${limit} is too small`)
  if (visibleLength(tokens, 0, tokens.length) <= limit) return [whole]

  const parts: string[] = []
  let stack: Array<HtmlToken & { kind: 'open' }> = []
  let start = 0
  while (start < tokens.length) {
    const last = parts.length === maxParts - 1
    // Everything left fits: the final part, with no ellipsis needed.
    if (visibleLength(tokens, start, tokens.length) <= limit) {
      parts.push(render(stack, tokens, start, tokens.length, ''))
      break
    }
    const budget = last ? limit - ellipsis.length : limit
    const end = chooseCut(tokens, start, furthestFit(tokens, start, budget), budget)
    parts.push(render(stack, tokens, start, end, last ? ellipsis : ''))
    if (last) break
    stack = openAfter(stack, tokens, start, end)
    start = end
    // The line break we cut at belongs to neither part: Telegram would show it as an empty first line.
    while (isText(tokens[start], '\n')) start++
  }
  return parts
}

function visibleLength(tokens: HtmlToken[], from: number, to: number): number {
  let n = 0
  for (let i = from; i < to; i++) {
    const t = tokens[i] as HtmlToken
    if (t.kind === 'text') n += t.text.length
  }
  return n
}

/** The end (exclusive) of the longest run from `start` whose visible length stays within `budget`. */
function furthestFit(tokens: HtmlToken[], start: number, budget: number): number {
  let n = 0
  let i = start
  for (; i < tokens.length; i++) {
    const t = tokens[i] as HtmlToken
    if (t.kind === 'text') {
      if (n + t.text.length > budget) break
      n += t.text.length
    }
  }
  // Never end a part right after an opening tag: it would carry an empty element.
  while (i > start && (tokens[i - 1] as HtmlToken).kind === 'open') i--
  return i
}

/**
 * Where to cut, at most at `hard`: after a blank line if one lies in the second half of the part,
 * else after a line break in the second half, else after the last space, else at `hard`. Closing
 * tags right after the cut go with the part they close.
 */
function chooseCut(tokens: HtmlToken[], start: number, hard: number, budget: number): number {
  const half = budget / 2
  const after = (pred: (i: number) => boolean, minLength: number): number => {
    for (let i = hard; i > start; i--) {
      if (!pred(i)) continue
      if (visibleLength(tokens, start, i) >= minLength) return i
      return -1
    }
    return -1
  }
  let cut = after((i) => isText(tokens[i - 1], '\n') && isText(tokens[i - 2], '\n'), half)
  if (cut < 0) cut = after((i) => isText(tokens[i - 1], '\n'), half)
  if (cut < 0) cut = after((i) => isText(tokens[i - 1], ' ') || isText(tokens[i - 1], '\t'), 1)
  if (cut < 0) cut = hard
  if (cut <= start) cut = Math.min(tokens.length, start + 1) // a single token wider than the budget cannot happen with limit ≥ 2
  while (cut < tokens.length && (tokens[cut] as HtmlToken).kind === 'close') cut++
  return cut
}

function openAfter(stack: Array<HtmlToken & { kind: 'open' }>, tokens: HtmlToken[], from: number, to: number): Array<HtmlToken & { kind: 'open' }> {
  const open = stack.slice()
  for (let i = from; i < to; i++) {
    const t = tokens[i] as HtmlToken
    if (t.kind === 'open') open.push(t)
    else if (t.kind === 'close') {
      const at = open.map((o) => o.name).lastIndexOf(t.name)
      if (at >= 0) open.length = at // a stray close tag (malformed input) is ignored
    }
  }
  return open
}

function render(stack: Array<HtmlToken & { kind: 'open' }>, tokens: HtmlToken[], from: number, to: number, ellipsis: string): string {
  let out = stack.map((t) => t.raw).join('')
  for (let i = from; i < to; i++) out += (tokens[i] as HtmlToken).raw
  // The ellipsis goes inside the open tags, before they are closed.
  out += ellipsis
  const open = openAfter(stack, tokens, from, to)
  for (let i = open.length - 1; i >= 0; i--) out += `</${(open[i] as HtmlToken & { kind: 'open' }).name}>`
  return out
}
