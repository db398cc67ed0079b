/**
 * Timestamps: wall-clock times in an IANA zone to UTC, ISO-8601 parsing and formatting, epoch
 * numbers. Runs once per log line, so it avoids Date parsing and Intl on the hot path: the offset
 * of a zone is looked up with Intl once per 15-minute bucket and cached, ISO strings are parsed
 * by hand, and formatting reuses the text of the last second.
 */

const MINUTE_MS = 60_000
const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000
/**
 * Offsets are cached per quarter hour of UTC time rather than per hour: zones with :30 and :45
 * offsets (Newfoundland, Nepal, Lord Howe) change offset on half- and quarter-hour UTC instants.
 */
const BUCKET_MS = 15 * MINUTE_MS
/** A zone's cache is dropped past this many buckets (about three years of quarter hours). */
const MAX_BUCKETS_PER_ZONE = 100_000
/** The latest instant ISO-8601 with a four-digit year can express (9999-12-31T23:59:59.999Z). */
const MAX_MS = 253_402_300_799_999

interface ZoneInfo {
  /** undefined for UTC and its aliases: the offset is always 0. */
  format: Intl.DateTimeFormat | undefined
  offsets: Map<number, number>
}

const zones = new Map<string, ZoneInfo | null>()
const UTC_NAMES = new Set(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT', 'Z', 'Zulu', 'Etc/Zulu', 'UCT', 'Etc/UCT', 'Universal', 'Etc/Universal'])

/** The zone's cache entry, or null when the name is not a zone this runtime knows. */
function zoneInfo(zone: string): ZoneInfo | null {
  let info = zones.get(zone)
  if (info !== undefined) return info
  if (UTC_NAMES.has(zone)) {
    info = { format: undefined, offsets: new Map() }
  } else {
    try {
      info = {
        format: new Intl.DateTimeFormat('en-US', {
          timeZone: zone,
          hourCycle: 'h23',
          year: 'numeric',
          month: 'numeric',
          day: 'numeric',
          hour: 'numeric',
          minute: 'numeric',
          second: 'numeric',
        }),
        offsets: new Map(),
      }
    } catch {
      info = null
    }
  }
  zones.set(zone, info)
  return info
}

/** True when `zone` is an IANA time zone name (or UTC) that timestamps can be interpreted in. */
export function isValidTimeZone(zone: string): boolean {
  return zone.length > 0 && zoneInfo(zone) !== null
}

function offsetFromIntl(format: Intl.DateTimeFormat, utcMs: number): number {
  let year = 0
  let month = 0
  let day = 0
  let hour = 0
  let minute = 0
  let second = 0
  for (const part of format.formatToParts(utcMs)) {
    switch (part.type) {
      case 'year': year = Number(part.value); break
      case 'month': month = Number(part.value); break
      case 'day': day = Number(part.value); break
      case 'hour': hour = Number(part.value); break
      case 'minute': minute = Number(part.value); break
      case 'second': second = Number(part.value); break
      default: break
    }
  }
  return Date.UTC(year, month - 1, day, hour, minute, second) - utcMs
}

function offsetOf(info: ZoneInfo, utcMs: number): number {
  if (info.format === undefined) return 0
  const bucket = Math.floor(utcMs / BUCKET_MS)
  let offset = info.offsets.get(bucket)
  if (offset === undefined) {
    offset = offsetFromIntl(info.format, bucket * BUCKET_MS)
    if (info.offsets.size >= MAX_BUCKETS_PER_ZONE) info.offsets.clear()
    info.offsets.set(bucket, offset)
  }
  return offset
}

/** The zone's offset from UTC (local minus UTC, ms) at instant `utcMs`; NaN for an unknown zone. */
export function zoneOffsetMs(zone: string, utcMs: number): number {
  const info = zoneInfo(zone)
  return info === null ? NaN : offsetOf(info, utcMs)
}

/**
 * The UTC instant of a wall-clock time in `zone` (month 1-12). A time that occurs twice (the hour
 * repeated when clocks go back) is the earlier instant; a time skipped when clocks go forward is
 * moved forward by the gap. This is what `Temporal` calls "compatible" and what people expect
 * from a log written around a DST change. NaN for an unknown zone.
 */
export function wallTimeToUtcMs(
  zone: string, year: number, month: number, day: number,
  hour: number, minute: number, second: number, ms: number,
): number {
  const info = zoneInfo(zone)
  if (info === null) return NaN
  const wall = Date.UTC(year, month - 1, day, hour, minute, second, ms)
  if (info.format === undefined) return wall
  // Offsets a day either side bracket any transition near this wall time; when they agree (all
  // but a few hours a year) no further lookups are needed.
  const before = offsetOf(info, wall - DAY_MS)
  const after = offsetOf(info, wall + DAY_MS)
  if (before === after) return wall - before
  const early = wall - before
  const late = wall - after
  const earlyValid = offsetOf(info, early) === before
  const lateValid = offsetOf(info, late) === after
  if (earlyValid && lateValid) return Math.min(early, late)
  if (earlyValid) return early
  if (lateValid) return late
  return early
}

// --- formatting ---------------------------------------------------------------------------

const PAD2: string[] = []
for (let i = 0; i < 100; i++) PAD2.push(i < 10 ? '0' + i : String(i))
const MILLIS_Z: string[] = []
for (let i = 0; i < 1000; i++) MILLIS_Z.push(String(i).padStart(3, '0') + 'Z')

/** The text of the last formatted second and day: consecutive log lines share them. */
let daySince = NaN
let dayText = ''
let secondSince = NaN
let secondText = ''

/**
 * `2015-05-17T10:05:03.000Z` for an epoch-ms instant in 1970..9999, else undefined. About 20x
 * cheaper than `Date#toISOString`, which matters once per line.
 */
export function formatIso(ms: number): string | undefined {
  if (!(ms >= 0 && ms <= MAX_MS)) return undefined
  ms = Math.floor(ms)
  const millis = ms % 1000
  const second = ms - millis
  if (second !== secondSince) {
    if (!(second >= daySince && second < daySince + DAY_MS)) {
      daySince = second - (second % DAY_MS)
      dayText = new Date(daySince).toISOString().slice(0, 11)
    }
    const s = (second - daySince) / 1000
    secondSince = second
    secondText = dayText + PAD2[(s / 3600) | 0] + ':' + PAD2[((s % 3600) / 60) | 0] + ':' + PAD2[s % 60] + '.'
  }
  const text = secondText + MILLIS_Z[millis]!
  recentText[millis] = text
  recentMs[millis] = ms
  return text
}

/**
 * The last text formatIso made for each millisecond of a second, and its instant: the rules read
 * an entry's @timestamp back as a number (a chunk's stamps after the whole chunk was parsed), and
 * need not parse it again.
 */
const recentText: string[] = new Array<string>(1000).fill('')
const recentMs = new Float64Array(1000)

// --- parsing ------------------------------------------------------------------------------

/**
 * Epoch number to ms, guessing the unit from the magnitude: seconds up to 1e11 (year 5138),
 * then milliseconds, microseconds, nanoseconds. Loggers use all four (pino ms, zap/structlog s,
 * Go µs/ns); in the ranges a log can have they do not overlap.
 */
export function epochToMs(value: number): number {
  if (!(value >= 0)) return NaN
  if (value < 1e11) return Math.round(value * 1000)
  if (value < 1e14) return value
  if (value < 1e17) return value / 1000
  return value / 1e6
}

function digit(text: string, i: number): number {
  const c = text.charCodeAt(i) - 48
  return c >= 0 && c <= 9 ? c : -1
}

/** Two digits at i as a number, or -1. */
function two(text: string, i: number): number {
  const a = digit(text, i)
  const b = digit(text, i + 1)
  return a < 0 || b < 0 ? -1 : a * 10 + b
}

const DAYS_IN_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * Whether the fields make a real date and time (Feb 29 only in leap years) from 1970 on: no log is
 * older, and Date.UTC would read years 0-99 as 1900-1999.
 */
function validDateTime(year: number, month: number, day: number, hour: number, minute: number, second: number): boolean {
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month]! || hour > 23 || minute > 59 || second > 59) return false
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return false
  return true
}

/**
 * Parses `[+-]HH[:MM]`, `[+-]HHMM`, `Z` at `i` to the end of `text`: the offset in ms (local
 * minus UTC), or NaN when the rest is not exactly a zone designator.
 */
function parseOffset(text: string, i: number): number {
  const n = text.length - i
  const c = text.charCodeAt(i)
  if ((c === 90 || c === 122) && n === 1) return 0 // Z z
  if (c !== 43 && c !== 45 && c !== 0x2212) return NaN // + - and the minus sign U+2212
  const hours = two(text, i + 1)
  let minutes = 0
  if (n === 3) minutes = 0
  else if (n === 5) minutes = two(text, i + 3)
  else if (n === 6 && text.charCodeAt(i + 3) === 58) minutes = two(text, i + 4)
  else return NaN
  if (hours < 0 || hours > 18 || minutes < 0 || minutes > 59) return NaN
  const offset = hours * HOUR_MS + minutes * MINUTE_MS
  return c === 43 ? offset : -offset
}

/**
 * Parses `YYYY-MM-DD[T ]HH:MM[:SS[(.|,)fraction]][ ][zone]` (the whole of `text`) to
 * epoch ms. Without a zone the time is a wall-clock time in `zone`. Covers ISO-8601 / RFC 3339,
 * Python's asctime (`2024-01-05 12:00:00,123`) and gunicorn's `2024-01-05 12:00:00 +0000`. NaN when
 * the text is anything else.
 */
export function parseIsoLike(text: string, zone: string): number {
  if (text.length === 24) {
    const millis = digit(text, 20) * 100 + digit(text, 21) * 10 + digit(text, 22)
    // Equal text is the same instant, whichever string object holds it.
    if (millis >= 0 && text === recentText[millis]) return recentMs[millis]!
  }
  const n = text.length
  if (n < 16) return NaN
  const y1 = two(text, 0)
  const y2 = two(text, 2)
  if (y1 < 0 || y2 < 0 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return NaN
  const sep = text.charCodeAt(10)
  if (sep !== 84 && sep !== 32 && sep !== 116) return NaN // T, space, t
  if (text.charCodeAt(13) !== 58) return NaN
  const year = y1 * 100 + y2
  const month = two(text, 5)
  const day = two(text, 8)
  const hour = two(text, 11)
  const minute = two(text, 14)
  let second = 0
  let millis = 0
  let i = 16
  if (i < n && text.charCodeAt(i) === 58) {
    second = two(text, i + 1)
    i += 3
    const c = text.charCodeAt(i)
    if (i < n && (c === 46 || c === 44)) { // . ,
      i++
      const fractionStart = i
      let scale = 100
      while (i < n) {
        const d = digit(text, i)
        if (d < 0) break
        millis += d * scale
        scale /= 10
        i++
      }
      if (i === fractionStart) return NaN
      millis = Math.floor(millis)
    }
  }
  if (month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return NaN
  if (!validDateTime(year, month, day, hour, minute, second)) return NaN
  if (i < n && text.charCodeAt(i) === 32) i++
  if (i === n) return wallTimeToUtcMs(zone, year, month, day, hour, minute, second, millis)
  const offset = parseOffset(text, i)
  if (Number.isNaN(offset)) return NaN
  return Date.UTC(year, month - 1, day, hour, minute, second, millis) - offset
}

/** For a string parseIsoLike accepted: true when it has exactly the shape `YYYY-MM-DDTHH:MM:SS.mmmZ`. */
function isCanonicalIso(text: string): boolean {
  return text.length === 24 && text.charCodeAt(23) === 90 && text.charCodeAt(10) === 84 && text.charCodeAt(19) === 46 && digit(text, 22) >= 0
}

/**
 * A log's time value (a number or string, as JSON loggers write it) as `@timestamp` text, or
 * undefined when it is not a time. Numbers and digit-only strings are epochs; other strings are
 * ISO-like, zone-less ones read in `zone`.
 */
export function timestampFrom(value: unknown, zone: string): string | undefined {
  if (typeof value === 'number') return formatIso(epochToMs(value))
  if (typeof value !== 'string') return undefined
  const ms = parseIsoLike(value, zone)
  if (!Number.isNaN(ms)) {
    // Already canonical (ECS loggers, pino isoTime, most JS): keep the string, no formatting.
    return isCanonicalIso(value) ? value : formatIso(ms)
  }
  if (value.length > 0 && value.length <= 20 && digit(value, 0) >= 0) {
    const number = Number(value)
    if (!Number.isNaN(number)) return formatIso(epochToMs(number))
  }
  return undefined
}

/** Month abbreviations keyed by their three character codes packed in a number: no substring per line. */
const MONTHS = new Map<number, number>()
;['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].forEach((name, i) => {
  MONTHS.set(name.charCodeAt(0) * 0x10000 + name.charCodeAt(1) * 0x100 + name.charCodeAt(2), i + 1)
})

/**
 * Common Log Format time, `17/May/2015:10:05:03 +0000` (Apache `%t`, nginx `$time_local`), to
 * epoch ms; NaN for anything else. It always carries its zone.
 */
export function parseClfTime(text: string): number {
  if (text.length !== 26 || text.charCodeAt(2) !== 47 || text.charCodeAt(6) !== 47 || text.charCodeAt(11) !== 58 ||
      text.charCodeAt(14) !== 58 || text.charCodeAt(17) !== 58 || text.charCodeAt(20) !== 32) return NaN
  const day = two(text, 0)
  const month = MONTHS.get(text.charCodeAt(3) * 0x10000 + text.charCodeAt(4) * 0x100 + text.charCodeAt(5))
  const y1 = two(text, 7)
  const y2 = two(text, 9)
  const hour = two(text, 12)
  const minute = two(text, 15)
  const second = two(text, 18)
  if (month === undefined || day < 0 || y1 < 0 || y2 < 0 || hour < 0 || minute < 0 || second < 0) return NaN
  const year = y1 * 100 + y2
  if (!validDateTime(year, month, day, hour, minute, second)) return NaN
  const offset = parseOffset(text, 21)
  if (Number.isNaN(offset)) return NaN
  return Date.UTC(year, month - 1, day, hour, minute, second) - offset
}
