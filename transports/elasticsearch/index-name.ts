/**
 * Which index a document goes to. `index` is either a plain name (an index or a data stream) or
 * carries a date pattern such as `%{+yyyy.MM.dd}` (Logstash's spelling, which users know) filled
 * from the entry's own @timestamp in UTC. Taking the date from the entry, not from the clock, is
 * what makes a replay land in the same index as the first attempt, so `create` with the same
 * `_id` answers 409 instead of writing a second copy next door.
 */
import { LwError } from '../../agent/errors'
import type { ElasticsearchConfig } from '../../agent/config/types'

/** Maps an entry's @timestamp (ISO 8601) to the index name. */
export type IndexNamer = (timestamp: string) => string

const DATE_PATTERN = /%\{\+([^}]*)\}/g
const HAS_DATE_PATTERN = /%\{\+[^}]*\}/
const TOKEN = /yyyy|MM|dd/g
/** What a date format may contain besides its tokens: separators only, so the name stays a valid index name. */
const LITERAL = /^[-._]*$/

/** True when `index` contains a `%{+...}` date pattern (daily, monthly or yearly indices). */
export function hasDatePattern(index: string): boolean {
  return HAS_DATE_PATTERN.test(index)
}

/** The index pattern a template must match: every date pattern replaced by `*`. */
export function indexWildcard(index: string): string {
  return index.replace(DATE_PATTERN, '*')
}

/**
 * Rejects `index` settings Elasticsearch would refuse later, one document at a time: a data
 * stream has one fixed name (its backing indices roll over by themselves).
 */
export function checkIndexConfig(cfg: Pick<ElasticsearchConfig, 'index' | 'data_stream'>): void {
  if (cfg.data_stream && hasDatePattern(cfg.index)) {
    throw new LwError('LW_CONFIG_CONFLICT',
      `elasticsearch.index: "${cfg.index}" has a date pattern but data_stream is true`,
      { hint: 'A data stream has one fixed name such as logs-myapp-default: remove the %{+...} part, or set data_stream: false for dated indices.' })
  }
}

type Part = string | ((y: string, m: string, d: string) => string)

function compileFormat(format: string, index: string): Part[] {
  const parts: Part[] = []
  let last = 0
  for (const match of format.matchAll(TOKEN)) {
    const literal = format.slice(last, match.index)
    if (!LITERAL.test(literal)) throw badPattern(index, format)
    if (literal) parts.push(literal)
    const token = match[0]
    parts.push(token === 'yyyy' ? (y) => y : token === 'MM' ? (_y, m) => m : (_y, _m, d) => d)
    last = (match.index ?? 0) + token.length
  }
  const tail = format.slice(last)
  if (!LITERAL.test(tail) || parts.length === 0) throw badPattern(index, format)
  if (tail) parts.push(tail)
  return parts
}

function badPattern(index: string, format: string): LwError {
  return new LwError('LW_CONFIG_VALUE',
    `elasticsearch.index: the date pattern %{+${format}} in "${index}" is not supported`,
    { hint: 'Use %{+yyyy.MM.dd}, %{+yyyy.MM} or %{+yyyy} (tokens yyyy, MM, dd separated by ".", "-" or "_").' })
}

/** A bound on the per-day cache so a replay of years of logs cannot grow it without limit. */
const CACHE_LIMIT = 4096

/**
 * Compiles `index` once into a function of the timestamp. A plain name returns a constant
 * function. A patterned name caches the result per UTC day, so the hot path is a slice and a
 * map lookup for the usual `...Z` timestamps.
 */
export function compileIndexName(index: string): IndexNamer {
  if (!hasDatePattern(index)) return () => index
  const parts: Part[] = []
  let last = 0
  for (const match of index.matchAll(DATE_PATTERN)) {
    if (match.index !== last) parts.push(index.slice(last, match.index))
    parts.push(...compileFormat(match[1] ?? '', index))
    last = (match.index ?? 0) + match[0].length
  }
  if (last < index.length) parts.push(index.slice(last))

  const render = (y: string, m: string, d: string): string => {
    let out = ''
    for (const part of parts) out += typeof part === 'string' ? part : part(y, m, d)
    return out
  }
  const cache = new Map<string, string>()
  return (timestamp: string): string => {
    const day = utcDay(timestamp)
    let name = cache.get(day)
    if (name === undefined) {
      if (cache.size >= CACHE_LIMIT) cache.clear()
      name = render(day.slice(0, 4), day.slice(5, 7), day.slice(8, 10))
      cache.set(day, name)
    }
    return name
  }
}

/** `YYYY-MM-DD` of a timestamp's instant in UTC. */
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T[^+]*Z$/

function utcDay(timestamp: string): string {
  // Fast path: an ISO timestamp already in UTC starts with its UTC date.
  if (ISO_UTC.test(timestamp)) return timestamp.slice(0, 10)
  const ms = Date.parse(timestamp)
  // An unreadable timestamp cannot choose a day; the time of sending is the only date left, and
  // Elasticsearch will reject such a document into the dead letters anyway (the @timestamp
  // field is mapped as a date), so the choice only decides where its rejection is recorded.
  return new Date(Number.isNaN(ms) ? Date.now() : ms).toISOString().slice(0, 10)
}
