/**
 * How a rule reads a field of an entry, and the ECS field names a rule author is likely to mean.
 *
 * A path is looked up in `entry.fields` (the flat ECS fields the parser derived) first, then in
 * `entry.object` (the original JSON line), where `a.b.c` may be stored nested, under dotted keys,
 * or any mix (`{"http": {"response.status_code": 500}}`). Each path is compiled once into an
 * accessor, so the per-entry work is a few property reads.
 */
import type { Entry } from '../agent/entry'
import { compilePath, type PathProbe } from '../agent/parsers/fields'
import { editDistance } from '../agent/config/suggest'

/** Reads one field of an entry: whatever is stored there (a string, number, boolean, array, null, object), undefined when absent. */
export type FieldAccessor = (entry: Entry) => unknown

const hasOwn = Object.prototype.hasOwnProperty

/**
 * Names such as `constructor` or `toString` would otherwise be found on every object's prototype;
 * only for those is the slower own-property check paid.
 */
function inherited(key: string): boolean {
  return key in Object.prototype
}

export interface Probe {
  key: string
  guarded: boolean
  rest: Probe[] | null
}

function guard(probes: PathProbe[]): Probe[] {
  return probes.map((p) => ({ key: p.key, guarded: inherited(p.key), rest: p.rest === null ? null : guard(p.rest) }))
}

/** The value at a path in a JSON object, looked for every way `probes` lists (see compilePath); undefined when absent. */
export function probeValue(object: Record<string, unknown>, probes: Probe[]): unknown {
  for (let i = 0; i < probes.length; i++) {
    const probe = probes[i]!
    const value = object[probe.key]
    if (value === undefined || (probe.guarded && !hasOwn.call(object, probe.key))) continue
    if (probe.rest === null) return value
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const found = probeValue(value as Record<string, unknown>, probe.rest)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/** The last object looked at, and whether it has a dotted key at its top level. */
let flatObject: Record<string, unknown> | undefined
let flatAnswer = false

/**
 * True when no top-level key of `object` is dotted. Then a path can only be found under its
 * first name: a field the object lacks (most fields a rule asks about) costs one property read
 * instead of one per way of splitting the path. Worked out once per entry.
 */
export function topLevelFlat(object: Record<string, unknown>): boolean {
  if (object === flatObject) return flatAnswer
  let flat = true
  for (const key in object) {
    if (key.indexOf('.') !== -1) {
      flat = false
      break
    }
  }
  flatObject = object
  flatAnswer = flat
  return flat
}

/**
 * `(o) => o[key]` made for one key. In one shared function, a read whose key changes from call to
 * call goes the engine's slow, generic way (most reads of a rule are of fields an entry lacks);
 * one function per key sees only the few object shapes that key meets and answers from its
 * inline cache: measured, a third less time per field read. The key goes in as a JSON string
 * literal, so nothing but a property name can reach the generated code.
 */
function readerOf(key: string): (o: Record<string, unknown>) => unknown {
  return new Function('o', `return o[${JSON.stringify(key)}]`) as (o: Record<string, unknown>) => unknown
}

/** What reading a path takes: the steps of an accessor, for code that writes them out (rules/rule-index.ts). */
export interface FieldRead {
  /** The path's first name: a JSON object without it (and without dotted keys) cannot hold the path. */
  root: string
  /** A name Object.prototype has (`constructor`): found only by an own-property check. */
  guarded: boolean
  /** Where the path may be in `entry.object` (for probeValue). */
  probes: Probe[]
}

export function fieldRead(path: string): FieldRead {
  const dot = path.indexOf('.')
  return { root: dot === -1 ? path : path.slice(0, dot), guarded: inherited(path), probes: guard(compilePath(path)) }
}

function makeAccessor(path: string): FieldAccessor {
  const { root, guarded, probes } = fieldRead(path)
  // Many rules read the same field of the same entry (the security pack reads url.path a dozen
  // times): the accessor remembers its last answer, so the walk happens once per entry.
  let lastEntry: Entry | undefined
  let lastValue: unknown
  const own = readerOf(path)
  const first = readerOf(root)
  return (entry: Entry): unknown => {
    if (entry === lastEntry) return lastValue
    const fields = entry.fields
    let value: unknown = own(fields)
    if (value === undefined || (guarded && !hasOwn.call(fields, path))) {
      const object = entry.object
      value = object === undefined || (first(object) === undefined && (entry.flat === true || topLevelFlat(object))) ? undefined : probeValue(object, probes)
      // Last, the fields every entry of its source carries (service.name, host.name, log.file.path, ...).
      const source = entry.source
      if (value === undefined && source !== undefined) value = guarded ? (hasOwn.call(source, path) ? source[path] : undefined) : own(source)
    }
    lastEntry = entry
    lastValue = value
    return value
  }
}

const accessors = new Map<string, FieldAccessor>()

/** The accessor for `path`, compiled on first use and shared by every condition that reads it. */
export function compileField(path: string): FieldAccessor {
  let accessor = accessors.get(path)
  if (accessor === undefined) {
    accessor = makeAccessor(path)
    accessors.set(path, accessor)
  }
  return accessor
}

/** The value at `path` in `entry` (entry.fields first, then entry.object), undefined when absent. */
export function fieldOf(entry: Entry, path: string): unknown {
  return compileField(path)(entry)
}

// ── percent- and plus-decoding ───────────────────────────────────────────────────────────────

/** Enough passes to undo double and triple encoding (`%252527`), few enough to bound the work. */
const DECODE_PASSES = 3

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 65 && c <= 70) return c - 55
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

/** Length of the UTF-8 sequence a lead byte starts, 0 for a byte that cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1
  if (lead >= 0xc2 && lead <= 0xdf) return 2
  if (lead >= 0xe0 && lead <= 0xef) return 3
  if (lead >= 0xf0 && lead <= 0xf4) return 4
  return 0
}

/**
 * One pass: `+` becomes a space and each `%XX` its byte, bytes read as UTF-8. What does not
 * decode stays as written: `%zz`, a lone `%`, and `%XX` runs that are not valid UTF-8 (such as the
 * overlong `%c0%af` scanners use for `/`), so a rule can still look for them.
 */
function decodeOnce(text: string): string {
  let out = ''
  let copied = 0
  const bytes: number[] = []
  const sources: number[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 43) { // '+'
      out += text.slice(copied, i) + ' '
      copied = i + 1
      continue
    }
    if (c !== 37) continue // '%'
    // A run of %XX escapes is decoded together: a multi-byte character spans several.
    let j = i
    bytes.length = 0
    sources.length = 0
    while (j + 2 < text.length && text.charCodeAt(j) === 37) {
      const high = hexValue(text.charCodeAt(j + 1))
      const low = hexValue(text.charCodeAt(j + 2))
      if (high < 0 || low < 0) break
      bytes.push(high * 16 + low)
      sources.push(j)
      j += 3
    }
    if (bytes.length === 0) continue
    out += text.slice(copied, i) + decodeBytes(bytes, sources, text)
    copied = j
    i = j - 1
  }
  return copied === 0 ? text : out + text.slice(copied)
}

function decodeBytes(bytes: number[], sources: number[], text: string): string {
  let out = ''
  for (let k = 0; k < bytes.length;) {
    const length = sequenceLength(bytes[k]!)
    if (length === 1) {
      out += String.fromCharCode(bytes[k]!)
      k++
      continue
    }
    if (length > 0 && k + length <= bytes.length) {
      try {
        out += strictUtf8.decode(Uint8Array.from(bytes.slice(k, k + length)))
        k += length
        continue
      } catch {
        // not valid UTF-8: kept as written below
      }
    }
    out += text.slice(sources[k]!, sources[k]! + 3)
    k++
  }
  return out
}

/**
 * Percent- and plus-decodes `value`, again on the result while it still changes, at most three
 * times: `%2527` (a double-encoded quote) becomes `'`. Text with no `%` or `+` is returned as it is,
 * without copying.
 */
/** The last few decodings: rules decode the same few fields (path, query, user agent, referrer) of an entry again and again. */
const MEMO = 4
const memoRaw: string[] = new Array<string>(MEMO).fill('')
const memoDecoded: string[] = new Array<string>(MEMO).fill('')
let memoNext = 0

export function decodeUrl(value: string): string {
  for (let i = 0; i < MEMO; i++) if (memoRaw[i] === value) return memoDecoded[i]!
  const decoded = decodeUrlOnce(value)
  memoRaw[memoNext] = value
  memoDecoded[memoNext] = decoded
  memoNext = (memoNext + 1) % MEMO
  return decoded
}

function decodeUrlOnce(value: string): string {
  let text = value
  for (let pass = 0; pass < DECODE_PASSES; pass++) {
    if (text.indexOf('%') === -1 && text.indexOf('+') === -1) break
    const next = decodeOnce(text)
    if (next === text) break
    text = next
  }
  return text
}

// ── known ECS field names, for "did you mean" ────────────────────────────────────────────────

/**
 * ECS fields a log rule may test (the field sets that describe logs, requests, errors and who
 * sent them), plus the fields logwarden itself adds. Not the whole of ECS: only names in these
 * field sets are checked, so a field of the application's own (`req.method`, `order.total`) is
 * never questioned.
 */
const ECS_FIELDS: readonly string[] = [
  '@timestamp', 'message', 'tags', 'labels',
  'agent.name', 'agent.type', 'agent.version', 'agent.id',
  'client.address', 'client.ip', 'client.port', 'client.domain', 'client.bytes', 'client.geo.country_iso_code',
  'client.geo.city_name', 'client.user.name', 'client.user.id',
  'cloud.provider', 'cloud.region', 'cloud.availability_zone', 'cloud.account.id', 'cloud.instance.id',
  'container.id', 'container.name', 'container.image.name', 'container.runtime',
  'destination.address', 'destination.ip', 'destination.port', 'destination.domain', 'destination.bytes',
  'ecs.version',
  'error.code', 'error.id', 'error.message', 'error.stack_trace', 'error.type', 'error.fingerprint',
  'event.action', 'event.category', 'event.code', 'event.created', 'event.dataset', 'event.duration', 'event.end',
  'event.id', 'event.ingested', 'event.kind', 'event.module', 'event.original', 'event.outcome', 'event.provider',
  'event.reason', 'event.severity', 'event.start', 'event.type', 'event.timezone',
  'file.path', 'file.name', 'file.size', 'file.extension', 'file.directory',
  'host.name', 'host.hostname', 'host.ip', 'host.id', 'host.architecture', 'host.os.name', 'host.os.version',
  'host.os.platform', 'host.os.family', 'host.os.kernel',
  'http.request.method', 'http.request.referrer', 'http.request.id', 'http.request.bytes', 'http.request.body.bytes',
  'http.request.body.content', 'http.request.mime_type', 'http.response.status_code', 'http.response.bytes',
  'http.response.body.bytes', 'http.response.body.content', 'http.response.mime_type', 'http.version',
  'log.level', 'log.logger', 'log.file.path', 'log.offset', 'log.flags', 'log.origin.file.name',
  'log.origin.file.line', 'log.origin.function', 'log.syslog.facility.name', 'log.syslog.severity.name',
  'network.protocol', 'network.transport', 'network.type', 'network.direction', 'network.bytes',
  'observer.name', 'observer.hostname', 'observer.type', 'observer.vendor',
  'organization.id', 'organization.name',
  'process.pid', 'process.name', 'process.title', 'process.executable', 'process.args', 'process.command_line',
  'process.exit_code', 'process.thread.id', 'process.thread.name', 'process.parent.pid',
  'server.address', 'server.ip', 'server.port', 'server.domain', 'server.bytes',
  'service.name', 'service.environment', 'service.version', 'service.id', 'service.type', 'service.node.name',
  'source.address', 'source.ip', 'source.port', 'source.domain', 'source.bytes',
  'span.id', 'trace.id', 'transaction.id',
  'url.original', 'url.full', 'url.path', 'url.query', 'url.domain', 'url.scheme', 'url.port', 'url.fragment',
  'url.username', 'url.password', 'url.extension', 'url.registered_domain', 'url.top_level_domain', 'url.subdomain',
  'user.name', 'user.id', 'user.email', 'user.full_name', 'user.domain', 'user.roles', 'user.hash',
  'user_agent.original', 'user_agent.name', 'user_agent.version', 'user_agent.device.name', 'user_agent.os.name',
  'user_agent.os.version', 'user_agent.os.full',
]

const KNOWN = new Set(ECS_FIELDS)
const FIELD_SETS = new Set(ECS_FIELDS.filter((f) => f.includes('.')).map((f) => f.slice(0, f.indexOf('.'))))
const TOP_LEVEL = ECS_FIELDS.filter((f) => !f.includes('.'))

/** Edits that still look like a typo of a field name rather than a different field. */
const MAX_FIELD_EDITS = 2

/**
 * The ECS field `path` was probably meant to be, when `path` is not one but sits in an ECS field
 * set (`http.response.status_cod`, `url.pth`, `mesage`) close to one that is. `labels.*` is free.
 */
export function suggestField(path: string): string | undefined {
  if (KNOWN.has(path)) return undefined
  const dot = path.indexOf('.')
  const top = dot === -1 ? path : path.slice(0, dot)
  if (top === 'labels' || top === 'tags') return undefined
  const candidates = dot === -1 ? TOP_LEVEL : FIELD_SETS.has(top) ? ECS_FIELDS : undefined
  if (candidates === undefined) return undefined
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(path, candidate)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  if (best !== undefined && bestDistance <= MAX_FIELD_EDITS && bestDistance < path.length / 2) return best
  // The last word cut short: `http.response.status` for `http.response.status_code`.
  const longer = ECS_FIELDS.filter((f) => f.startsWith(path + '_'))
  return longer.length === 1 ? longer[0] : undefined
}
