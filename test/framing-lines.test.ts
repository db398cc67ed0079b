/**
 * Line framing: records and resume positions are exact whatever the chunk boundaries — CRLF,
 * empty lines, multi-byte characters and partial lines split anywhere.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { LogFlag, RawRecord } from '../agent/entry'
import { LineSplitter } from '../agent/framing/lines'

const MAX = 24

interface Piece {
  bytes: Buffer
  /** The record this line becomes; absent for a line that yields none (empty). */
  expect?: { text: string; flags?: LogFlag[]; originalBytes?: number }
}

const b = (s: string): Buffer => Buffer.from(s, 'utf8')

/** One line per piece, so every record's offsets follow from the piece lengths. */
const PIECES: Piece[] = [
  { bytes: b('first line\n'), expect: { text: 'first line' } },
  { bytes: b('crlf line\r\n'), expect: { text: 'crlf line' } },
  { bytes: b('\n') },
  { bytes: b('\r\n') },
  { bytes: b('héllo 日本 🙂\n'), expect: { text: 'héllo 日本 🙂' } },
  { bytes: b('a\rb\n'), expect: { text: 'a\rb' } },
  { bytes: Buffer.from([0x62, 0x61, 0x64, 0x20, 0xe2, 0x82, 0x20, 0x80, 0x0a]), expect: { text: 'bad \uFFFD \uFFFD', flags: ['invalid_utf8'] } },
  { bytes: b('nul\x00here\n'), expect: { text: 'nul\x00here', flags: ['binary'] } },
  { bytes: b('x'.repeat(40) + '\n'), expect: { text: 'x'.repeat(24), flags: ['truncated'], originalBytes: 40 } },
  { bytes: b('é'.repeat(20) + '\r\n'), expect: { text: 'é'.repeat(12), flags: ['truncated'], originalBytes: 40 } },
  { bytes: b('real \uFFFD is fine\n'), expect: { text: 'real \uFFFD is fine' } },
  { bytes: b('\ttab and \x1b[31mcolour\x1b[0m\n'), expect: { text: '\ttab and \x1b[31mcolour\x1b[0m' } },
  { bytes: b('tail without newline'), expect: { text: 'tail without newline' } },
]
const SAMPLE = Buffer.concat(PIECES.map((p) => p.bytes))

function expected(start: number): RawRecord[] {
  const recs: RawRecord[] = []
  let off = start
  for (const p of PIECES) {
    if (p.expect) {
      recs.push({ text: p.expect.text, offset: off, end: off + p.bytes.length, flags: p.expect.flags, originalBytes: p.expect.originalBytes })
    }
    off += p.bytes.length
  }
  return recs
}

/** Frames `data` cut at `cuts`, checking the resume position after every chunk. */
function frame(t: Test, data: Buffer, cuts: number[], start = 0): RawRecord[] {
  const s = new LineSplitter(start, MAX)
  const out: RawRecord[] = []
  let prev = 0
  for (const c of [...cuts, data.length]) {
    const before = out.length
    s.push(data.subarray(prev, c), out)
    // Bytes handed with a record must still be its text when the push returns (the pipeline
    // copies them into the document then).
    for (const r of out.slice(before)) {
      if (r.bytes !== undefined && r.bytes.toString('utf8', r.bytesStart, r.bytesEnd) !== r.text) {
        t.fail(`record at ${r.offset} (cuts ${cuts.join(',')}): its bytes say ${JSON.stringify(r.bytes.toString('utf8', r.bytesStart, r.bytesEnd))}, its text ${JSON.stringify(r.text)}`)
      }
    }
    const lastNl = data.subarray(0, c).lastIndexOf(0x0a)
    const want = start + lastNl + 1
    if (s.position !== want) t.fail(`position after ${c} bytes (cuts ${cuts.join(',')}) is ${s.position}, want ${want}`)
    prev = c
  }
  s.flushPartial(out)
  if (s.position !== start + data.length) t.fail(`position after flushPartial is ${s.position}`)
  return out
}

const plain = (recs: RawRecord[]): object[] =>
  recs.map((r) => ({ text: r.text, offset: r.offset, end: r.end, flags: r.flags, originalBytes: r.originalBytes }))

t.test('the whole sample in one chunk gives the expected records', async (t) => {
  t.strictSame(plain(frame(t, SAMPLE, [])), plain(expected(0)))
  t.strictSame(plain(frame(t, SAMPLE, [], 1000)), plain(expected(1000)), 'offsets count from the start offset')
})

t.test('the same records for a split into two chunks at every byte', async (t) => {
  const want = JSON.stringify(plain(expected(0)))
  let bad = 0
  for (let i = 0; i <= SAMPLE.length; i++) {
    const got = JSON.stringify(plain(frame(t, SAMPLE, [i])))
    if (got !== want) {
      bad++
      t.equal(got, want, `split at ${i}`)
    }
  }
  t.equal(bad, 0, `${SAMPLE.length + 1} splits`)
})

t.test('the same records for a split into three chunks at every pair of bytes', async (t) => {
  const want = JSON.stringify(plain(expected(0)))
  let bad = 0
  let n = 0
  for (let i = 0; i <= SAMPLE.length; i++) {
    for (let j = i; j <= SAMPLE.length; j++) {
      n++
      const got = JSON.stringify(plain(frame(t, SAMPLE, [i, j])))
      if (got !== want && bad++ < 3) t.equal(got, want, `splits at ${i}, ${j}`)
    }
  }
  t.equal(bad, 0, `${n} splits`)
})

t.test('the same records one byte at a time', async (t) => {
  const cuts = Array.from({ length: SAMPLE.length - 1 }, (_, i) => i + 1)
  t.strictSame(plain(frame(t, SAMPLE, cuts)), plain(expected(0)))
})

t.test('CRLF: the CR is stripped, the record ends past the LF, also when CR and LF are in different chunks', async (t) => {
  const s = new LineSplitter(0, 1024)
  const out: RawRecord[] = []
  s.push(b('one\r'), out)
  t.equal(out.length, 0)
  t.equal(s.position, 0, 'a line is not done until its LF')
  s.push(b('\ntwo\r\n\r'), out)
  s.push(b('\nthree\r\n'), out)
  t.strictSame(plain(out), [
    { text: 'one', offset: 0, end: 5, flags: undefined, originalBytes: undefined },
    { text: 'two', offset: 5, end: 10, flags: undefined, originalBytes: undefined },
    { text: 'three', offset: 12, end: 19, flags: undefined, originalBytes: undefined },
  ])
  t.equal(s.position, 19)
})

t.test('empty lines give no record but move the position', async (t) => {
  const s = new LineSplitter(7, 1024)
  const out: RawRecord[] = []
  s.push(b('\n\n\r\n\n'), out)
  t.equal(out.length, 0)
  t.equal(s.position, 12)
  s.push(b('x\n\n'), out)
  t.strictSame(out.map((r) => [r.text, r.offset, r.end]), [['x', 12, 14]])
  t.equal(s.position, 15)
})

t.test('a partial line is neither emitted nor counted until its newline, and a restart at position reads it whole', async (t) => {
  const data = b('alpha\nbravo\ncharl')
  const s = new LineSplitter(0, 1024)
  const out: RawRecord[] = []
  s.push(data, out)
  t.strictSame(out.map((r) => r.text), ['alpha', 'bravo'])
  t.equal(s.position, 12)

  // The agent restarts: it reads again from the position, and the writer has finished the line.
  const full = Buffer.concat([data, b('ie\ndelta\n')])
  const again = new LineSplitter(s.position, 1024)
  const out2: RawRecord[] = []
  again.push(full.subarray(s.position), out2)
  t.strictSame(out2.map((r) => [r.text, r.offset, r.end]), [['charlie', 12, 20], ['delta', 20, 26]])
})

t.test('flushPartial emits the last line without a newline, once', async (t) => {
  const s = new LineSplitter(0, 1024)
  const out: RawRecord[] = []
  s.flushPartial(out)
  t.equal(out.length, 0, 'nothing pending, nothing emitted')
  s.push(b('done\nlast words\r'), out)
  s.flushPartial(out)
  t.strictSame(out.map((r) => [r.text, r.offset, r.end]), [['done', 0, 5], ['last words', 5, 16]], 'a trailing CR is stripped as in CRLF')
  t.equal(s.position, 16)
  s.flushPartial(out)
  t.equal(out.length, 2, 'a second flush emits nothing')
  s.push(b('more\n'), out)
  t.strictSame(out.map((r) => [r.text, r.offset, r.end])[2], ['more', 16, 21], 'reading continues after the flushed bytes')
})

t.test('a character split between chunks at each of its bytes decodes whole', async (t) => {
  for (const ch of ['é', '日', '🙂']) {
    const data = b(`<${ch}>\n`)
    for (let i = 1; i < data.length - 1; i++) {
      const s = new LineSplitter(0, 1024)
      const out: RawRecord[] = []
      s.push(data.subarray(0, i), out)
      s.push(data.subarray(i), out)
      t.strictSame(plain(out), [{ text: `<${ch}>`, offset: 0, end: data.length, flags: undefined, originalBytes: undefined }], `${ch} split at ${i}`)
    }
  }
})

t.test('a limit too small for one character is a configuration error', async (t) => {
  t.throws(() => new LineSplitter(0, 3), { code: 'LW_CONFIG_VALUE' })
  t.throws(() => new LineSplitter(0, 1.5), { code: 'LW_CONFIG_VALUE' })
})

t.test('real log lines come out as they were written', async (t) => {
  const data = readFileSync(join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log'))
  const lines = data.toString('utf8').split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const s = new LineSplitter(0, 1024 * 1024)
  const out: RawRecord[] = []
  for (let o = 0; o < data.length; o += 65536) s.push(data.subarray(o, o + 65536), out)
  s.flushPartial(out)
  const nonEmpty = lines.filter((l) => l.replace(/\r$/, '') !== '')
  t.equal(out.length, nonEmpty.length)
  t.ok(out.every((r, i) => r.text === nonEmpty[i]!.replace(/\r$/, '')), 'every text equals its line')
  t.ok(out.every((r, i) => i === 0 || r.offset === out[i - 1]!.end || data.subarray(out[i - 1]!.end, r.offset).every((x) => x === 0x0a || x === 0x0d)), 'records tile the file')
  t.ok(out.every((r) => r.flags === undefined), 'no flags on clean text')
  t.equal(s.position, data.length)
})
