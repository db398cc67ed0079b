import t from 'tap'
import { AckTracker } from '../agent/inputs/file/ack-tracker'

t.test('the committed offset stops at the oldest unacknowledged entry', async (t) => {
  const tr = new AckTracker()
  for (const off of [0, 10, 25, 40]) tr.add(off)
  t.equal(tr.firstUnacked(), 0)
  tr.ack(10)
  tr.ack(40)
  t.equal(tr.firstUnacked(), 0, 'acks out of order do not move past an unacked entry')
  tr.ack(0)
  t.equal(tr.firstUnacked(), 25)
  tr.ack(25)
  t.equal(tr.firstUnacked(), undefined)
  t.equal(tr.outstanding, 0)
})

t.test('duplicate and unknown acks are ignored', async (t) => {
  const tr = new AckTracker()
  tr.add(5)
  tr.add(9)
  tr.ack(5)
  tr.ack(5)
  tr.ack(7)
  t.equal(tr.firstUnacked(), 9)
  t.equal(tr.outstanding, 1)
})

t.test('grows and compacts across many entries acked in random order', async (t) => {
  const tr = new AckTracker()
  const n = 50_000
  for (let i = 0; i < n; i++) tr.add(i * 100)
  const order = Array.from({ length: n }, (_, i) => i)
  let seed = 42
  for (let i = n - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    const j = seed % (i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const acked = new Set<number>()
  for (let k = 0; k < n; k++) {
    const i = order[k]!
    tr.ack(i * 100)
    acked.add(i)
    if (k % 5000 === 0) {
      let first = 0
      while (acked.has(first)) first++
      t.equal(tr.firstUnacked(), first < n ? first * 100 : undefined)
    }
    // Interleave new entries after some acks, as reading continues while acks arrive.
  }
  t.equal(tr.firstUnacked(), undefined)
  tr.add(n * 100)
  t.equal(tr.firstUnacked(), n * 100)
})
