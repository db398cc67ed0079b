/**
 * Escaping for Telegram's HTML parse mode. Every value that comes from a log entry goes through
 * `escapeHtml` (text) or `escapeAttribute` (inside a double-quoted attribute such as `href`)
 * before it is put into a message: a log line is attacker-controlled text, and one stray `<` makes
 * Telegram refuse the whole message ("can't parse entities").
 *
 * Telegram knows only four named entities (&lt; &gt; &amp; &quot;) plus numeric ones, so nothing
 * else is produced here.
 */

/** ANSI escape sequences (colour codes from terminal-minded loggers): meaningless in a chat. */
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g
/**
 * Code units Telegram refuses or renders as garbage: C0 controls other than tab and newline (NULs
 * from binary junk; a CR is dropped so CRLF lines stay single lines) and lone UTF-16 surrogates (a
 * string cut in the middle of an emoji), which cannot be encoded as UTF-8.
 */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Removes ANSI escape sequences and carriage returns; other unsafe code units become U+FFFD. */
export function sanitizeText(value: string): string {
  return value.replace(ANSI, '').replace(UNSAFE, (c) => (c === '\r' ? '' : '\ufffd'))
}

const TEXT_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' }
const ATTRIBUTE_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text content: `&`, `<`, `>` become entities; the text is sanitised first (see `sanitizeText`). */
export function escapeHtml(value: string): string {
  return sanitizeText(value).replace(/[&<>]/g, (c) => TEXT_ENTITIES[c] as string)
}

/** A double-quoted attribute value (a link's `href`): quotes are escaped too. */
export function escapeAttribute(value: string): string {
  return sanitizeText(value).replace(/[&<>"']/g, (c) => ATTRIBUTE_ENTITIES[c] as string)
}
