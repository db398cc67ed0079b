/**
 * Exception fingerprints, the way Sentry groups issues: the same bug gives the same fingerprint
 * whatever the ids, numbers and line numbers in this occurrence, and a different bug a
 * different one. The fingerprint is a hash of
 *   - the exception type (`TypeError`, `django.db.utils.OperationalError`),
 *   - the in-app frames of the stack, innermost first, as `dir/file.ext in function` — no line
 *     or column numbers (they move with every deploy), no deploy-specific path prefix (only the
 *     last two path segments), library and runtime frames left out (node_modules, site-packages,
 *     the Python stdlib, `<frozen …>`, `node:internal`, the JDK) unless there are no others,
 *     recursion folded to one frame;
 *   - the message with its variable parts replaced by placeholders (numbers, hex ids, UUIDs, IPs,
 *     e-mail addresses, quoted values).
 * Python tracebacks (the last one of a chain: the exception finally raised), Node.js stacks (also
 * pino's `err.stack`) and Java stacks (the top exception, before `Caused by:`) are understood.
 *
 * ExceptionHistory remembers each fingerprint's count, first and last sighting, and flags one that
 * comes back after a quiet period as a regression.
 */
import { createHash } from 'node:crypto'
import { TextMemo } from './memo'
import type { ExceptionInfo, Millis } from './model'
import { redactText } from './redact'
import { SeenSet, type SeenRecord } from './types/seen-set'

/** What one occurrence of an exception is, before any history. */
export interface ExceptionSignature {
  fingerprint: string
  type?: string
  /** The message as it was (for display; redact before it leaves). */
  message?: string
  /** The in-app frames, normalised, innermost first (at most MAX_SHOWN_FRAMES). */
  frames: string[]
}

export interface ErrorParts {
  type?: string
  message?: string
  stack?: string
}

interface Frame {
  /** The frame line as printed, trimmed (with its line number: for people). */
  raw: string
  /** `dir/file.ext in function`: for the fingerprint. */
  key: string
  inApp: boolean
}

const MAX_HASHED_FRAMES = 50
const MAX_SHOWN_FRAMES = 5
const MAX_MESSAGE_CHARS = 300

const PYTHON_TRACEBACK = 'Traceback (most recent call last):'
/** `  File "/app/users/views.py", line 42, in get_user` (the `, in` part is missing for some frames). */
const PYTHON_FRAME = /^\s*File "([^"]*)", line \d+(?:, in (.+))?$/
/** Library and runtime code in Python paths: installed packages, the stdlib, frozen modules. */
const PYTHON_LIBRARY = /(?:^|[\\/])(?:site-packages|dist-packages)[\\/]|[\\/]lib[\\/]python\d[^\\/]*[\\/]|^<frozen /
/** A Java frame: no space before the parenthesis (`com.x.Foo.bar(Foo.java:42)`). */
const JAVA_FRAME = /^([^\s()]+)\(([^()]*)\)$/
/** JDK and language runtimes (tested after the module or class-loader prefix is stripped). */
const JAVA_LIBRARY = /^(?:java|javax|jdk|sun|com\.sun|kotlin|kotlinx\.coroutines|scala)\./
/** `java.base/`, `java.base@17.0.1/`, `app//` before a Java method (generated names, whose `/` would confuse it, are folded first). */
const JAVA_MODULE_PREFIX = /^[^/]*\/\/?/
/** Generated class names carry a counter or an address: `Foo$$Lambda$14/0x0000000800c1234`, `$$EnhancerBySpringCGLIB$$5e2f1a`. */
const JAVA_GENERATED = /\$\$Lambda\$[^.(]*|\$\$[A-Za-z]+By[A-Za-z]+\$\$[0-9a-f]+/g
/** Node.js locations that are not the application's: the runtime and installed packages. */
const NODE_LIBRARY = /^node:|^internal[\\/]|(?:^|[\\/])node_modules[\\/]|^<anonymous>$|^native$|^index \d+$/
/** `:12:5` or `:12` at the end of a location. */
const LINE_COLUMN = /:\d+(?::\d+)?$/

/** The last two segments of a path: what survives a deploy into a new directory. */
function shortPath(path: string): string {
  let p = path
  if (p.startsWith('file://')) p = p.slice(7)
  const query = p.indexOf('?')
  if (query !== -1) p = p.slice(0, query)
  const parts = p.split(/[\\/]/).filter((s) => s.length > 0)
  return parts.slice(-2).join('/')
}

function pythonFrames(stack: string): Frame[] {
  // The last traceback of a chain is the exception finally raised.
  const start = stack.lastIndexOf(PYTHON_TRACEBACK)
  const frames: Frame[] = []
  for (const line of stack.slice(start).split('\n')) {
    const m = PYTHON_FRAME.exec(line)
    if (m === null) continue
    const path = m[1]!
    frames.push({
      raw: line.trim(),
      key: `${shortPath(path)} in ${m[2] ?? '?'}`,
      inApp: !PYTHON_LIBRARY.test(path),
    })
  }
  // Python prints the outermost frame first.
  return frames.reverse()
}

function atFrame(line: string): Frame | undefined {
  const at = line.indexOf('at ')
  const rest = line.slice(at + 3).trim()
  const raw = line.trim()
  const java = JAVA_FRAME.exec(rest)
  if (java !== null) {
    const method = java[1]!.replace(JAVA_GENERATED, '$$$$').replace(JAVA_MODULE_PREFIX, '')
    return { raw, key: method, inApp: !JAVA_LIBRARY.test(method) }
  }
  let fn = ''
  let location = rest
  if (rest.endsWith(')')) {
    const open = rest.lastIndexOf(' (')
    if (open !== -1) {
      fn = rest.slice(0, open)
      location = rest.slice(open + 2, -1)
    }
  }
  if (fn.startsWith('async ')) fn = fn.slice(6)
  location = location.replace(LINE_COLUMN, '')
  if (location.startsWith('file://')) location = location.slice(7)
  const path = shortPath(location)
  return { raw, key: fn === '' ? path : `${path} in ${fn}`, inApp: !NODE_LIBRARY.test(location) }
}

/** Node.js and Java: `at …` lines of the top exception (a Java `Caused by:` starts another). */
function atFrames(stack: string): Frame[] {
  const frames: Frame[] = []
  for (const line of stack.split('\n')) {
    const trimmed = line.trimStart()
    if (trimmed.startsWith('Caused by:')) break
    if (!trimmed.startsWith('at ')) continue
    const frame = atFrame(trimmed)
    if (frame !== undefined) frames.push(frame)
  }
  return frames
}

/** The frames of a stack, innermost first. */
function framesOf(stack: string): Frame[] {
  return stack.includes(PYTHON_TRACEBACK) ? pythonFrames(stack) : atFrames(stack)
}

/**
 * The frames that identify the bug: the in-app ones, or all when none is in-app (Sentry does the
 * same), with recursion folded.
 */
function significant(frames: Frame[]): Frame[] {
  const inApp = frames.filter((f) => f.inApp)
  const chosen = inApp.length > 0 ? inApp : frames
  const out: Frame[] = []
  for (const f of chosen) {
    if (out.length > 0 && out[out.length - 1]!.key === f.key) continue
    out.push(f)
    if (out.length === MAX_HASHED_FRAMES) break
  }
  return out
}

/**
 * The raw text of the top in-app frames, innermost first, with line numbers: what an alert shows.
 */
export function topFrames(stack: string, n: number): string[] {
  return significant(framesOf(stack)).slice(0, n).map((f) => f.raw)
}

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi
const EMAIL = /[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g
/**
 * Full or `::`-compressed IPv6 (`fe80::1`, `2001:db8::8a2e:370:7334`, `::1`); a hex group must
 * touch the `::`, so `Foo::bar` and `std::io` stay as they are.
 */
const IPV6 = /\b[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){7}\b|\b[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*\b)?|(?<![\w:])::[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*\b/gi
const HEX_LITERAL = /\b0x[0-9a-f]+\b/gi
/** Hash- or id-like runs: 8+ hex characters with at least one digit and one letter. */
const HEX_ID = /\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/gi
/**
 * A quoted value: the quote must open after a space or punctuation and close before one, so the
 * apostrophes of `can't` and `user's` are not taken for quotes.
 */
const QUOTED = /(^|[\s(\[{=:,])(['"`])[^\n]{0,200}?\2(?=$|[\s)\]},.:;!?])/g
/** A number not inside a word (`v2`, `user42` stay); a unit may follow (`3.5s`, `10ms`). */
const NUMBER = /(?<![\w.])\d+(?:\.\d+)?/g

/** The message with its variable parts replaced by placeholders: what groups occurrences. */
export function normalizeMessage(message: string): string {
  const text = message
    .replace(UUID, '<uuid>')
    .replace(EMAIL, '<email>')
    .replace(IPV4, '<ip>')
    .replace(IPV6, '<ip>')
    .replace(HEX_LITERAL, '<hex>')
    .replace(HEX_ID, '<hex>')
    .replace(QUOTED, '$1<str>')
    .replace(NUMBER, '<num>')
    .replace(/\s+/g, ' ')
    .trim()
  return text.length > MAX_MESSAGE_CHARS ? text.slice(0, MAX_MESSAGE_CHARS) : text
}

/** The type named on a stack's first line (`TypeError: x` → `TypeError`), for stacks logged without error.type. */
function typeFromStack(stack: string): string | undefined {
  const m = /^(?:Exception in thread "[^"]*" )?([A-Za-z_$][\w$.]*)(?::|\n|$)/.exec(stack)
  return m === null ? undefined : m[1]
}

/**
 * Signatures by the exception's text. The same error comes from the same line again and again,
 * and normalizing its message and frames costs tens of microseconds; a lookup, well under one.
 * Small, since stack traces are long; texts beyond MAX_KEY_CHARS are always worked out afresh.
 */
const signatures = new TextMemo<ExceptionSignature | null>(256)
const MAX_KEY_CHARS = 8192

/** The fingerprint and display parts of one exception; undefined when there is nothing to go on. Do not modify what it returns: it is shared. */
export function fingerprintError(parts: ErrorParts): ExceptionSignature | undefined {
  const { type, message, stack } = parts
  // \u0000 cannot be in any of the parts' logged text unescaped; \u0001 alone marks a missing part.
  const key = `${type ?? '\u0001'}\u0000${message ?? '\u0001'}\u0000${stack ?? '\u0001'}`
  if (key.length > MAX_KEY_CHARS) return signatureOf(parts)
  let signature = signatures.get(key)
  if (signature === undefined) signatures.set(key, (signature = signatureOf(parts) ?? null))
  return signature ?? undefined
}

function signatureOf(parts: ErrorParts): ExceptionSignature | undefined {
  const { message, stack } = parts
  const type = parts.type ?? (stack === undefined || stack.includes(PYTHON_TRACEBACK) ? undefined : typeFromStack(stack))
  if (type === undefined && message === undefined && stack === undefined) return undefined
  const frames = stack === undefined ? [] : significant(framesOf(stack))
  const keys = frames.map((f) => f.key)
  const hash = createHash('sha1')
  hash.update(type ?? '')
  hash.update('\n')
  hash.update(keys.join('\n'))
  hash.update('\n')
  hash.update(message === undefined ? '' : normalizeMessage(message))
  const signature: ExceptionSignature = {
    fingerprint: hash.digest('hex').slice(0, 16),
    frames: keys.slice(0, MAX_SHOWN_FRAMES),
  }
  if (type !== undefined) signature.type = type
  if (message !== undefined) signature.message = message
  return signature
}

export interface ExceptionHistoryOptions {
  /** Fingerprints remembered; beyond it the least recently seen is forgotten. Default 10,000. */
  maxSize?: number
  /** Forget a fingerprint not seen for this long. Default 30 days. */
  forgetAfter?: Millis
  /** A fingerprint quiet this long is a regression when it comes back. Default 24 hours. */
  regressionAfter?: Millis
}

const DAY = 86_400_000

/** Count, first and last sighting of each fingerprint; bounded (see SeenSet). */
export class ExceptionHistory {
  private readonly seen: SeenSet
  readonly regressionAfter: Millis

  constructor(opts: ExceptionHistoryOptions = {}) {
    this.seen = new SeenSet(opts.maxSize ?? 10_000, opts.forgetAfter ?? 30 * DAY)
    this.regressionAfter = opts.regressionAfter ?? DAY
  }

  get size(): number {
    return this.seen.size
  }

  /** Records one occurrence at `at` and returns the history as it now stands. */
  record(signature: ExceptionSignature, at: Millis): ExceptionInfo {
    const previous = this.seen.see(signature.fingerprint, at)
    return exceptionInfo(signature, this.seen.get(signature.fingerprint)!, at - previous >= this.regressionAfter)
  }

  prune(now: Millis): void {
    this.seen.prune(now)
  }

  export(): SeenRecord[] {
    return this.seen.export()
  }

  import(records: unknown): void {
    this.seen.import(records)
  }
}

/** Longest exception message an alert carries. */
const MAX_SHOWN_MESSAGE = 500

/** ExceptionInfo from a signature and its sighting statistics; the message redacted of secrets. */
export function exceptionInfo(signature: ExceptionSignature, stats: { first: Millis; last: Millis; count: number }, regression: boolean): ExceptionInfo {
  const info: ExceptionInfo = {
    fingerprint: signature.fingerprint,
    frames: signature.frames,
    count: stats.count,
    firstSeen: stats.first,
    lastSeen: stats.last,
    regression,
  }
  if (signature.type !== undefined) info.type = signature.type
  if (signature.message !== undefined) {
    const message = redactText(signature.message)
    info.message = message.length > MAX_SHOWN_MESSAGE ? message.slice(0, MAX_SHOWN_MESSAGE - 1) + '…' : message
  }
  return info
}
