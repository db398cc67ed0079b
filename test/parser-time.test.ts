/**
 * Timestamps: wall-clock times in IANA zones to UTC (DST gaps and overlaps, :30 and :45
 * offsets), ISO-8601 and CLF parsing, epoch units, and the fast ISO formatter.
 */
import t from 'tap'
import {
  epochToMs, formatIso, isValidTimeZone, parseClfTime, parseIsoLike, timestampFrom, wallTimeToUtcMs, zoneOffsetMs,
} from '../agent/parsers/time'

const iso = (ms: number): string => new Date(ms).toISOString()

t.test('isValidTimeZone', async (t) => {
  for (const zone of ['UTC', 'Etc/UTC', 'GMT', 'Europe/Moscow', 'America/New_York', 'Asia/Kathmandu', 'Etc/GMT+3']) {
    t.ok(isValidTimeZone(zone), zone)
  }
  for (const zone of ['', 'Mars/Olympus', 'Europe/Mosco', 'UTC+3', '+03:00']) t.notOk(isValidTimeZone(zone), JSON.stringify(zone))
})

t.test('an unknown zone gives NaN, not an exception', async (t) => {
  t.ok(Number.isNaN(wallTimeToUtcMs('Mars/Olympus', 2024, 1, 5, 12, 0, 0, 0)))
  t.ok(Number.isNaN(zoneOffsetMs('Mars/Olympus', 0)))
  t.ok(Number.isNaN(parseIsoLike('2024-01-05 12:00:00', 'Mars/Olympus')))
  t.equal(parseIsoLike('2024-01-05T12:00:00Z', 'Mars/Olympus'), Date.UTC(2024, 0, 5, 12), 'a time with its own zone needs none')
})

t.test('wall-clock times in zones', async (t) => {
  const utc = (zone: string, y: number, mo: number, d: number, h: number, mi: number, s = 0): string =>
    iso(wallTimeToUtcMs(zone, y, mo, d, h, mi, s, 0))
  t.equal(utc('UTC', 2024, 1, 5, 12, 0), '2024-01-05T12:00:00.000Z')
  t.equal(utc('Europe/Moscow', 2024, 1, 5, 15, 0), '2024-01-05T12:00:00.000Z')
  t.equal(utc('Asia/Kathmandu', 2024, 1, 5, 17, 45), '2024-01-05T12:00:00.000Z', '+05:45')
  t.equal(utc('America/New_York', 2024, 1, 5, 7, 0), '2024-01-05T12:00:00.000Z', 'EST')
  t.equal(utc('America/New_York', 2024, 7, 5, 8, 0), '2024-07-05T12:00:00.000Z', 'EDT')
  // New York springs forward at 02:00 on 2024-03-10: 02:00-02:59 does not exist.
  t.equal(utc('America/New_York', 2024, 3, 10, 1, 59, 59), '2024-03-10T06:59:59.000Z')
  t.equal(utc('America/New_York', 2024, 3, 10, 2, 30), '2024-03-10T07:30:00.000Z', 'a skipped time moves forward')
  t.equal(utc('America/New_York', 2024, 3, 10, 3, 0), '2024-03-10T07:00:00.000Z')
  // ...and falls back at 02:00 on 2024-11-03: 01:00-01:59 happens twice.
  t.equal(utc('America/New_York', 2024, 11, 3, 1, 30), '2024-11-03T05:30:00.000Z', 'a repeated time is the earlier one')
  t.equal(utc('America/New_York', 2024, 11, 3, 2, 0), '2024-11-03T07:00:00.000Z')
  t.equal(utc('Europe/Berlin', 2024, 3, 31, 2, 30), '2024-03-31T01:30:00.000Z')
  t.equal(utc('Europe/Berlin', 2024, 10, 27, 2, 30), '2024-10-27T00:30:00.000Z')
  // St John's changes at 02:00 local = 05:30 UTC: a bucket by UTC hour would straddle it.
  t.equal(utc('America/St_Johns', 2024, 3, 10, 1, 59), '2024-03-10T05:29:00.000Z')
  t.equal(utc('America/St_Johns', 2024, 3, 10, 3, 0), '2024-03-10T05:30:00.000Z')
  // Lord Howe moves by 30 minutes: 01:30-01:59 on 2024-04-07 happens twice (+11:00, then +10:30).
  t.equal(utc('Australia/Lord_Howe', 2024, 4, 7, 1, 45), '2024-04-06T14:45:00.000Z')
  t.equal(utc('Australia/Lord_Howe', 2024, 4, 7, 2, 0), '2024-04-06T15:30:00.000Z')
})

t.test('round trip: instant → wall time in the zone → instant', async (t) => {
  const zones = ['America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'America/St_Johns', 'Asia/Kathmandu', 'Australia/Sydney', 'America/Sao_Paulo']
  let seed = 12345
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  const problems: string[] = []
  for (const zone of zones) {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    })
    const wall = (ms: number): number[] => {
      const p = Object.fromEntries(parts.formatToParts(ms).map((x) => [x.type, Number(x.value)]))
      return [p['year']!, p['month']!, p['day']!, p['hour']!, p['minute']!, p['second']!]
    }
    for (let i = 0; i < 600; i++) {
      const instant = Math.floor(Date.UTC(2000, 0, 1) + random() * 30 * 365 * 86_400_000 / 1000) * 1000
      const w = wall(instant)
      const back = wallTimeToUtcMs(zone, w[0]!, w[1]!, w[2]!, w[3]!, w[4]!, w[5]!, 0)
      // Equal, or (in a repeated hour) the earlier instant with the same wall time.
      const ok = back === instant || (back < instant && instant - back <= 3_600_000 && wall(back).join() === w.join())
      if (!ok) problems.push(`${zone} ${iso(instant)} -> ${iso(back)}`)
    }
  }
  t.same(problems, [])
})

t.test('formatIso matches Date#toISOString', async (t) => {
  const values = [0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 1_704_456_000_123, 253_402_300_799_999]
  let seed = 99
  for (let i = 0; i < 2000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    values.push(Math.floor((seed / 2147483648) * 4_102_444_800_000))
    values.push(values[values.length - 1]! + 1) // consecutive instants share the cached second
  }
  const wrong = values.filter((v) => formatIso(v) !== iso(v))
  t.same(wrong, [])
  t.equal(formatIso(1_704_456_000_123.9), '2024-01-05T12:00:00.123Z', 'fractions of a millisecond are cut')
  for (const v of [-1, 253_402_300_800_000, NaN, Infinity]) t.equal(formatIso(v), undefined, String(v))
})

t.test('parseIsoLike', async (t) => {
  const at = (text: string, zone = 'Europe/Moscow'): string | undefined => {
    const ms = parseIsoLike(text, zone)
    return Number.isNaN(ms) ? undefined : iso(ms)
  }
  t.equal(at('2024-01-05T12:00:00Z'), '2024-01-05T12:00:00.000Z')
  t.equal(at('2024-01-05t12:00:00z'), '2024-01-05T12:00:00.000Z')
  t.equal(at('2024-01-05T12:00:00.123456789Z'), '2024-01-05T12:00:00.123Z')
  t.equal(at('2024-01-05T17:30:00,5+0530'), '2024-01-05T12:00:00.500Z')
  t.equal(at('2024-01-05T09:00:00-03:00'), '2024-01-05T12:00:00.000Z')
  t.equal(at('2024-01-05T14:00:00+02'), '2024-01-05T12:00:00.000Z')
  t.equal(at('2024-01-05 12:00:00 +0000'), '2024-01-05T12:00:00.000Z', 'gunicorn')
  t.equal(at('2024-01-05 15:00:00,123'), '2024-01-05T12:00:00.123Z', 'asctime, in the zone given')
  t.equal(at('2024-01-05T15:00'), '2024-01-05T12:00:00.000Z', 'no seconds')
  t.equal(at('2024-02-29T00:00:00Z'), '2024-02-29T00:00:00.000Z')
  for (const bad of ['2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-05T24:00:00Z', '2024-01-05T12:60:00Z',
    '2024-01-05', '2024-01-05T12:00:00+25:00', '2024-01-05T12:00:00 junk', '2024-01-05T12:00:00.Z', '05/01/2024 12:00:00', '0099-01-05T12:00:00Z', '']) {
    t.equal(at(bad), undefined, bad)
  }
})

t.test('parseIsoLike reads back what formatIso wrote, whether the last text or an earlier one, and the same instant when its text is gone', async (t) => {
  const base = 1_704_456_000_000 // 2024-01-05T12:00:00.000Z
  const texts = [0, 1, 17, 250, 999].map((ms) => formatIso(base + ms)!)
  t.same(texts.map((text) => parseIsoLike(text, 'UTC')), [0, 1, 17, 250, 999].map((ms) => base + ms))
  t.same(texts.map((text) => parseIsoLike(JSON.parse(JSON.stringify(text)) as string, 'UTC')), [0, 1, 17, 250, 999].map((ms) => base + ms),
    'the same text in another string')
  formatIso(base + 5017) // the same millisecond in another second takes its place
  t.equal(parseIsoLike(texts[2]!, 'UTC'), base + 17, 'parsed in full')
  t.equal(parseIsoLike('2024-01-05T12:00:05.017Z', 'UTC'), base + 5017)
  t.ok(Number.isNaN(parseIsoLike('2024-01-05T12:00:00.5xZ', 'UTC')), 'not digits')
  t.ok(Number.isNaN(parseIsoLike('2024-01-05T12:00:00.-17Z', 'UTC')), 'a sign where digits belong')
  t.equal(parseIsoLike('2024-01-05T12:00:00.123+01:00', 'UTC'), base + 123 - 3_600_000, 'another zone')
})

t.test('parseClfTime', async (t) => {
  t.equal(iso(parseClfTime('17/May/2015:10:05:03 +0000')), '2015-05-17T10:05:03.000Z')
  t.equal(iso(parseClfTime('10/Oct/2000:13:55:36 -0700')), '2000-10-10T20:55:36.000Z')
  t.equal(iso(parseClfTime('01/Jan/2024:02:00:00 +0530')), '2023-12-31T20:30:00.000Z')
  for (const bad of ['17/Mai/2015:10:05:03 +0000', '31/Apr/2015:10:05:03 +0000', '17/May/2015:10:05:03', '7/May/2015:10:05:03 +0000', '17/May/2015 10:05:03 +0000']) {
    t.ok(Number.isNaN(parseClfTime(bad)), bad)
  }
})

t.test('epoch units by magnitude', async (t) => {
  t.equal(epochToMs(1_704_456_000), 1_704_456_000_000, 'seconds')
  t.equal(epochToMs(1_704_456_000.123), 1_704_456_000_123, 'seconds with a fraction, rounded to the ms')
  t.equal(epochToMs(1_704_456_000_123), 1_704_456_000_123, 'milliseconds')
  t.equal(epochToMs(1_704_456_000_123_456), 1_704_456_000_123.456, 'microseconds')
  t.equal(Math.floor(epochToMs(1_704_456_000_123_456_789)), 1_704_456_000_123, 'nanoseconds')
  t.ok(Number.isNaN(epochToMs(-5)))
})

t.test('timestampFrom', async (t) => {
  t.equal(timestampFrom('2024-01-05T12:00:00.123Z', 'UTC'), '2024-01-05T12:00:00.123Z', 'canonical text is kept')
  t.equal(timestampFrom('2024-01-05T12:00:00.12 Z', 'UTC'), '2024-01-05T12:00:00.120Z', 'near-canonical text is rewritten')
  t.equal(timestampFrom('2024-01-05T15:00:00.123', 'Europe/Moscow'), '2024-01-05T12:00:00.123Z')
  t.equal(timestampFrom(1_704_456_000_123, 'UTC'), '2024-01-05T12:00:00.123Z')
  t.equal(timestampFrom('1704456000', 'UTC'), '2024-01-05T12:00:00.000Z')
  t.equal(timestampFrom('12 May', 'UTC'), undefined)
  t.equal(timestampFrom(null, 'UTC'), undefined)
  t.equal(timestampFrom({}, 'UTC'), undefined)
})
