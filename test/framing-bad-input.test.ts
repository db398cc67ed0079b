/**
 * Bad bytes at the framing stage: over-long lines are cut (at a character boundary, without
 * holding the rest in memory) and flagged; invalid UTF-8 and binary lines are flagged; neighbours
 * and offsets stay exact.
 */
import t from 'tap'
import type { RawRecord } from '../agent/entry'
import { LineSplitter } from '../agent/framing/lines'

const MiB = 1024 * 1024
const b = (s: string): Buffer => Buffer.from(s, 'utf8')

function frameAll(data: Buffer, max: number, chunk = data.length): RawRecord[] {
  const s = new LineSplitter(0, max)
  const out: RawRecord[] = []
  for (let o = 0; o < data.length; o += chunk) s.push(data.subarray(o, o + chunk), out)
  s.flushPartial(out)
  return out
}

t.test('a 5 MB line with max_line_bytes 1 MiB is cut, flagged, and its neighbours are intact', async (t) => {
  const before = b('before\n')
  const long = Buffer.alloc(5 * 1000 * 1000, 'L')
  const data = Buffer.concat([before, long, b('\r\nafter\n')])
  for (const chunk of [data.length, 256 * 1024, 65536 + 7]) {
    const out = frameAll(data, MiB, chunk)
    t.equal(out.length, 3, `chunk ${chunk}: three records`)
    const [a, cut, c] = out as [RawRecord, RawRecord, RawRecord]
    t.strictSame([a.text, a.offset, a.end, a.flags], ['before', 0, 7, undefined])
    t.equal(cut.text.length, MiB, 'cut at max_line_bytes')
    t.equal(cut.text, 'L'.repeat(MiB))
    t.strictSame(cut.flags, ['truncated'])
    t.equal(cut.originalBytes, 5 * 1000 * 1000, 'originalBytes is the full line (without its CRLF)')
    t.equal(cut.offset, 7)
    t.equal(cut.end, 7 + 5 * 1000 * 1000 + 2, 'end is just past the newline')
    t.strictSame([c.text, c.offset, c.end, c.flags], ['after', cut.end, cut.end + 6, undefined])
  }
})

t.test('the rest of an over-long line is skipped, not buffered: a 256 MiB line needs no 256 MiB of memory', async (t) => {
  const s = new LineSplitter(0, MiB)
  const out: RawRecord[] = []
  const block = Buffer.alloc(MiB, 'x')
  const baseline = process.memoryUsage().arrayBuffers
  let peak = 0
  for (let i = 0; i < 256; i++) {
    s.push(block, out)
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline)
  }
  t.equal(out.length, 0, 'nothing is emitted before the newline')
  t.equal(s.position, 0, 'the line is still to be acknowledged from its start')
  s.push(b('\nnext\n'), out)
  t.ok(peak < 16 * MiB, `held at most ${(peak / MiB).toFixed(1)} MiB beyond the input while reading`)
  t.equal(out.length, 2)
  t.equal(out[0]!.originalBytes, 256 * MiB)
  t.equal(out[0]!.end, 256 * MiB + 1)
  t.strictSame([out[1]!.text, out[1]!.offset], ['next', 256 * MiB + 1])
})

t.test('a cut never splits a character, in one chunk or across chunks', async (t) => {
  const line = 'aé日🙂'.repeat(8) // characters of 1, 2, 3 and 4 bytes
  const bytes = b(line)
  for (let max = 4; max < 24; max++) {
    for (const chunk of [bytes.length + 1, 5]) {
      const [rec] = frameAll(Buffer.concat([bytes, b('\n')]), max, chunk)
      const got = Buffer.byteLength(rec!.text)
      t.ok(line.startsWith(rec!.text), `max ${max}, chunk ${chunk}: a prefix of the line`)
      t.ok(got <= max && got > max - 4, `max ${max}, chunk ${chunk}: ${got} bytes kept`)
      t.notOk(rec!.text.includes('\uFFFD'), 'no replacement character from a half character')
      t.strictSame(rec!.flags, ['truncated'])
      t.equal(rec!.originalBytes, bytes.length)
    }
  }
})

t.test('a line of exactly max_line_bytes is not cut; its CR does not count', async (t) => {
  const out = frameAll(b('12345678\n12345678\r\n123456789\n'), 8)
  t.strictSame(out.map((r) => [r.text, r.flags, r.originalBytes]), [
    ['12345678', undefined, undefined],
    ['12345678', undefined, undefined],
    ['12345678', ['truncated'], 9],
  ])
})

t.test('invalid UTF-8 is replaced by U+FFFD and flagged; a real U+FFFD is not', async (t) => {
  const cases: Array<[string, number[]]> = [
    ['lone continuation byte', [0x80]],
    ['truncated 3-byte sequence', [0xe2, 0x82]],
    ['overlong encoding of "/"', [0xc0, 0xaf]],
    ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['byte that never occurs', [0xff]],
    ['4-byte sequence cut by the newline', [0xf0, 0x9f, 0x99]],
  ]
  for (const [name, bad] of cases) {
    const line = Buffer.concat([b('ok '), Buffer.from(bad), b(' end')])
    const data = Buffer.concat([b('valid \uFFFD line\n'), line, b('\nnext\n')])
    for (const chunk of [data.length, 3]) {
      const out = frameAll(data, 1024, chunk)
      t.strictSame(out.map((r) => r.flags), [undefined, ['invalid_utf8'], undefined], `${name}, chunk ${chunk}`)
      t.match(out[1]!.text, /^ok \uFFFD+ end$/, `${name}: replaced, the rest kept`)
      t.equal(out[1]!.end - out[1]!.offset, line.length + 1, `${name}: offsets count the bytes as they were`)
    }
  }
})

t.test('a line cut inside invalid bytes is still flagged', async (t) => {
  const data = Buffer.concat([b('abc'), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80]), b('\n')])
  const [rec] = frameAll(data, 6)
  t.strictSame(rec!.flags, ['truncated', 'invalid_utf8'])
  t.equal(rec!.originalBytes, 8)
})

t.test('binary: NUL anywhere, or control bytes in invalid UTF-8; text with tab, ESC or a stray control is not', async (t) => {
  const lines: Array<[Buffer, string[] | undefined, string]> = [
    [Buffer.from([0x00, 0x01, 0x02, 0xff, 0x10, 0x41]), ['invalid_utf8', 'binary'], 'binary bytes'],
    [b('null\x00in text'), ['binary'], 'NUL in otherwise valid text'],
    [Buffer.from([0x1f, 0x8b, 0x08, 0x99, 0xe4, 0x55]), ['invalid_utf8', 'binary'], 'gzip-like bytes without NUL'],
    [Buffer.from([0x50, 0x72, 0x69, 0x76, 0x65, 0x74, 0x20, 0xcf, 0xf0, 0xe8]), ['invalid_utf8'], 'cp1251 text: invalid, not binary'],
    [b('8=FIX.4.2\x019=65\x0135=A\x01'), undefined, 'FIX message with SOH separators'],
    [b('\tindented \x1b[1mbold\x1b[0m'), undefined, 'tab and ANSI colours'],
    [b('progress 10%\rprogress 100%'), undefined, 'CR inside a line'],
    [b('日本語 with\x00NUL'), ['binary'], 'NUL in non-ASCII text'],
  ]
  const data = Buffer.concat(lines.flatMap(([l]) => [l, b('\n')]))
  for (const chunk of [data.length, 7, 1]) {
    const out = frameAll(data, 1024, chunk)
    t.equal(out.length, lines.length)
    lines.forEach(([, flags, name], i) => t.strictSame(out[i]!.flags, flags, `${name}, chunk ${chunk}`))
  }
})

t.test('a NUL in the skipped tail of a cut line flags nothing; NUL in later lines still does', async (t) => {
  const data = b('0123456789\x00tail\nclean\nwith\x00nul\nclean 2\n')
  const out = frameAll(data, 8)
  t.strictSame(out.map((r) => [r.text, r.flags]), [
    ['01234567', ['truncated']],
    ['clean', undefined],
    ['with\x00nul', ['binary']],
    ['clean 2', undefined],
  ])
})
