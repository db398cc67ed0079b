import t from 'tap'
import { DedupWindows, RecentIds, windowLength, type DedupBatch, type DedupPolicy } from '../rules/alerts/dedup'

const MIN = 60_000
const plain: DedupPolicy = { realert: 5 * MIN, realert_backoff: 1, realert_max: 0 }
const growing: DedupPolicy = { realert: 5 * MIN, realert_backoff: 2, realert_max: 60 * MIN }

function batch(fingerprint: string, id: string, total = 1, more = 0, firstAt = 0): DedupBatch {
  return { fingerprint, notificationId: id, total, more, firstAt }
}

t.test('window length: fixed, or growing by the factor up to the cap', async (t) => {
  t.equal(windowLength({ realert: 0, realert_backoff: 2, realert_max: MIN }, 3), 0, 'realert 0: no window')
  t.same([0, 1, 2, 5].map((s) => windowLength(plain, s)), [5 * MIN, 5 * MIN, 5 * MIN, 5 * MIN], 'no factor: fixed')
  t.same([0, 1, 2, 3, 4, 10, 5000].map((s) => windowLength(growing, s) / MIN), [5, 10, 20, 40, 60, 60, 60])
  t.equal(windowLength({ realert: 5 * MIN, realert_backoff: 2, realert_max: 0 }, 4), 5 * MIN, 'a factor without a cap does not grow')
})

t.test('within the window a fingerprint updates its message; after it, a new message', async (t) => {
  const d = new DedupWindows({ maxFingerprints: 100 })
  const first = d.decide(batch('fp', 'e1', 3, 2, 100), 1000, plain)
  t.same(first, { kind: 'post', notificationId: 'e1', revision: 0, total: 3, more: 2, firstAt: 100 })

  const second = d.decide(batch('fp', 'e4', 2, 1, 200), 1000 + MIN, plain)
  t.same(second, { kind: 'update', notificationId: 'e1', revision: 1, total: 5, more: 4, firstAt: 100 },
    'same message, totals for the window (3+2 matches; 2 folded + e4 + 1 folded)')
  const third = d.decide(batch('fp', 'e6', 1), 1000 + 4 * MIN, plain)
  t.match(third, { kind: 'update', notificationId: 'e1', revision: 2, total: 6 })

  const other = d.decide(batch('fp2', 'x1'), 1000 + MIN, plain)
  t.match(other, { kind: 'post', notificationId: 'x1' }, 'another fingerprint has its own window')

  const after = d.decide(batch('fp', 'e9', 1, 0, 900), 1000 + 5 * MIN, plain)
  t.same(after, { kind: 'post', notificationId: 'e9', revision: 0, total: 1, more: 0, firstAt: 900 }, 'the window ended at 5m: a new message')
  t.same(d.drainForgotten(), ['e1'], 'the old message will not be edited again')
})

t.test('the window grows while the alert keeps firing and starts over after a quiet spell', async (t) => {
  const d = new DedupWindows({ maxFingerprints: 100 })
  const lengths: number[] = []
  let now = 0
  // Fires every minute for 3 hours: each window has updates and the next post follows at once.
  let windowStart = 0
  for (let i = 0; i <= 180; i++) {
    now = i * MIN
    const v = d.decide(batch('fp', `e${i}`), now, growing)
    if (v.kind === 'post') {
      if (i > 0) lengths.push((now - windowStart) / MIN)
      windowStart = now
    }
  }
  t.same(lengths, [5, 10, 20, 40, 60], 'posts 5, 10, 20, 40, then 60 minutes apart')

  // Quiet for longer than a window after the last one ended: back to 5 minutes.
  const d2 = new DedupWindows({ maxFingerprints: 100 })
  d2.decide(batch('fp', 'a'), 0, growing)
  d2.decide(batch('fp', 'b'), MIN, growing)
  d2.decide(batch('fp', 'c'), 5 * MIN, growing) // kept firing: next window is 10m
  t.match(d2.decide(batch('fp', 'd'), 14 * MIN, growing), { kind: 'update' }, 'inside the 10-minute window')
  const e = 15 * MIN + 10 * MIN + 1
  t.match(d2.decide(batch('fp', 'e'), e, growing), { kind: 'post' }, 'after a window length of quiet')
  t.match(d2.decide(batch('fp', 'f'), e + 4 * MIN, growing), { kind: 'update' })
  t.match(d2.decide(batch('fp', 'g'), e + 5 * MIN, growing), { kind: 'post' }, 'the window was back to 5 minutes')

  // A fingerprint that fired once per window (no updates) did not "keep firing".
  const d3 = new DedupWindows({ maxFingerprints: 100 })
  d3.decide(batch('fp', 'a'), 0, growing)
  d3.decide(batch('fp', 'b'), 6 * MIN, growing)
  t.match(d3.decide(batch('fp', 'c'), 11 * MIN, growing), { kind: 'post' }, 'the second window was 5 minutes too')
})

t.test('realert 0: every batch is a new message', async (t) => {
  const d = new DedupWindows({ maxFingerprints: 100 })
  const none: DedupPolicy = { realert: 0, realert_backoff: 1, realert_max: 0 }
  t.match(d.decide(batch('fp', 'a'), 0, none), { kind: 'post', notificationId: 'a' })
  t.match(d.decide(batch('fp', 'b'), 0, none), { kind: 'post', notificationId: 'b' })
  d.prune(1)
  t.equal(d.size, 0, 'nothing kept once pruned')
})

t.test('close ends the episode: the next batch is a new message with a fresh window', async (t) => {
  const d = new DedupWindows({ maxFingerprints: 100 })
  d.decide(batch('fp', 'a', 2), 0, growing)
  d.decide(batch('fp', 'b', 5), MIN, growing)
  const closed = d.close('fp')
  t.match(closed, { notificationId: 'a', total: 7, updates: 1 })
  t.equal(d.close('fp'), undefined, 'closing twice finds nothing')
  t.match(d.decide(batch('fp', 'c'), 2 * MIN, growing), { kind: 'post', notificationId: 'c' })
  t.same(d.drainForgotten(), ['a'])
})

t.test('bounded: the least recently active fingerprint is forgotten first', async (t) => {
  const d = new DedupWindows({ maxFingerprints: 3 })
  d.decide(batch('a', 'a1'), 0, plain)
  d.decide(batch('b', 'b1'), 1, plain)
  d.decide(batch('c', 'c1'), 2, plain)
  d.decide(batch('a', 'a2'), 3, plain) // a is active again
  d.decide(batch('d', 'd1'), 4, plain)
  t.equal(d.size, 3)
  t.same(d.drainForgotten(), ['b1'], 'b was the least recently active')
  t.match(d.decide(batch('b', 'b2'), 5, plain), { kind: 'post' }, 'a forgotten fingerprint posts again')
  t.same(d.drainForgotten(), ['c1'], 'pushing out c, now the least recently active')
  t.match(d.decide(batch('a', 'a3'), 6, plain), { kind: 'update' }, 'a, active recently, kept its window')
})

t.test('prune forgets windows one window length after they ended', async (t) => {
  const d = new DedupWindows({ maxFingerprints: 100 })
  d.decide(batch('a', 'a1'), 0, plain)
  d.decide(batch('b', 'b1'), 3 * MIN, plain)
  d.prune(10 * MIN - 1)
  t.equal(d.size, 2)
  d.prune(10 * MIN)
  t.equal(d.size, 1, 'a ended at 5m, forgotten at 10m')
  t.same(d.drainForgotten(), ['a1'])
  d.prune(13 * MIN)
  t.equal(d.size, 0)
})

t.test('windows survive export and import through JSON', async (t) => {
  const d = new DedupWindows({ maxFingerprints: 100 })
  d.decide(batch('fp', 'e1', 1), 0, plain)
  d.decide(batch('fp', 'e2', 1), MIN, plain)
  const restored = new DedupWindows({ maxFingerprints: 100 })
  restored.importState(JSON.parse(JSON.stringify(d.exportState())))
  t.same(restored.decide(batch('fp', 'e3', 4), 2 * MIN, plain), { kind: 'update', notificationId: 'e1', revision: 2, total: 6, more: 2, firstAt: 0 },
    'the restored window goes on: same message, next revision, totals kept')
  const small = new DedupWindows({ maxFingerprints: 1 })
  small.importState([...d.exportState(), { ...d.exportState()[0]!, fingerprint: 'other', notificationId: 'o' }])
  t.equal(small.size, 1, 'an import is cut to the bound (the most recent kept)')
  t.match(small.exportState(), [{ fingerprint: 'other' }])
})

t.test('recent event ids: a replayed id is recognised; the memory is bounded', async (t) => {
  const ids = new RecentIds(3)
  t.ok(ids.add('a'))
  t.notOk(ids.add('a'), 'seen before')
  ids.add('b')
  ids.add('c')
  ids.add('d')
  t.same(ids.exportState(), ['b', 'c', 'd'])
  t.ok(ids.add('a'), 'the oldest was forgotten')
  const restored = new RecentIds(3)
  restored.importState(JSON.parse(JSON.stringify(ids.exportState())))
  t.notOk(restored.add('d'), 'kept across export/import')
  t.same(restored.exportState(), ['c', 'd', 'a'])
})
