/**
 * The key fields of an entry that an alert carries to its message: enough to act on without
 * opening Kibana (who, what, where, which error), nothing else, every value redacted and cut to a
 * readable length. ECS names, so templates and the Telegram layout can rely on them.
 */
import type { FieldValue } from '../agent/entry'
import { topFrames } from './fingerprint'
import { redactValue } from './redact'

/** Longest text value kept; longer ones are cut with an ellipsis (a message is read on a phone). */
export const MAX_VALUE_CHARS = 500
/** How many stack frames an alert shows. */
export const TOP_FRAMES = 3

/**
 * The fields taken, each with the alternatives tried when it is absent (first found wins, stored
 * under the first name: `client.ip` may hold a `source.ip`, `user.name` a `user.id`).
 */
const KEY_FIELDS: ReadonlyArray<readonly [string, ...string[]]> = [
  ['@timestamp'],
  ['service.name'],
  ['service.environment', 'deployment.environment'],
  ['host.name', 'host.hostname'],
  ['log.file.path'],
  ['log.level'],
  ['http.request.method'],
  ['url.path', 'url.original'],
  ['url.query'],
  ['http.response.status_code'],
  ['client.ip', 'source.ip'],
  ['user_agent.original'],
  ['http.request.referrer'],
  ['user.name', 'user.id', 'user.email'],
  ['error.type'],
  ['error.message'],
  ['trace.id'],
  ['message'],
]

/** Where the top frames go: a list, innermost first, with their line numbers (people want them). */
export const STACK_FRAMES_FIELD = 'error.stack_frames'

function cut(value: FieldValue): FieldValue {
  if (typeof value === 'string' && value.length > MAX_VALUE_CHARS) return value.slice(0, MAX_VALUE_CHARS - 1) + '…'
  if (Array.isArray(value)) return value.map((v) => (v.length > MAX_VALUE_CHARS ? v.slice(0, MAX_VALUE_CHARS - 1) + '…' : v))
  return value
}

/**
 * The key fields of an entry. `read` gives a field's value (the entry's own fields first, then
 * its original object); `source` the fields every entry of its source has (service, host, file
 * path), used where the entry has none of its own.
 */
export function alertFields(read: (path: string) => FieldValue | undefined, source?: Record<string, FieldValue>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {}
  for (const names of KEY_FIELDS) {
    let value: FieldValue | undefined
    for (const name of names) {
      value = read(name) ?? source?.[name]
      if (value !== undefined) break
    }
    if (value === undefined || value === '') continue
    const name = names[0]
    out[name] = cut(redactValue(name, value))
  }
  const stack = read('error.stack_trace')
  if (typeof stack === 'string') {
    const frames = topFrames(stack, TOP_FRAMES)
    if (frames.length > 0) out[STACK_FRAMES_FIELD] = cut(redactValue(STACK_FRAMES_FIELD, frames))
  }
  return out
}

/**
 * A one-line plain description of what an entry is about, for a match alert's summary: the error
 * (`TypeError: x is not a function`), the request (`GET /admin → 500 from 10.0.0.7`), or the start of
 * the message. Takes fields already redacted by alertFields.
 */
export function describeEntry(fields: Record<string, FieldValue>): string {
  const type = fields['error.type']
  const errorMessage = fields['error.message']
  if (type !== undefined || errorMessage !== undefined) {
    return oneLine(type === undefined ? String(errorMessage) : errorMessage === undefined ? String(type) : `${type}: ${errorMessage}`)
  }
  const method = fields['http.request.method']
  const path = fields['url.path']
  const status = fields['http.response.status_code']
  if (method !== undefined || path !== undefined) {
    let text = [method, path].filter((v) => v !== undefined).join(' ')
    if (status !== undefined) text += ` → ${status}`
    const ip = fields['client.ip']
    if (ip !== undefined) text += ` from ${ip}`
    return oneLine(text)
  }
  const message = fields['message']
  return message === undefined ? 'matched' : oneLine(String(message))
}

const SUMMARY_CHARS = 200

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > SUMMARY_CHARS ? line.slice(0, SUMMARY_CHARS - 1) + '…' : line
}
