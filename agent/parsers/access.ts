/**
 * Web server access logs: the Common and Combined Log Formats as Apache and nginx write them,
 * optionally followed by more fields (nginx's `$request_time`, a forwarded-for list). The whole
 * line is kept as `message`, as Filebeat does for access logs.
 */

import { isIP } from 'node:net'
import { newFields, type FieldValue, type ParseContext, type ParseResult } from '../entry'
import { isMethod, setUrlFields } from './fields'
import { formatIso, parseClfTime } from './time'

/**
 * `%h %l %u %t "%r" %>s %b ["%{Referer}i" "%{User-agent}i"] [more]`. Quoted fields may hold
 * backslash escapes (Apache `\"`, nginx `\x22`). The user agent, last on the line, may lack its
 * closing quote: a line cut short by a writer or a line limit still parses.
 */
const ACCESS = /^(\S+) \S+ (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)(?:"|$))?(?: (.*))?$/
/** nginx's `$request_time`: seconds with millisecond resolution, first of the extra fields. */
const REQUEST_TIME = /^(\d+\.\d+)(?: |$)/
/** `\xHH` (nginx, Apache for non-printable bytes) and `\c` (Apache for `"`, `\`, `\n`, `\t`). */
const ESCAPE = /\\(?:x([0-9A-Fa-f]{2})|(.))/g
const C_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', v: '\v', f: '\f', b: '\b' }
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function unescapeOne(_match: string, hex: string | undefined, char: string | undefined): string {
  if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16))
  return C_ESCAPES[char!] ?? char!
}

/**
 * A quoted field's text with its escapes undone. Servers escape each byte of a non-ASCII
 * character (`\xD0\xB0`), so the bytes are decoded again as UTF-8; if they are not UTF-8 the
 * field is kept as written rather than guessed at.
 */
function unquote(value: string): string {
  if (value.indexOf('\\') === -1) return value
  const bytes = value.replace(ESCAPE, unescapeOne)
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i)
    if (c > 0xff) return bytes
    if (c < 0x80) continue
    try {
      return strictUtf8.decode(Buffer.from(bytes, 'latin1'))
    } catch {
      return value
    }
  }
  return bytes
}

/** `GET /x?y=1 HTTP/1.1` (or HTTP/0.9's `GET /x`) to method, url.*, http.version; junk sets nothing. */
function setRequest(fields: Record<string, FieldValue>, request: string): void {
  const first = request.indexOf(' ')
  if (first === -1 || !isMethod(request.slice(0, first))) return
  fields['http.request.method'] = request.slice(0, first)
  const last = request.lastIndexOf(' ')
  if (last > first && request.startsWith('HTTP/', last + 1)) {
    fields['http.version'] = request.slice(last + 6)
    setUrlFields(fields, request.slice(first + 1, last))
  } else {
    setUrlFields(fields, request.slice(first + 1))
  }
}

/** `dd/Mon/yyyy:` — the start of a CLF time, checked before the time is parsed. */
const CLF_SHAPE = /^\d{1,2}\/[A-Za-z]{3}\/\d{4}:/

/** The last `%t` text and its @timestamp: consecutive lines mostly share their second. */
let lastTime = ''
let lastTimestamp: string | undefined

export function parseAccess(text: string, _ctx: ParseContext): ParseResult {
  const m = ACCESS.exec(text)
  if (m === null) {
    return {
      fields: { message: text },
      error: 'LW_PARSE_ACCESS: the line is not in Common or Combined Log Format (`host ident user [time] "request" status bytes "referrer" "user-agent"`); set `format: plain` for this input if it is another format',
    }
  }
  const time = m[3]!
  // The bracket must hold something shaped like a CLF time: `[2025-03-14 09:15:02,318] INFO
  // [django.server:187] "GET …" 200` (Django's runserver) matches the rest and is not an access log.
  if (!CLF_SHAPE.test(time)) {
    return {
      fields: { message: text },
      error: `LW_PARSE_ACCESS: [${time}] is not an access-log time (dd/Mon/yyyy:HH:MM:SS +zone); if this is a Python or Django log, set \`format: python\` for this input`,
    }
  }
  const fields = newFields()
  if (time !== lastTime) {
    lastTime = time
    lastTimestamp = formatIso(parseClfTime(time))
  }
  if (lastTimestamp !== undefined) fields['@timestamp'] = lastTimestamp
  fields['message'] = text
  const host = m[1]!
  // With HostnameLookups on, %h is a name, which an `ip` field would reject.
  if (isIP(host) !== 0) fields['client.ip'] = host
  else fields['client.address'] = host
  if (m[2] !== '-') fields['user.name'] = m[2]!
  setRequest(fields, unquote(m[4]!))
  fields['http.response.status_code'] = Number(m[5])
  if (m[6] !== '-') fields['http.response.body.bytes'] = Number(m[6])
  const referrer = m[7]
  if (referrer !== undefined && referrer !== '-' && referrer !== '') fields['http.request.referrer'] = unquote(referrer)
  const agent = m[8]
  if (agent !== undefined && agent !== '-' && agent !== '') fields['user_agent.original'] = unquote(agent)
  const extra = m[9]
  if (extra !== undefined) {
    const seconds = REQUEST_TIME.exec(extra)
    if (seconds !== null) fields['event.duration'] = Math.round(Number(seconds[1]) * 1e9)
  }
  return { fields }
}
