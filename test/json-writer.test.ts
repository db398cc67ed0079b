import t from 'tap'
import { JsonWriter, writeBase36 } from '../transports/elasticsearch/json-writer'

/** The bytes a JSON.stringify of `v` would make, which is what the writer must produce. */
function expected(v: unknown): string {
  return JSON.stringify(v)
}

function written(write: (w: JsonWriter) => void, size?: number): string {
  const w = new JsonWriter(size)
  write(w)
  return w.toString()
}

t.test('strings come out as JSON.stringify writes them', async (t) => {
  const cases = [
    '', 'plain', 'say "hi"', 'back\\slash', 'tab\there', 'line\nbreak', 'cr\r', '\b\f', '\u0000\u0001\u001f', '\u007f',
    'café', 'naïve "quote" after é', '日本語', '😀 emoji', 'lone \ud800 high', 'lone \udc00 low', 'x\ud83d', '</script>',
    'a'.repeat(5000) + 'é',
  ]
  for (const s of cases) t.equal(written((w) => w.string(s)), expected(s), JSON.stringify(s))
})

t.test('random strings over the whole UTF-16 range', async (t) => {
  let seed = 7
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
  let bad = 0
  for (let i = 0; i < 2000; i++) {
    let s = ''
    const len = rnd(40)
    for (let j = 0; j < len; j++) {
      const kind = rnd(4)
      s += String.fromCharCode(kind === 0 ? rnd(0x20) : kind === 1 ? 0x20 + rnd(0x60) : kind === 2 ? 0x80 + rnd(0x780) : rnd(0x10000))
    }
    if (written((w) => w.string(s), 8) !== expected(s)) bad++
  }
  t.equal(bad, 0, '2000 random strings written as JSON.stringify writes them, from a buffer that has to grow')
})

t.test('numbers come out as JSON.stringify writes them', async (t) => {
  const cases = [0, -0, 1, -1, 9, 10, 99, 100, 42, 1700000000000, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER,
    2 ** 53 + 2, 1e21, 1.5, -0.25, 1e-7, 12.5, NaN, Infinity, -Infinity]
  for (const n of cases) t.equal(written((w) => w.number(n)), expected(n), String(n))
  // Around the bound of the small-integer path (2^31 - 1), and each power of ten below it.
  for (const n of [2 ** 31 - 2, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, -(2 ** 31 - 1), -(2 ** 31), 4294967295, 4294967296]) {
    t.equal(written((w) => w.number(n)), expected(n), String(n))
  }
  for (let p = 1; p <= 1e9; p *= 10) for (const n of [p - 1, p, p + 1]) t.equal(written((w) => w.number(n)), expected(n), String(n))
})

t.test('values of every field type', async (t) => {
  for (const v of ['x', 3, true, false, ['truncated', 'multiline']]) t.equal(written((w) => w.value(v)), expected(v))
})

t.test('pieces add up to one document', async (t) => {
  const doc = written((w) => {
    w.byte(123)
    w.bytes(Buffer.from('"a":'))
    w.string('é')
    w.comma()
    w.bytes(Buffer.from('"b":'.padEnd(100, ' ')))
    w.number(5)
    w.byte(125)
  }, 4)
  t.same(JSON.parse(doc), { a: 'é', b: 5 })
})

t.test('base 36 comes out as Number#toString(36) writes it, up to the largest safe integer', async (t) => {
  const values = [0, 1, 35, 36, 37, 1295, 1296, 46655, 46656, 2 ** 31, 2 ** 32 + 5, 36 ** 9, 36 ** 10 - 1, 36 ** 10, Number.MAX_SAFE_INTEGER]
  for (let i = 0; i < 2000; i++) values.push(Math.floor(Math.random() * 2 ** (1 + (i % 53))))
  const buf = Buffer.alloc(32)
  const wrong = values.filter((v) => buf.toString('latin1', 3, writeBase36(buf, 3, v)) !== v.toString(36))
  t.same(wrong, [], `${values.length} values`)
})
