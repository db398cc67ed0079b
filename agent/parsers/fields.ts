/**
 * Helpers the parsers share: whether a JSON object already has something at an ECS path, level
 * names, request targets, status codes. All of them run per line, so they allocate little.
 */

import type { FieldValue } from '../entry'

/**
 * One way to reach a dotted path in an object: `key` is a property name (itself possibly dotted,
 * as in `{"log.level": ...}`), `rest` the probes for the remainder of the path, null at its end.
 */
export interface PathProbe {
  key: string
  rest: PathProbe[] | null
}

/**
 * Every way of splitting `path` into property names: `a.b.c` may be stored as a→b→c, `a.b`→c,
 * a→`b.c` or `a.b.c`. Compiled once per path so the per-line check only reads properties.
 */
export function compilePath(path: string): PathProbe[] {
  const probes: PathProbe[] = []
  for (let dot = path.indexOf('.'); dot !== -1; dot = path.indexOf('.', dot + 1)) {
    probes.push({ key: path.slice(0, dot), rest: compilePath(path.slice(dot + 1)) })
  }
  probes.push({ key: path, rest: null })
  return probes
}

/**
 * True when `object` already has a value at the compiled path, or a value that is not a plain
 * object (a string, number, array, null) at a prefix of it. Either way a parser must not add the
 * path: the first would be a duplicate key in the document, the second a mapping conflict
 * (`"error": "boom"` beside a derived `"error.type"` makes Elasticsearch reject the document).
 */
export function probeTaken(object: Record<string, unknown>, probes: PathProbe[]): boolean {
  for (let i = 0; i < probes.length; i++) {
    const probe = probes[i]!
    const value = object[probe.key]
    if (value === undefined) continue
    if (probe.rest === null) return true
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return true
    if (probeTaken(value as Record<string, unknown>, probe.rest)) return true
  }
  return false
}

const compiled = new Map<string, PathProbe[]>()

/** probeTaken for a dotted path given as text (compiled on first use and kept). */
export function pathTaken(object: Record<string, unknown>, path: string): boolean {
  let probes = compiled.get(path)
  if (probes === undefined) {
    probes = compilePath(path)
    compiled.set(path, probes)
  }
  return probeTaken(object, probes)
}

/** A plain object (not an array, not null), as JSON.parse makes them. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Level names as loggers spell them (Python, syslog, Serilog, log4j, winston) to the ECS words. */
const LEVEL_NAMES = new Map<string, string>([
  ['trace', 'trace'],
  ['debug', 'debug'],
  ['info', 'info'],
  ['information', 'info'],
  ['informational', 'info'],
  ['notice', 'notice'],
  ['warn', 'warn'],
  ['warning', 'warn'],
  ['error', 'error'],
  ['err', 'error'],
  ['critical', 'critical'],
  ['crit', 'critical'],
  ['fatal', 'fatal'],
  ['alert', 'alert'],
  ['emerg', 'emergency'],
  ['emergency', 'emergency'],
])

/** pino/bunyan numeric levels, by tens: 10 trace … 60 fatal; custom levels fall in their band. */
const NUMERIC_LEVELS = ['trace', 'trace', 'debug', 'info', 'warn', 'error', 'fatal']

/** Longest unknown level name kept as it is (lowercased); longer text is not a level. */
const MAX_LEVEL_LENGTH = 32

/**
 * `log.level` for a logger's level value: pino numbers 10..60, names in any case with the common
 * aliases folded (WARNING → warn, err → error, crit → critical); other short names lowercased.
 */
export function normalizeLevel(value: unknown): string | undefined {
  if (typeof value === 'number') {
    if (!(value >= 0)) return undefined
    return NUMERIC_LEVELS[Math.min(Math.floor(value / 10), 6)]
  }
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LEVEL_LENGTH) return undefined
  const known = LEVEL_NAMES.get(value)
  if (known !== undefined) return known
  const lower = value.toLowerCase()
  return LEVEL_NAMES.get(lower) ?? lower
}

/** A request method: 1-20 uppercase letters (GET, PROPFIND); anything else is not a request line. */
export function isMethod(text: string): boolean {
  if (text.length === 0 || text.length > 20) return false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 65 || c > 90) return false
  }
  return true
}

/** An HTTP status code 100..599 from a number or a digit string, else undefined. */
export function statusCode(value: unknown): number | undefined {
  const code = typeof value === 'number' ? value : typeof value === 'string' && value.length === 3 ? Number(value) : NaN
  return Number.isInteger(code) && code >= 100 && code <= 599 ? code : undefined
}

/** A function that sets one field. */
export type FieldSetter = (fields: Record<string, FieldValue>, value: FieldValue) => void

/**
 * `(f, v) => { f[path] = v }` made for one path. In a shared function, a store whose key changes
 * from call to call, adding a property each time, goes V8's megamorphic way and searches the
 * object's transitions on every entry (3-4% of the agent's CPU, measured with perf); one function
 * per path sees the few shapes that path is added to and keeps their transitions in its inline
 * cache. The path goes in as a JSON string literal: only a property name reaches the code.
 */
export function setterOf(path: string): FieldSetter {
  return new Function('f', 'v', `f[${JSON.stringify(path)}] = v`) as FieldSetter
}

const URL_ORIGINAL = setterOf('url.original')
const URL_SCHEME = setterOf('url.scheme')
const URL_DOMAIN = setterOf('url.domain')
const URL_PATH = setterOf('url.path')
const URL_QUERY = setterOf('url.query')

/** Sets a field with `set` unless `existing` (the original JSON object, if any) already has `path`. */
function put(fields: Record<string, FieldValue>, existing: Record<string, unknown> | undefined, path: string, set: FieldSetter, value: FieldValue): void {
  if (existing === undefined || !pathTaken(existing, path)) set(fields, value)
}

/**
 * Sets `url.original` and, for a path (`/a?b=1`) or an absolute URL (a proxy's request line),
 * `url.path` and `url.query` (without the `?`); absolute URLs also give `url.scheme` and
 * `url.domain`. Other targets (CONNECT's `host:443`, OPTIONS' `*`) keep only `url.original`.
 * With `existing`, paths that object already has are left out (see probeTaken).
 */
export function setUrlFields(fields: Record<string, FieldValue>, target: string, existing?: Record<string, unknown>): void {
  put(fields, existing, 'url.original', URL_ORIGINAL, target)
  let pathStart = 0
  if (target.charCodeAt(0) !== 47) { // not '/'
    const scheme = target.indexOf('://')
    if (scheme <= 0) return
    const hostStart = scheme + 3
    let hostEnd = hostStart
    while (hostEnd < target.length) {
      const c = target.charCodeAt(hostEnd)
      if (c === 47 || c === 63 || c === 35) break // / ? #
      hostEnd++
    }
    put(fields, existing, 'url.scheme', URL_SCHEME, target.slice(0, scheme).toLowerCase())
    const at = target.lastIndexOf('@', hostEnd)
    const authority = target.slice(at >= hostStart ? at + 1 : hostStart, hostEnd)
    // [v6]:port keeps its colons inside the brackets.
    const port = authority.charCodeAt(0) === 91 ? authority.indexOf(':', authority.indexOf(']')) : authority.indexOf(':')
    const domain = port === -1 ? authority : authority.slice(0, port)
    if (domain.length > 0) put(fields, existing, 'url.domain', URL_DOMAIN, domain.charCodeAt(0) === 91 ? domain.slice(1, -1) : domain)
    if (hostEnd === target.length || target.charCodeAt(hostEnd) !== 47) return
    pathStart = hostEnd
  }
  let end = target.indexOf('#', pathStart)
  if (end === -1) end = target.length
  const question = target.indexOf('?', pathStart)
  if (question === -1 || question > end) {
    put(fields, existing, 'url.path', URL_PATH, pathStart === 0 && end === target.length ? target : target.slice(pathStart, end))
    return
  }
  put(fields, existing, 'url.path', URL_PATH, target.slice(pathStart, question))
  if (end > question + 1) put(fields, existing, 'url.query', URL_QUERY, target.slice(question + 1, end))
}
