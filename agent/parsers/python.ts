/**
 * Python `logging` text output: the first line of a record is matched against the formats people
 * actually ship (Django's, the logging default, basicConfig's, gunicorn's, uvicorn's, Celery's); the lines
 * after it, when framing joined a traceback to it, become `error.*`.
 */

import { isIP } from 'node:net'
import { newFields, type FieldValue, type ParseContext, type ParseResult } from '../entry'
import { normalizeLevel, setUrlFields } from './fields'
import { formatIso, parseIsoLike } from './time'

const LEVEL = '(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|NOTSET)'
/** `%(asctime)s`: `2024-01-05 12:00:00,123` (logging's default), also with `.` or `T`. */
const ASCTIME = '(\\d{4}-\\d\\d-\\d\\d[ T]\\d\\d:\\d\\d:\\d\\d(?:[.,]\\d+)?)'

// None of these patterns ends in `$`: `.` stops at the first newline, so `(.*)` is the rest of the
// first line even when a traceback follows, and no slice of the header is needed.

/** Django's documented format: `[%(asctime)s] %(levelname)s [%(name)s:%(lineno)s] %(message)s`. */
const DJANGO = new RegExp(`^\\[${ASCTIME}\\] ${LEVEL} \\[([^\\]:]+)(?::(\\d+))?\\] ?(.*)`)
/** gunicorn's error log: `[2024-01-05 12:00:00 +0000] [123] [ERROR] Worker timeout`. */
const GUNICORN = /^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [+-]\d{4})?)\] \[(\d+)\] \[([A-Z]+)\] ?(.*)/
/** logging's default: `%(asctime)s - %(name)s - %(levelname)s - %(message)s`. */
const NAMED = new RegExp(`^${ASCTIME} - (\\S+) - ${LEVEL} - ?(.*)`)
/** `%(asctime)s %(levelname)s %(message)s` with the usual decorations: ` - `, `[LEVEL]`. */
const TIME_LEVEL = new RegExp(`^${ASCTIME} (?:- )?\\[?${LEVEL}\\]?(?: -)? ?(.*)`)
/** Django's "verbose" and similar: `%(levelname)s %(asctime)s %(message)s`. */
const LEVEL_TIME = new RegExp(`^${LEVEL} ${ASCTIME} ?(.*)`)
/** What follows the time in Django's verbose format: `%(module)s %(process)d %(thread)d`. */
const MODULE_PROCESS_THREAD = /^(\w+) (\d+) (\d+) ?(.*)/
/** basicConfig's default: `%(levelname)s:%(name)s:%(message)s`. */
const BASIC = new RegExp(`^${LEVEL}:([^\\s:][^:\\n]*):(.*)`)
/**
 * Celery's worker log: `[%(asctime)s: %(levelname)s/%(processName)s] %(message)s`
 * (worker_log_format), `ForkPoolWorker-3` or `MainProcess` as the process.
 */
const CELERY = new RegExp(`^\\[${ASCTIME}: ${LEVEL}/([^\\]\\n]+)\\] ?(.*)`)
/** worker_task_log_format puts `%(task_name)s[%(task_id)s]: ` before a task's own messages. */
const CELERY_TASK = /^([A-Za-z_][\w.]*)\[([0-9A-Za-z-]+)\]: (.*)/
/** uvicorn's `%(levelprefix)s %(message)s`: the level, a colon, padding to column 10. */
const UVICORN = new RegExp(`^${LEVEL}: +(.*)`)
/** uvicorn's access message: `127.0.0.1:52345 - "GET /x HTTP/1.1" 500 Internal Server Error`. */
const UVICORN_ACCESS = /^(\S+):(\d+) - "([A-Z]+) (\S+) HTTP\/([\d.]+)" (\d{3})/

const TRACEBACK = 'Traceback (most recent call last):'
/** A frame header as the traceback module prints it, preceded by the newline that starts its line. */
const FRAME = '\n  File "'
/** An exception class as Python prints it: a dotted identifier (`django.db.utils.OperationalError`). */
const EXCEPTION_TYPE = /^[A-Za-z_][\w.]*$/

export interface ExceptionInfo {
  type?: string
  message?: string
}

/**
 * The exception a traceback ends with: the text after the last frame of the last
 * `Traceback (most recent call last):` block, i.e. the exception finally raised when several are
 * chained. `Type: message` is split; a message may run over several lines, indented ones too
 * (psycopg2 points at the SQL with an indented caret).
 */
export function exceptionOf(traceback: string): ExceptionInfo {
  const last = traceback.lastIndexOf(TRACEBACK)
  if (last === -1) return {}
  // After the last frame header come its source line and carets (indented), then the exception.
  const frame = traceback.lastIndexOf(FRAME)
  let lineStart = traceback.indexOf('\n', frame > last ? frame + 1 : last) + 1
  if (lineStart === 0) return {}
  let exceptionStart = -1
  while (lineStart < traceback.length) {
    let lineEnd = traceback.indexOf('\n', lineStart)
    if (lineEnd === -1) lineEnd = traceback.length
    const c = traceback.charCodeAt(lineStart)
    if (lineEnd > lineStart && c !== 32 && c !== 9) {
      exceptionStart = lineStart
      break
    }
    lineStart = lineEnd + 1
  }
  if (exceptionStart === -1) return {}
  const text = traceback.slice(exceptionStart).trimEnd()
  let firstEnd = text.indexOf('\n')
  if (firstEnd === -1) firstEnd = text.length
  const colon = text.indexOf(':', 0)
  const typeEnd = colon !== -1 && colon < firstEnd ? colon : firstEnd
  const type = text.slice(0, typeEnd)
  if (!EXCEPTION_TYPE.test(type)) return { message: text }
  if (typeEnd === text.length) return { type }
  const message = text.slice(text.charCodeAt(typeEnd + 1) === 32 ? typeEnd + 2 : typeEnd + 1)
  return message.length > 0 ? { type, message } : { type }
}

function setTime(fields: Record<string, FieldValue>, text: string, zone: string): void {
  const iso = formatIso(parseIsoLike(text, zone))
  if (iso !== undefined) fields['@timestamp'] = iso
}

function setLevel(fields: Record<string, FieldValue>, level: string): void {
  const normalized = normalizeLevel(level)
  if (normalized !== undefined) fields['log.level'] = normalized
}

/**
 * The parts of the first line's message that uvicorn's access logger writes in a fixed shape.
 * The client may be IPv6 (`::1:52345`): the port is after the last colon.
 */
function setUvicornAccess(fields: Record<string, FieldValue>, message: string): void {
  const m = UVICORN_ACCESS.exec(message)
  if (m === null) return
  if (isIP(m[1]!) !== 0) fields['client.ip'] = m[1]!
  fields['client.port'] = Number(m[2])
  fields['http.request.method'] = m[3]!
  setUrlFields(fields, m[4]!)
  fields['http.version'] = m[5]!
  fields['http.response.status_code'] = Number(m[6])
}

/**
 * Matches the first line: fills `fields` and returns the first line's message, or undefined when
 * no known format matches. Dispatches on the first character so a line costs one regex or two.
 */
function parseHeader(text: string, fields: Record<string, FieldValue>, zone: string): string | undefined {
  const first = text.charCodeAt(0)
  let m: RegExpExecArray | null
  if (first === 91) { // '['
    if ((m = GUNICORN.exec(text)) !== null) {
      setTime(fields, m[1]!, zone)
      fields['process.pid'] = Number(m[2])
      setLevel(fields, m[3]!)
      return m[4]!
    }
    if ((m = DJANGO.exec(text)) !== null) {
      setTime(fields, m[1]!, zone)
      setLevel(fields, m[2]!)
      fields['log.logger'] = m[3]!
      if (m[4] !== undefined) fields['log.origin.file.line'] = Number(m[4])
      return m[5]!
    }
    if ((m = CELERY.exec(text)) !== null) {
      setTime(fields, m[1]!, zone)
      setLevel(fields, m[2]!)
      fields['process.name'] = m[3]!
      const message = m[4]!
      const task = CELERY_TASK.exec(message)
      if (task === null) return message
      fields['celery.task.name'] = task[1]!
      fields['celery.task.id'] = task[2]!
      return task[3]!
    }
    return undefined
  }
  if (first >= 48 && first <= 57) { // a digit: the time comes first
    if ((m = NAMED.exec(text)) !== null) {
      setTime(fields, m[1]!, zone)
      fields['log.logger'] = m[2]!
      setLevel(fields, m[3]!)
      return m[4]!
    }
    if ((m = TIME_LEVEL.exec(text)) !== null) {
      setTime(fields, m[1]!, zone)
      setLevel(fields, m[2]!)
      return m[3]!
    }
    return undefined
  }
  if ((m = LEVEL_TIME.exec(text)) !== null) {
    setLevel(fields, m[1]!)
    setTime(fields, m[2]!, zone)
    const rest = m[3]!
    const verbose = MODULE_PROCESS_THREAD.exec(rest)
    if (verbose === null) return rest
    // %(module)s is the file name without `.py`.
    fields['log.origin.file.name'] = verbose[1]! + '.py'
    fields['process.pid'] = Number(verbose[2])
    fields['process.thread.id'] = Number(verbose[3])
    return verbose[4]!
  }
  if ((m = UVICORN.exec(text)) !== null) {
    setLevel(fields, m[1]!)
    setUvicornAccess(fields, m[2]!)
    return m[2]!
  }
  if ((m = BASIC.exec(text)) !== null) {
    setLevel(fields, m[1]!)
    fields['log.logger'] = m[2]!
    return m[3]!
  }
  return undefined
}

function setError(fields: Record<string, FieldValue>, traceback: string, exception: ExceptionInfo): void {
  fields['error.stack_trace'] = traceback
  if (exception.type !== undefined) fields['error.type'] = exception.type
  if (exception.message !== undefined) fields['error.message'] = exception.message
}

/** Parses one Python logging record (its first line, plus any joined traceback lines). */
export function parsePython(text: string, ctx: ParseContext): ParseResult {
  const fields = newFields()
  if (text.startsWith(TRACEBACK)) {
    // An uncaught exception printed to stderr: a traceback with no logging line before it.
    // Its message is the exception, as Python prints it last.
    const traceback = text.trimEnd()
    const exception = exceptionOf(traceback)
    setError(fields, traceback, exception)
    const { type, message } = exception
    fields['message'] = type === undefined ? message ?? traceback : message === undefined ? type : type + ': ' + message
    return { fields }
  }
  const headerMessage = parseHeader(text, fields, ctx.timezone)
  if (headerMessage === undefined) {
    return {
      fields: { message: text },
      error: 'LW_PARSE_PYTHON: the line matches no known Python logging format (Django, logging default, basicConfig, gunicorn, uvicorn, Celery); set `format: plain` for this input if its lines are not Python logging output',
    }
  }
  const firstEnd = text.indexOf('\n')
  if (firstEnd === -1) {
    fields['message'] = headerMessage
    return { fields }
  }
  const tracebackStart = text.indexOf(TRACEBACK, firstEnd)
  if (tracebackStart === -1) {
    // A message that spans lines (logger.info("a\nb")): all of it is the message.
    fields['message'] = headerMessage + text.slice(firstEnd).trimEnd()
    return { fields }
  }
  fields['message'] = headerMessage + text.slice(firstEnd, tracebackStart).trimEnd()
  const traceback = text.slice(tracebackStart).trimEnd()
  setError(fields, traceback, exceptionOf(traceback))
  return { fields }
}
