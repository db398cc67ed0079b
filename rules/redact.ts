/**
 * Secrets out of everything an alert carries (design invariant 8): a field whose name says it is a
 * secret (password, token, Authorization, Cookie, api key, …) loses its whole value; in every other
 * text the secrets that have a recognisable shape are cut out — Telegram bot tokens, bearer and
 * basic credentials, JWTs, `password=…`/`token=…`/`api_key=…` pairs in query strings, JSON and
 * messages, passwords in URLs (`postgres://user:pw@db`), and payment card numbers (13–19 digits,
 * Luhn-valid, with a card network's leading digit). Each is replaced by `[REDACTED]`.
 *
 * Runs only for alerts (never per entry), so it favours thoroughness over speed; but a rule that
 * matches often (a 5xx on a busy path) redacts the same paths, user agents and names again and
 * again, so answers are remembered per text.
 */
import type { FieldValue } from '../agent/entry'
import { MEMO_TEXT, TextMemo } from './memo'

export const REDACTED = '[REDACTED]'

/**
 * Field names (the last segment of a dotted path, or a whole header name) whose values are
 * secrets. Matched against the lowercased name with `-` and `.` seen as `_`.
 */
const SECRET_NAME = /(?:^|_)(?:pass(?:word|wd|phrase)?|pwd|secret|client_secret|token|access_token|refresh_token|id_token|auth_token|api_?key|access_?key|secret_?key|private_?key|authorization|proxy_authorization|cookie|set_cookie|session(?:_?id)?|sessionid|csrf(?:_?token)?|xsrf_token|x_api_key|x_auth_token|credentials?|signature)$/

const secretPaths = new TextMemo<boolean>()

/** True when a field path names a secret (`user.password`, `http.request.headers.authorization`). */
export function isSecretField(path: string): boolean {
  let secret = secretPaths.get(path)
  if (secret === undefined) secretPaths.set(path, (secret = secretName(path)))
  return secret
}

function secretName(path: string): boolean {
  const dot = path.lastIndexOf('.')
  const name = (dot === -1 ? path : path.slice(dot + 1)).toLowerCase().replace(/[-.]/g, '_')
  return SECRET_NAME.test(name)
}

/** Telegram bot token: `<bot id>:<35 characters>`, also inside an API URL (`/bot<token>/sendMessage`). */
const TELEGRAM_TOKEN = /(?<!\d)\d+:[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])/g
/** `Authorization: Bearer x`, `Cookie: a=b; c=d` written into a message: everything to the line end. */
const SECRET_HEADER = /\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key|x-auth-token)(\s*[:=]\s*)[^\r\n]+/gi
/** A bearer or basic credential anywhere (see looksLikeCredential for what follows the word). */
const SCHEME_CREDENTIAL = /\b(Bearer|Basic)\s+([A-Za-z0-9._~+/=-]{8,})/g
/** A JSON Web Token: three base64url parts, the first two starting with `eyJ` (`{"`). */
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g
/** The names of `name=value` / `"name": "value"` pairs whose value is a secret. */
const PAIR_NAMES = '(?:pass(?:word|wd)?|pwd|secret|client_secret|token|access_token|refresh_token|id_token|auth_token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|session(?:_?id)?|sessionid|csrf(?:_?token)?|signature)'
/**
 * `password=hunter2` in a query string or message: the value runs to `&`, whitespace, a quote or
 * `;`. In URLs the short names `key`, `sig` and `auth` carry API keys and signatures too.
 */
const QUERY_PAIR = new RegExp(`(\\b(?:${PAIR_NAMES}|key|sig|auth)=)[^&\\s"';,]+`, 'gi')
/** `"password": "hunter2"` (JSON) and `password: hunter2` / `'password': 'x'` (Python reprs, YAML). */
const QUOTED_PAIR = new RegExp(`((["']?)\\b${PAIR_NAMES}\\2\\s*:\\s*)(?:"[^"]*"|'[^']*'|[^\\s,;}&]+)`, 'gi')
/** `scheme://user:password@host`, `redis://:password@host`. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+(@)/gi
/** A digit run that may be a card number: 13-19 digits, optionally grouped by spaces or dashes. */
const CARD_CANDIDATE = /\b[2-6]\d{3}(?:[ -]?\d){9,15}\b/g

/**
 * What follows `Bearer`/`Basic` is a credential when it has a digit or a symbol of base64 / JWT,
 * or mixes cases: so "Basic authentication failed" keeps its words.
 */
function redactScheme(match: string, scheme: string, credential: string): string {
  const looksLikeCredential = /[0-9+/=._~-]/.test(credential) || (/[a-z]/.test(credential) && /[A-Z]/.test(credential))
  return looksLikeCredential ? `${scheme} ${REDACTED}` : match
}

function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

function redactCard(candidate: string): string {
  const digits = candidate.replace(/[ -]/g, '')
  if (digits.length < 13 || digits.length > 19) return candidate
  return luhn(digits) ? REDACTED : candidate
}

const redacted = new TextMemo<string>()

/**
 * What every secret shape above needs somewhere in the text: a `:` or `=` (tokens, headers, URL
 * passwords, pairs), `eyJ` (a JWT), the word Bearer or Basic, or four digits (a card number).
 * Text without any of them (most paths, user agents, names) has nothing to redact.
 */
const MAY_HOLD_SECRET = /[:=]|eyJ|Bearer|Basic|[2-6]\d{3}/
/** An ISO 8601 UTC time as parsers write @timestamp: no secret has that shape. */
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$/

/** The text with every recognisable secret replaced by `[REDACTED]`. */
export function redactText(text: string): string {
  if (!MAY_HOLD_SECRET.test(text) || ISO_TIME.test(text)) return text
  if (text.length > MEMO_TEXT) return redactOnce(text)
  let out = redacted.get(text)
  if (out === undefined) redacted.set(text, (out = redactOnce(text)))
  return out
}

function redactOnce(text: string): string {
  return text
    .replace(TELEGRAM_TOKEN, REDACTED)
    .replace(SECRET_HEADER, `$1$2${REDACTED}`)
    .replace(JWT, REDACTED)
    .replace(SCHEME_CREDENTIAL, redactScheme)
    .replace(URL_PASSWORD, `$1${REDACTED}$2`)
    .replace(QUERY_PAIR, `$1${REDACTED}`)
    .replace(QUOTED_PAIR, `$1${REDACTED}`)
    .replace(CARD_CANDIDATE, redactCard)
}

/** One field's value, redacted by its name and, for text, by its content. */
export function redactValue(path: string, value: FieldValue): FieldValue {
  if (isSecretField(path)) return REDACTED
  if (typeof value === 'string') return redactText(value)
  if (Array.isArray(value)) return value.map(redactText)
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1e12) {
    // A card number logged as a JSON number.
    const text = String(value)
    const redacted = redactText(text)
    return redacted === text ? value : redacted
  }
  return value
}

/** A copy of `fields` with every value redacted. */
export function redactFields(fields: Record<string, FieldValue>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {}
  for (const key of Object.keys(fields)) out[key] = redactValue(key, fields[key]!)
  return out
}
