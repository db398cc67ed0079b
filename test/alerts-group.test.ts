import t from 'tap'
import { Grouper, foldNotification, groupKeyOf, type GroupTiming } from '../rules/alerts/group'
import type { AlertEvent, Notification } from '../rules/model'

const SEC = 1000
const timing: GroupTiming = { group_wait: 30 * SEC, group_interval: 5 * 60 * SEC }
const timingOf = (): GroupTiming => timing

function event(id: string, at: number, groupKey: Record<string, string> = { 'client.ip': '10.0.0.1' }, ruleId = 'r1', count = 1): AlertEvent {
  return {
    id, ruleId, severity: 'error', state: 'firing', fingerprint: `${ruleId}:${JSON.stringify(groupKey)}`, groupKey, at, count,
    fields: { 'url.path': `/p/${id}` }, summary: `${id} matched`
  }
}

t.test('group_wait: the first event waits, what arrives meanwhile joins the same message', async (t) => {
  const g = new Grouper({ maxGroups: 100 })
  t.equal(g.add(event('e1', 100), 0, timing), 'opened')
  t.equal(g.add(event('e2', 50, undefined, 'r1', 4), 10 * SEC, timing), 'joined')
  t.equal(g.add(event('e3', 300), 29 * SEC, timing), 'joined')
  t.same(g.due(30 * SEC - 1, timingOf), [], 'nothing before group_wait is over')
  const [batch, ...rest] = g.due(30 * SEC, timingOf)
  t.same(rest, [])
  t.equal(batch?.first.id, 'e1', 'the first event represents the message')
  t.equal(batch?.more, 2, '"and 2 more like this"')
  t.equal(batch?.total, 6, 'counts are summed')
  t.equal(batch?.firstAt, 50)
  t.equal(batch?.lastAt, 300)
})

t.test('group_interval: at most one update per interval; a quiet group closes', async (t) => {
  const g = new Grouper({ maxGroups: 100 })
  g.add(event('e1', 0), 0, timing)
  t.equal(g.due(30 * SEC, timingOf).length, 1)
  // Within the interval (30s .. 5m30s) the events wait for its end.
  g.add(event('e2', 0), 60 * SEC, timing)
  g.add(event('e3', 0), 200 * SEC, timing)
  t.same(g.due(330 * SEC - 1, timingOf), [], 'not before the interval is over')
  const update = g.due(330 * SEC, timingOf)
  t.match(update, [{ first: { id: 'e2' }, more: 1 }], 'one update with both')
  t.equal(g.size, 1, 'the group holds its next interval')
  t.same(g.due(630 * SEC, timingOf), [], 'nothing new in that interval')
  t.equal(g.size, 0, 'so the group closed')
  // The next event starts over with group_wait.
  g.add(event('e4', 0), 700 * SEC, timing)
  t.same(g.due(729 * SEC, timingOf), [])
  t.match(g.due(730 * SEC, timingOf), [{ first: { id: 'e4' }, more: 0 }])
})

t.test('a group is per rule and group key; the order of keys does not matter', async (t) => {
  t.equal(groupKeyOf({ ruleId: 'r', groupKey: { a: '1', b: '2' } }), groupKeyOf({ ruleId: 'r', groupKey: { b: '2', a: '1' } }))
  t.not(groupKeyOf({ ruleId: 'r', groupKey: { a: '1' } }), groupKeyOf({ ruleId: 'r', groupKey: { a: '2' } }))
  t.not(groupKeyOf({ ruleId: 'r', groupKey: { a: '1' } }), groupKeyOf({ ruleId: 's', groupKey: { a: '1' } }))
  t.not(groupKeyOf({ ruleId: 'r', groupKey: { 'a,b': '1' } }), groupKeyOf({ ruleId: 'r', groupKey: { a: '', b: '1' } }), 'no ambiguity from separators')

  const g = new Grouper({ maxGroups: 100 })
  g.add(event('a1', 0, { ip: '1' }), 0, timing)
  g.add(event('b1', 0, { ip: '2' }), 0, timing)
  g.add(event('c1', 0, { ip: '1' }, 'r2'), 0, timing)
  g.add(event('a2', 0, { ip: '1' }), 0, timing)
  const batches = g.due(30 * SEC, timingOf)
  t.same(batches.map((b) => [b.first.id, b.more]), [['a1', 1], ['b1', 0], ['c1', 0]])
})

t.test('bounded: a group with nothing pending closes early, else the event folds into its rule\'s oldest pending group', async (t) => {
  const g = new Grouper({ maxGroups: 2 })
  g.add(event('a', 0, { ip: 'a' }), 0, timing)
  g.due(30 * SEC, timingOf) // group a now only holds its interval
  g.add(event('b', 0, { ip: 'b' }), 31 * SEC, timing)
  t.equal(g.add(event('c', 0, { ip: 'c' }), 32 * SEC, timing), 'opened', 'a, holding its interval only, made room')
  t.equal(g.size, 2)
  t.equal(g.add(event('d', 0, { ip: 'd' }, 'r1', 7), 33 * SEC, timing), 'folded', 'no room: folded')
  t.equal(g.folded, 1)
  t.equal(g.add(event('x', 0, { ip: 'x' }, 'r2'), 34 * SEC, timing), 'opened', 'another rule with nothing pending gets one group over the bound')
  t.equal(g.add(event('y', 0, { ip: 'y' }, 'r2'), 34 * SEC, timing), 'folded')
  t.equal(g.size, 3)
  const batches = g.due(70 * SEC, timingOf)
  t.same(batches.map((b) => [b.first.id, b.more, b.total]), [['b', 1, 8], ['c', 0, 1], ['x', 1, 2]], 'd went into b, the oldest pending group of r1; nothing lost')
})

t.test('take closes a group and returns what it held', async (t) => {
  const g = new Grouper({ maxGroups: 10 })
  g.add(event('e1', 0), 0, timing)
  g.add(event('e2', 0), 1, timing)
  t.match(g.take(event('r', 0)), { first: { id: 'e1' }, more: 1 })
  t.equal(g.size, 0)
  t.equal(g.take(event('r', 0)), undefined)
  t.same(g.due(60 * SEC, timingOf), [])
})

t.test('groups survive export and import through JSON', async (t) => {
  const g = new Grouper({ maxGroups: 10 })
  g.add(event('a1', 0, { ip: 'a' }), 0, timing)
  g.add(event('b1', 0, { ip: 'b' }), 0, timing)
  g.due(30 * SEC, timingOf)
  g.add(event('a2', 0, { ip: 'a' }), 40 * SEC, timing)
  const restored = new Grouper({ maxGroups: 10 })
  restored.importState(JSON.parse(JSON.stringify(g.exportState())))
  t.equal(restored.size, 2)
  t.same(restored.due(330 * SEC - 1, timingOf), [], 'the interval is kept')
  t.match(restored.due(330 * SEC, timingOf), [{ first: { id: 'a2' } }])
  t.equal(restored.size, 1, 'b closed: nothing came in its interval')
})

function note(id: string, more: number, total: number, firstAt: number, lastAt: number, fingerprint = 'fp'): Notification {
  return {
    id, route: 'default', ruleId: 'r1', ruleName: 'R', severity: 'error', state: 'firing', fingerprint, event: event(id, firstAt),
    more, total, firstAt, lastAt, labels: {}
  }
}

t.test('folding two notifications', async (t) => {
  const older = note('n1', 2, 3, 100, 200)
  const newer = note('n1', 5, 9, 100, 400)
  t.match(foldNotification(older, newer), { id: 'n1', more: 5, total: 9, firstAt: 100, lastAt: 400 }, 'same message: the newer totals replace the older')
  const other = note('n2', 1, 4, 50, 300, 'fp2')
  t.match(foldNotification(older, other), { id: 'n1', fingerprint: 'fp', more: 4, total: 7, firstAt: 50, lastAt: 300 },
    'two messages: the later one and its "more" become "more" of the earlier one')
})
