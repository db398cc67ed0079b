/**
 * JSON lines: pino / pino-http / bunyan, structlog, python-json-logger, ECS loggers, nginx's JSON
 * `log_format`, and common generic keys. The document is built from the original text with the
 * derived fields put in front (`{derived, ...original}`), so a field is derived only where the
 * object has nothing at its path and no scalar at a prefix of it (see probeTaken): a duplicate
 * key, or `"error": "boom"` beside `"error.type"`, would get the document rejected.
 *
 * The hot path: one JSON.parse, then property reads; no regex over the line, no closures.
 */

import { isIP } from 'node:net'
import { newFields, type FieldValue, type ParseContext, type ParseResult } from '../entry'
import { compilePath, isMethod, isRecord, normalizeLevel, PathProbe, probeTaken, setterOf, setUrlFields, statusCode, type FieldSetter } from './fields'
import { stackHeadOf } from './plain'
import { exceptionOf } from './python'
import { formatIso, parseClfTime, timestampFrom } from './time'

/** A derived ECS field: its path and the probes that tell whether the object already has it. */
interface Target {
  path: string
  probes: PathProbe[]
  set: FieldSetter
}

/**
 * The first names of the derived paths (the `url.*` ones are set by setUrlFields), and those of
 * every ECS field a document builder treats apart (ECS objects, `tags`, `labels`): a line with
 * none of them at its top level, and no dotted key, is `plain` (see ParseResult.plain).
 */
const ROOTS = new Set<string>(['url', 'tags', 'labels', 'agent', 'client', 'cloud', 'container', 'destination', 'ecs', 'error', 'event', 'file',
  'host', 'http', 'log', 'network', 'observer', 'organization', 'process', 'server', 'service', 'source', 'span', 'trace', 'transaction', 'user',
  'user_agent', 'data_stream'])

/** The names `plain` rules out (for the test that keeps them a superset of what documents treat apart). */
export function plainRoots(): ReadonlySet<string> {
  return ROOTS
}

function target(path: string): Target {
  ROOTS.add(path.split('.')[0]!)
  return { path, probes: compilePath(path), set: setterOf(path) }
}

/** The object to probe for what it holds, or undefined when there is nothing to probe. */
type Probe = Record<string, unknown> | undefined

/** Whether the object mayHold last looked at has a dotted key at its top level. */
let dotted = false

/** Top-level names mayHold remembers by position (see below). */
const KEY_SLOTS = 32
/** The last object's top-level names, by position, and how many it had (-1: none remembered). */
const lastKeys: Array<string | undefined> = new Array(KEY_SLOTS).fill(undefined)
let lastCount = -1
let lastMay = false
let lastDotted = false

/**
 * Whether the object may already hold a derived path: only if one of its keys is a derived
 * path's first name (`http`, `message`) or is dotted (`"log.level"`). One pass over the keys
 * instead of probing every derived path, which most lines would pass anyway. The same pass
 * tells whether any key is dotted (see ParseResult.flat).
 *
 * Lines of one logger have the same keys in the same order, and property names are unique
 * strings: when every name is the one at the same position in the last object (a pointer
 * compare), so is the answer, and no name is looked up.
 */
function mayHold(o: Record<string, unknown>): boolean {
  let i = 0
  for (const key in o) {
    if (i >= KEY_SLOTS || lastKeys[i] !== key) return mayHoldLooked(o)
    i++
  }
  if (i !== lastCount) return mayHoldLooked(o)
  // A dotted name makes the answer true and is remembered with it.
  dotted = lastDotted
  return lastMay
}

function mayHoldLooked(o: Record<string, unknown>): boolean {
  let may = false
  let count = 0
  dotted = false
  for (const key in o) {
    if (count < KEY_SLOTS) lastKeys[count] = key
    count++
    if (key.indexOf('.') !== -1) dotted = true
    else if (!may && ROOTS.has(key)) may = true
  }
  if (dotted) may = true
  lastCount = count <= KEY_SLOTS ? count : -1
  lastMay = may
  lastDotted = dotted
  return may
}

const TIMESTAMP = target('@timestamp')
const MESSAGE = target('message')
const LEVEL = target('log.level')
const LOGGER = target('log.logger')
const HOST_NAME = target('host.name')
const PID = target('process.pid')
const ERROR_TYPE = target('error.type')
const ERROR_MESSAGE = target('error.message')
const ERROR_STACK = target('error.stack_trace')
const METHOD = target('http.request.method')
const STATUS = target('http.response.status_code')
const BODY_BYTES = target('http.response.body.bytes')
const HTTP_VERSION = target('http.version')
const REFERRER = target('http.request.referrer')
const USER_AGENT = target('user_agent.original')
const CLIENT_IP = target('client.ip')
const USER_NAME = target('user.name')
const DURATION = target('event.duration')

/**
 * `probe` is the object to check for what it already holds, or undefined when a glance at its
 * keys showed it cannot hold any derived path (see mayHold): most lines, and no probing at all.
 */
function put(fields: Record<string, FieldValue>, probe: Probe, field: Target, value: FieldValue): void {
  if (probe === undefined || !probeTaken(probe, field.probes)) field.set(fields, value)
}

function putString(fields: Record<string, FieldValue>, object: Probe, field: Target, value: unknown): void {
  if (typeof value === 'string' && value.length > 0) put(fields, object, field, value)
}

/** A count from a number or a digit string (nginx's JSON format quotes everything). */
function count(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.length > 0 ? Number(value) : NaN
  return Number.isInteger(n) && n >= 0 ? n : undefined
}

/** A non-negative duration from a number or a numeric string, in the unit it was written in. */
function amount(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.length > 0 ? Number(value) : NaN
  return n >= 0 ? n : undefined
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return 'a ' + typeof value
}

function setTimestamp(fields: Record<string, FieldValue>, o: Record<string, unknown>, p: Probe, zone: string): void {
  if (p !== undefined && probeTaken(p, TIMESTAMP.probes)) return
  // The first key present decides: pino/bunyan `time`, structlog/python-json-logger
  // `timestamp`, zap `ts`, Serilog CLEF `@t`, python-json-logger `asctime`, nginx, Python `created`.
  let value = o['time']
  if (value === undefined) value = o['timestamp']
  if (value === undefined) value = o['ts']
  if (value === undefined) value = o['@t']
  if (value === undefined) value = o['asctime']
  if (value === undefined) value = o['time_iso8601']
  if (value === undefined) {
    const local = o['time_local']
    if (typeof local === 'string') {
      const iso = formatIso(parseClfTime(local))
      if (iso !== undefined) fields['@timestamp'] = iso
      return
    }
    value = o['created']
  }
  if (value === undefined) return
  const iso = timestampFrom(value, zone)
  if (iso !== undefined) fields['@timestamp'] = iso
}

function setLogFields(fields: Record<string, FieldValue>, o: Record<string, unknown>, p: Probe): void {
  // pino `msg`, structlog `event` (a string there; ECS's `event` is an object), CLEF `@m`.
  let message = o['msg']
  if (message === undefined) message = o['event']
  if (message === undefined) message = o['@m']
  if (typeof message === 'string') put(fields, p, MESSAGE, message)

  let level = o['level']
  if (level === undefined) level = o['levelname']
  if (level === undefined) level = o['severity']
  if (level === undefined) level = o['lvl']
  if (level === undefined) level = o['@l']
  if (level !== undefined) {
    const normalized = normalizeLevel(level)
    if (normalized !== undefined) put(fields, p, LEVEL, normalized)
  }

  let logger = o['logger']
  if (logger === undefined) logger = o['logger_name']
  // `name` is the logger's name only for loggers known to write it there (pino/bunyan with their
  // numeric level, python-json-logger with `levelname`); elsewhere it may be anyone's name.
  if (logger === undefined && (typeof o['level'] === 'number' || o['levelname'] !== undefined)) logger = o['name']
  putString(fields, p, LOGGER, logger)

  putString(fields, p, HOST_NAME, o['hostname'])
  const pid = o['pid']
  if (typeof pid === 'number' && Number.isInteger(pid)) put(fields, p, PID, pid)
}

function setErrorFields(fields: Record<string, FieldValue>, o: Record<string, unknown>, p: Probe): void {
  const err = o['err']
  if (isRecord(err)) {
    // pino's and bunyan's error serializers: {type | name, message, stack}.
    putString(fields, p, ERROR_TYPE, err['type'] ?? err['name'])
    putString(fields, p, ERROR_MESSAGE, err['message'])
    putString(fields, p, ERROR_STACK, err['stack'])
    return
  }
  // structlog `exception` (format_exc_info: text; dict_tracebacks: a list, the raised one first),
  // python-json-logger `exc_info`, winston's errors() format `stack`.
  let exception = o['exception']
  if (exception === undefined) exception = o['exc_info']
  if (typeof exception === 'string') {
    putString(fields, p, ERROR_STACK, exception)
    const info = exceptionOf(exception)
    putString(fields, p, ERROR_TYPE, info.type)
    putString(fields, p, ERROR_MESSAGE, info.message)
    return
  }
  if (Array.isArray(exception)) {
    const raised: unknown = exception[0]
    if (isRecord(raised)) {
      putString(fields, p, ERROR_TYPE, raised['exc_type'])
      putString(fields, p, ERROR_MESSAGE, raised['exc_value'])
    }
    return
  }
  const stack = o['stack']
  if (typeof stack === 'string') {
    putString(fields, p, ERROR_STACK, stack)
    const head = stackHeadOf(stack)
    putString(fields, p, ERROR_TYPE, head.type)
    putString(fields, p, ERROR_MESSAGE, head.message)
  }
}

function putIp(fields: Record<string, FieldValue>, p: Probe, value: unknown): void {
  if (typeof value === 'string' && isIP(value) !== 0) put(fields, p, CLIENT_IP, value)
}

/** `GET /x HTTP/1.1` as nginx's `$request` writes it. */
function setRequestLine(fields: Record<string, FieldValue>, p: Probe, request: string): void {
  const first = request.indexOf(' ')
  if (first === -1 || !isMethod(request.slice(0, first))) return
  put(fields, p, METHOD, request.slice(0, first))
  const last = request.lastIndexOf(' ')
  if (last > first && request.startsWith('HTTP/', last + 1)) {
    put(fields, p, HTTP_VERSION, request.slice(last + 6))
    setUrlFields(fields, request.slice(first + 1, last), p)
  } else {
    setUrlFields(fields, request.slice(first + 1), p)
  }
}

function setHttpFields(fields: Record<string, FieldValue>, o: Record<string, unknown>, p: Probe): void {
  const req = o['req']
  const res = o['res']
  if (isRecord(req)) {
    // pino-http / pino's std serializer: {method, url, headers, remoteAddress}.
    putString(fields, p, METHOD, req['method'])
    const url = req['url']
    if (typeof url === 'string' && url.length > 0) setUrlFields(fields, url, p)
    const headers = req['headers']
    if (isRecord(headers)) {
      putString(fields, p, USER_AGENT, headers['user-agent'])
      putString(fields, p, REFERRER, headers['referer'])
    }
    putIp(fields, p, req['remoteAddress'] ?? req['ip'])
    putString(fields, p, HTTP_VERSION, req['httpVersion'])
  } else {
    // nginx's JSON log_format, and the generic keys of hand-rolled request logs.
    const request = o['request']
    if (typeof request === 'string') setRequestLine(fields, p, request)
    else {
      const method = o['method']
      if (typeof method === 'string' && isMethod(method)) put(fields, p, METHOD, method)
      const path = o['path']
      if (typeof path === 'string' && path.length > 0) setUrlFields(fields, path, p)
    }
    putIp(fields, p, o['remote_addr'] ?? o['client_ip'] ?? o['ip'])
    putString(fields, p, USER_AGENT, o['http_user_agent'] ?? o['userAgent'])
    const referrer = o['http_referer'] ?? o['referer'] ?? o['referrer']
    if (referrer !== '-') putString(fields, p, REFERRER, referrer)
    const bytes = count(o['body_bytes_sent'])
    if (bytes !== undefined) put(fields, p, BODY_BYTES, bytes)
  }

  let status = isRecord(res) ? res['statusCode'] : undefined
  if (status === undefined) status = o['status']
  if (status === undefined) status = o['status_code']
  if (status === undefined) status = o['statusCode']
  const code = statusCode(status)
  if (code !== undefined) put(fields, p, STATUS, code)

  // Milliseconds: pino-http `responseTime`, `duration_ms`, and a bare `duration` (Node request
  // loggers write ms); nginx's `request_time` is seconds.
  let ms = amount(o['responseTime'] ?? o['duration_ms'] ?? o['duration'])
  if (ms === undefined) {
    const seconds = amount(o['request_time'])
    if (seconds !== undefined) ms = seconds * 1000
  }
  if (ms !== undefined) put(fields, p, DURATION, Math.round(ms * 1e6))

  const user = o['username'] ?? o['user_name'] ?? o['remote_user']
  if (user !== '-') putString(fields, p, USER_NAME, user)
}

/** Parses one JSON line. `object` is the parsed line; `fields` only what it does not already have. */
export function parseJson(text: string, ctx: ParseContext): ParseResult {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return {
      fields: { message: text },
      error: `LW_PARSE_JSON: the line is not valid JSON (${(err as Error).message}); set \`format: plain\` for this input if its lines are not JSON`,
    }
  }
  if (!isRecord(value)) {
    return {
      fields: { message: text },
      error: `LW_PARSE_JSON: the line is JSON but ${describe(value)}, not an object; only JSON objects can be shipped as documents (set \`format: plain\` to ship such lines as text)`,
    }
  }
  const fields = newFields()
  const may = mayHold(value)
  const p = may ? value : undefined
  setTimestamp(fields, value, p, ctx.timezone)
  setLogFields(fields, value, p)
  setErrorFields(fields, value, p)
  setHttpFields(fields, value, p)
  return { fields, object: value, flat: !dotted, plain: !may }
}
