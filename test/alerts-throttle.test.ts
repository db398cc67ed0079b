import t from 'tap'
import { RuleThrottle } from '../rules/alerts/throttle'
import type { Outgoing } from '../rules/alerts/outbox'
import type { AlertEvent } from '../rules/model'

const SEC = 1000

function out(id: string, opts: { ruleId?: string; fingerprint?: string; state?: 'firing' | 'resolved'; revision?: number; total?: number; more?: number } = {}): Outgoing {
  const ruleId = opts.ruleId ?? 'r1'
  const fingerprint = opts.fingerprint ?? `fp-${id}`
  const state = opts.state ?? 'firing'
  const event: AlertEvent = { id, ruleId, severity: 'warning', state, fingerprint, groupKey: {}, at: 0, count: 1, fields: {}, summary: id }
  return {
    notification: { id, route: 'default', ruleId, ruleName: ruleId, severity: 'warning', state, fingerprint, event, more: opts.more ?? 0, total: opts.total ?? 1, firstAt: 0, lastAt: 0, labels: {} },
    revision: opts.revision ?? 0
  }
}

const ids = (list: Outgoing[]): string[] => list.map((o) => o.notification.id)

t.test('a rule sends its burst, then one per 60/perMinute seconds, in order', async (t) => {
  const th = new RuleThrottle({ perMinute: 3, maxHeldPerRule: 100 })
  const passed = ['a', 'b', 'c', 'd', 'e'].map((id) => th.offer(out(id), 0)).filter((o) => o !== undefined)
  t.same(ids(passed as Outgoing[]), ['a', 'b', 'c'], 'a burst of perMinute')
  t.equal(th.waiting, 2)
  t.same(th.release(19 * SEC), [], 'one token takes 20s')
  t.same(ids(th.release(20 * SEC)), ['d'])
  t.equal(th.offer(out('f'), 60 * SEC), undefined, 'a new one waits behind those already waiting, even with a token free')
  t.same(ids(th.release(60 * SEC)), ['e', 'f'])
  t.equal(th.waiting, 0)
  t.ok(th.offer(out('g'), 120 * SEC), 'nothing waiting and a token: it goes')
})

t.test('each rule has its own cap', async (t) => {
  const th = new RuleThrottle({ perMinute: 1, maxHeldPerRule: 100 })
  t.ok(th.offer(out('a', { ruleId: 'r1' }), 0))
  t.equal(th.offer(out('b', { ruleId: 'r1' }), 0), undefined)
  t.ok(th.offer(out('c', { ruleId: 'r2' }), 0), 'r2 is not held back by r1')
})

t.test('a newer version of a waiting message replaces it', async (t) => {
  const th = new RuleThrottle({ perMinute: 1, maxHeldPerRule: 100 })
  th.offer(out('a'), 0)
  th.offer(out('b', { fingerprint: 'fp', total: 2, more: 1 }), 0)
  th.offer(out('b', { fingerprint: 'fp', total: 7, more: 4, revision: 2 }), 1)
  t.equal(th.waiting, 1)
  const [b] = th.release(60 * SEC)
  t.match(b, { revision: 2, notification: { id: 'b', total: 7, more: 4 } })
})

t.test('past the bound, waiting notifications are folded into counts, never dropped', async (t) => {
  const th = new RuleThrottle({ perMinute: 1, maxHeldPerRule: 2 })
  th.offer(out('first'), 0)
  th.offer(out('a', { fingerprint: 'x', total: 2 }), 0)
  th.offer(out('b', { fingerprint: 'y', total: 3 }), 0)
  th.offer(out('c', { fingerprint: 'y', total: 4 }), 0) // folded into b: same fingerprint
  th.offer(out('d', { fingerprint: 'z', total: 5 }), 0) // folded into a: the oldest of the same state
  th.offer(out('r', { fingerprint: 'y', state: 'resolved' }), 0) // a resolved notice is not folded into a firing one
  t.equal(th.waiting, 3)
  t.equal(th.folded, 2)
  const released = [...th.release(60 * SEC), ...th.release(120 * SEC), ...th.release(180 * SEC)]
  t.same(released.map((o) => [o.notification.id, o.notification.more, o.notification.total, o.notification.state]),
    [['a', 1, 7, 'firing'], ['b', 1, 7, 'firing'], ['r', 0, 1, 'resolved']])
  const held = 2 + 3 + 4 + 5
  t.equal(released.filter((o) => o.notification.state === 'firing').reduce((n, o) => n + o.notification.total, 0), held, 'every count arrives')
})

t.test('perMinute 0: no cap', async (t) => {
  const th = new RuleThrottle({ perMinute: 0, maxHeldPerRule: 1 })
  let passed = 0
  for (let i = 0; i < 1000; i++) if (th.offer(out(`n${i}`), 0) !== undefined) passed++
  t.equal(passed, 1000)
  t.equal(th.waiting, 0)
})

t.test('waiting notifications and tokens survive export and import through JSON', async (t) => {
  const th = new RuleThrottle({ perMinute: 2, maxHeldPerRule: 10 })
  for (const id of ['a', 'b', 'c', 'd']) th.offer(out(id), 0)
  const restored = new RuleThrottle({ perMinute: 2, maxHeldPerRule: 10 })
  restored.importState(JSON.parse(JSON.stringify(th.exportState())))
  t.equal(restored.waiting, 2)
  t.same(restored.release(29 * SEC), [], 'the bucket was empty and stays so')
  t.same(ids(restored.release(30 * SEC)), ['c'])
  t.equal(restored.offer(out('e'), 30 * SEC), undefined, 'still behind d')
})
