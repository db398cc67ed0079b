/**
 * A Notification as a Telegram message: HTML for parse mode HTML, and the same message as plain
 * text (Telegram's fallback when it cannot parse the HTML, and the console notifier's output).
 *
 * Layout, top to bottom: severity and rule name; the rule's summary; where (environment, service,
 * host) and when (in the route's IANA zone); the key fields of the entry (request, client IP, user
 * agent, user, error and its top stack frames); how often (count, first and last seen), the
 * exception fingerprint with its history and regression flag; "and 37 more like this"; the rule
 * id; a Kibana Discover link when `kibanaUrl` is set. The most useful lines come first so that a
 * message cut at Telegram's limit, or an edit cut to one message, keeps them.
 *
 * A rule's Mustache template replaces the part between the header and the footer ("more like
 * this", rule id, link). Mustache escapes every `{{value}}` with `escapeHtml`; a template that
 * fails to render falls back to the standard layout with a note.
 */
import Mustache from 'mustache'
import type { FieldValue } from '../../agent/entry'
import type { Notification, Severity } from '../../rules/model'
import { escapeAttribute, escapeHtml } from './escape'
import { labelsFor, type Labels, type Language } from './i18n'
import { tokenizeHtml } from './split'

export interface FormatOptions {
  language: Language
  /** IANA zone for times, e.g. `Europe/Moscow`. */
  timezone: string
  /** Kibana base URL (with a space path if any, e.g. `https://kibana.example.com/s/ops`): adds a Discover link. */
  kibanaUrl?: string
  /** Discover data view id for the link; Kibana's default data view otherwise. */
  kibanaDataView?: string
}

export interface FormattedMessage {
  /** For parse_mode HTML. */
  html: string
  /** The same message without markup. */
  text: string
}

const SEVERITY_EMOJI: Record<Severity, string> = { critical: '🚨', error: '🔴', warning: '🟠', info: '🔵' }
const RESOLVED_EMOJI = '✅'
const REGRESSION_EMOJI = '🔁'

/** ECS paths of the key fields (rules/model.ts AlertEvent.fields). */
const F = {
  method: 'http.request.method',
  path: 'url.path',
  query: 'url.query',
  status: 'http.response.status_code',
  clientIp: 'client.ip',
  userAgent: 'user_agent.original',
  user: 'user.name',
  errorType: 'error.type',
  errorMessage: 'error.message',
  stack: 'error.stack_trace',
  message: 'message',
  service: 'service.name',
  environment: 'service.environment',
  host: 'host.name',
} as const

/** Longest shown value per kind: a message stays readable and the top lines survive a cut. */
const MAX = { short: 200, path: 600, message: 1000, frame: 200 }
const MAX_FRAMES = 8

/** Discover's time range around the alert: matches a few minutes before the first may explain it. */
const KIBANA_BEFORE_MS = 15 * 60_000
const KIBANA_AFTER_MS = 5 * 60_000

export function formatNotification(n: Notification, options: FormatOptions): FormattedMessage {
  const html = formatHtml(n, options)
  return { html, text: htmlToPlain(html) }
}

function formatHtml(n: Notification, options: FormatOptions): string {
  const l = labelsFor(options.language)
  const kibana = options.kibanaUrl === undefined ? undefined : kibanaDiscoverUrl(n, options.kibanaUrl, options.kibanaDataView)
  const header = n.state === 'resolved'
    ? `${RESOLVED_EMOJI} <b>${l.resolved}</b> · <b>${escapeHtml(n.ruleName)}</b>`
    : `${SEVERITY_EMOJI[n.severity]} <b>${l.severity[n.severity]}</b> · <b>${escapeHtml(n.ruleName)}</b>`

  let body: string
  if (n.template === undefined) body = standardBody(n, options, l)
  else {
    try {
      body = Mustache.render(n.template, templateView(n, options, l, kibana), undefined, { escape: escapeTemplateValue }).trim()
    } catch (err) {
      body = `${standardBody(n, options, l)}\n\n<i>${escapeHtml(`${l.templateFailed}: ${err instanceof Error ? err.message : String(err)}`)}</i>`
    }
  }

  const footer: string[] = []
  if (n.more > 0) footer.push(`<i>${escapeHtml(l.more(n.more))}</i>`)
  footer.push(`<b>${l.rule}:</b> <code>${escapeHtml(n.ruleId)}</code>`)
  if (kibana !== undefined) footer.push(`<a href="${escapeAttribute(kibana)}">${escapeHtml(l.openInKibana)}</a>`)
  return [header, body, footer.join('\n')].filter((s) => s !== '').join('\n\n')
}

function standardBody(n: Notification, options: FormatOptions, l: Labels): string {
  const f = n.event.fields
  const blocks: string[] = []
  if (n.event.summary !== '') blocks.push(`<i>${escapeHtml(n.event.summary)}</i>`)

  const where = [
    labelled(l.environment, str(f, F.environment) ?? n.labels.environment),
    labelled(l.service, str(f, F.service)),
    labelled(l.host, str(f, F.host)),
  ].filter(isString)
  const context = [] as string[]
  if (where.length > 0) context.push(where.join(' · '))
  context.push(`<b>${l.time}:</b> ${escapeHtml(formatTime(n.event.at, options.timezone))}`)
  blocks.push(context.join('\n'))

  const key: string[] = []
  const request = requestLine(f)
  if (request !== undefined) key.push(`<b>${l.request}:</b> ${request}`)
  const ip = str(f, F.clientIp)
  if (ip !== undefined) key.push(`<b>${l.clientIp}:</b> <code>${escapeHtml(clip(ip, MAX.short))}</code>`)
  const ua = str(f, F.userAgent)
  if (ua !== undefined) key.push(`<b>${l.userAgent}:</b> ${escapeHtml(clip(ua, MAX.short))}`)
  const user = str(f, F.user)
  if (user !== undefined) key.push(`<b>${l.user}:</b> ${escapeHtml(clip(user, MAX.short))}`)
  const error = errorLine(n)
  if (error !== undefined) key.push(`<b>${l.error}:</b> ${error}`)
  else {
    const message = str(f, F.message)
    if (message !== undefined) key.push(escapeHtml(clip(message, MAX.message)))
  }
  const frames = topFrames(n)
  if (frames.length > 0) key.push(`<pre>${escapeHtml(frames.join('\n'))}</pre>`)
  if (key.length > 0) blocks.push(key.join('\n'))

  const history: string[] = []
  const counts = [`<b>${l.count}:</b> ${n.total}`]
  if (n.firstAt !== n.lastAt) {
    counts.push(`<b>${l.firstSeen}:</b> ${escapeHtml(formatTime(n.firstAt, options.timezone, n.event.at))}`)
    counts.push(`<b>${l.lastSeen}:</b> ${escapeHtml(formatTime(n.lastAt, options.timezone, n.event.at))}`)
  }
  history.push(counts.join(' · '))
  const ex = n.event.exception
  if (ex !== undefined) {
    const parts = [
      `<b>${l.fingerprint}:</b> <code>${escapeHtml(ex.fingerprint)}</code>`,
      escapeHtml(l.seenTotal(ex.count)),
      `${l.firstSeen.toLowerCase()} ${escapeHtml(formatTime(ex.firstSeen, options.timezone, n.event.at))}`,
    ]
    if (ex.regression) parts.push(`${REGRESSION_EMOJI} <b>${l.regression}</b>`)
    history.push(parts.join(' · '))
  }
  blocks.push(history.join('\n'))
  return blocks.join('\n\n')
}

/** `GET /path?query → 500`, from what the entry has. */
function requestLine(f: Record<string, FieldValue>): string | undefined {
  const method = str(f, F.method)
  const path = str(f, F.path)
  const query = str(f, F.query)
  const status = str(f, F.status)
  if (method === undefined && path === undefined && status === undefined) return undefined
  const target = [method, path === undefined ? undefined : query === undefined ? path : `${path}?${query}`].filter(isString).join(' ')
  const parts: string[] = []
  if (target !== '') parts.push(`<code>${escapeHtml(clip(target, MAX.path))}</code>`)
  if (status !== undefined) parts.push(`<b>${escapeHtml(clip(status, MAX.short))}</b>`)
  return parts.join(' → ')
}

function errorLine(n: Notification): string | undefined {
  const f = n.event.fields
  const type = str(f, F.errorType) ?? n.event.exception?.type
  const message = str(f, F.errorMessage) ?? n.event.exception?.message
  if (type === undefined && message === undefined) return undefined
  const shownType = type === undefined ? '' : `<b>${escapeHtml(clip(type, MAX.short))}</b>`
  const shownMessage = message === undefined ? '' : escapeHtml(clip(message, MAX.message))
  return shownType !== '' && shownMessage !== '' ? `${shownType}: ${shownMessage}` : shownType + shownMessage
}

/**
 * The top frames: the fingerprint's normalised in-app frames when there is an exception, else the
 * first `at ...` lines of a Node/Java trace, or the last frames of a Python traceback (Python
 * prints the innermost call last).
 */
function topFrames(n: Notification): string[] {
  const frames = n.event.exception?.frames
  if (frames !== undefined && frames.length > 0) return frames.slice(0, MAX_FRAMES).map((s) => clip(s, MAX.frame))
  const trace = str(n.event.fields, F.stack)
  if (trace === undefined) return []
  const lines = trace.split('\n').map((s) => s.trimEnd()).filter((s) => s.trim() !== '')
  let picked: string[]
  if (/^Traceback \(most recent call last\)/.test(lines[0] ?? '')) {
    // The last line is the exception itself (shown as Error); frames are "File ..." plus the code line.
    picked = lines.slice(1, -1).slice(-MAX_FRAMES * 2)
  } else {
    const at = lines.filter((s) => /^\s*at\s/.test(s))
    picked = (at.length > 0 ? at : lines.slice(1)).slice(0, MAX_FRAMES)
  }
  return picked.map((s) => clip(s, MAX.frame))
}

function templateView(n: Notification, options: FormatOptions, l: Labels, kibana: string | undefined): Record<string, unknown> {
  const f = n.event.fields
  const ex = n.event.exception
  const time = (ms: number): string => formatTime(ms, options.timezone)
  return {
    rule: { id: n.ruleId, name: n.ruleName },
    severity: n.severity,
    severity_label: l.severity[n.severity],
    emoji: n.state === 'resolved' ? RESOLVED_EMOJI : SEVERITY_EMOJI[n.severity],
    state: n.state,
    resolved: n.state === 'resolved',
    summary: n.event.summary,
    time: time(n.event.at),
    environment: str(f, F.environment) ?? n.labels.environment,
    service: str(f, F.service),
    host: str(f, F.host),
    method: str(f, F.method),
    path: str(f, F.path),
    status: str(f, F.status),
    client_ip: str(f, F.clientIp),
    user_agent: str(f, F.userAgent),
    user: str(f, F.user),
    error_type: str(f, F.errorType) ?? ex?.type,
    error_message: str(f, F.errorMessage) ?? ex?.message,
    stack: topFrames(n).join('\n'),
    count: n.total,
    more: n.more,
    first_seen: time(n.firstAt),
    last_seen: time(n.lastAt),
    fingerprint: n.fingerprint,
    exception: ex === undefined ? false : { ...ex, first_seen: time(ex.firstSeen), last_seen: time(ex.lastSeen) },
    labels: n.labels,
    group: n.event.groupKey,
    fields: nest(f),
    kibana_url: kibana,
  }
}

/** Dotted ECS paths as nested objects, so that `{{fields.http.request.method}}` works in Mustache. */
function nest(fields: Record<string, FieldValue>): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  for (const [path, value] of Object.entries(fields)) {
    const keys = path.split('.')
    let node = root
    for (const key of keys.slice(0, -1)) {
      const next = node[key]
      if (typeof next === 'object' && next !== null && !Array.isArray(next)) node = next as Record<string, unknown>
      else if (next === undefined) node = (node[key] = {}) as Record<string, unknown>
      else break // a value already sits where an object would go: keep the value
    }
    const leaf = keys[keys.length - 1] as string
    if (node[leaf] === undefined) node[leaf] = value
  }
  return root
}

/**
 * A Kibana Discover URL showing the alert's matches: the time range around first..last seen, and
 * a KQL query on the group key (the fields that make the alert's fingerprint) or, without one,
 * the exception type. State is in Discover's `_g`/`_a` hash parameters as rison, URL-encoded.
 */
export function kibanaDiscoverUrl(n: Notification, kibanaUrl: string, dataView?: string): string {
  const from = new Date(Math.min(n.firstAt, n.event.at) - KIBANA_BEFORE_MS).toISOString()
  const to = new Date(Math.max(n.lastAt, n.event.at) + KIBANA_AFTER_MS).toISOString()
  const terms = Object.entries(n.event.groupKey).filter(([, v]) => v !== '').map(([k, v]) => `${kqlField(k)}:${kqlValue(v)}`)
  const type = n.event.exception?.type
  if (terms.length === 0 && type !== undefined) terms.push(`error.type:${kqlValue(type)}`)
  const g = `(filters:!(),time:(from:${rison(from)},to:${rison(to)}))`
  const source = dataView === undefined ? '' : `dataSource:(dataViewId:${rison(dataView)},type:dataView),`
  const a = `(${source}query:(language:kuery,query:${rison(terms.join(' and '))}))`
  return `${kibanaUrl.replace(/\/+$/, '')}/app/discover#/?_g=${encodeURIComponent(g)}&_a=${encodeURIComponent(a)}`
}

/** A rison string literal: quoted, with `!` and `'` escaped by `!`. */
function rison(value: string): string {
  return `'${value.replace(/[!']/g, (c) => `!${c}`)}'`
}

/** KQL: a quoted value escapes `\` and `"`; a field name escapes KQL's special characters. */
function kqlValue(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

function kqlField(name: string): string {
  return name.replace(/[\\():<>"*{}\s]/g, (c) => `\\${c}`)
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatterFor(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone)
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'longOffset',
    })
    formatters.set(timezone, f)
  }
  return f
}

/**
 * `2015-05-17 13:05:03 UTC+03:00` in the given IANA zone (numeric, so it reads the same in every
 * language). With `sameDayAs`, a time on the same local day as that moment shows only `13:05:03`.
 * Throws RangeError for a zone this Node.js does not know.
 */
export function formatTime(ms: number, timezone: string, sameDayAs?: number): string {
  if (timezone === 'UTC') {
    // The common zone needs no zone data: Intl's first formatter loads ICU's, 6 MB of memory an
    // agent that shows UTC never needs. The same text as below.
    const iso = new Date(ms).toISOString()
    const day = iso.slice(0, 10)
    const clock = iso.slice(11, 19)
    if (sameDayAs !== undefined && new Date(sameDayAs).toISOString().slice(0, 10) === day) return clock
    return `${day} ${clock} UTC`
  }
  const parts = (at: number): Record<string, string> => {
    const out: Record<string, string> = {}
    for (const p of formatterFor(timezone).formatToParts(new Date(at))) out[p.type] = p.value
    return out
  }
  const p = parts(ms)
  const date = `${p.year}-${p.month}-${p.day}`
  const clock = `${p.hour}:${p.minute}:${p.second}`
  if (sameDayAs !== undefined) {
    const q = parts(sameDayAs)
    if (`${q.year}-${q.month}-${q.day}` === date) return clock
  }
  const zone = (p.timeZoneName ?? 'GMT').replace(/^GMT(\+00:00)?/, 'UTC')
  return `${date} ${clock} ${zone}`
}

/**
 * Telegram HTML as plain text: tags dropped, entities decoded, a link shown as `text (url)`.
 * Used for Telegram's plain-text fallback and for the console.
 */
export function htmlToPlain(html: string): string {
  let out = ''
  const links: Array<{ href: string; from: number }> = []
  for (const t of tokenizeHtml(html)) {
    if (t.kind === 'text') out += t.text
    else if (t.kind === 'open' && t.name === 'a') links.push({ href: t.attrs.href ?? '', from: out.length })
    else if (t.kind === 'close' && t.name === 'a') {
      const link = links.pop()
      if (link !== undefined && link.href !== '' && out.slice(link.from) !== link.href) out += `: ${link.href}`
    }
  }
  return out
}

/** Mustache hands numbers and booleans to the escape function as they are. */
const escapeTemplateValue = (value: unknown): string => escapeHtml(String(value))

function str(fields: Record<string, FieldValue>, path: string): string | undefined {
  const v = fields[path]
  if (v === undefined) return undefined
  const s = Array.isArray(v) ? v.join(', ') : String(v)
  return s === '' ? undefined : s
}

function labelled(label: string, value: string | undefined): string | undefined {
  return value === undefined ? undefined : `<b>${label}:</b> ${escapeHtml(clip(value, MAX.short))}`
}

function clip(value: string, max: number): string {
  if (value.length <= max) return value
  let cut = max - 1
  // Do not leave half of a surrogate pair.
  const c = value.charCodeAt(cut - 1)
  if (c >= 0xd800 && c <= 0xdbff) cut--
  return value.slice(0, cut) + '…'
}

const isString = (v: string | undefined): v is string => v !== undefined
