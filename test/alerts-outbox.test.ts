import t from 'tap'
import { Outbox, type DeliveryReport, type Dispatch, type OutboxOptions, type Outgoing } from '../rules/alerts/outbox'
import type { AlertEvent, DeliveryResult } from '../rules/model'

const SEC = 1000
const opts: OutboxOptions = { maxPerLane: 100, concurrency: 1, retryInitial: SEC, retryMax: 60 * SEC, sendTimeout: 30 * SEC, maxMessages: 100, random: () => 1 }

function out(id: string, o: { fingerprint?: string; ruleId?: string; revision?: number; total?: number; more?: number; state?: 'firing' | 'resolved' } = {}): Outgoing {
  const ruleId = o.ruleId ?? 'r1'
  const fingerprint = o.fingerprint ?? `fp-${id}`
  const state = o.state ?? 'firing'
  const event: AlertEvent = { id, ruleId, severity: 'error', state, fingerprint, groupKey: {}, at: 0, count: 1, fields: {}, summary: id }
  return {
    notification: { id, route: 'ops', ruleId, ruleName: ruleId, severity: 'error', state, fingerprint, event, more: o.more ?? 0, total: o.total ?? 1, firstAt: 0, lastAt: 0, labels: {} },
    revision: o.revision ?? 0
  }
}

const ok = (messageIds: Record<string, number> = { '-100': 1 }): DeliveryResult => ({ ok: true, messageIds })
const retry = (retryAfter?: number): DeliveryResult => ({ ok: false, messageIds: {}, retryable: true, error: 'Telegram answered 502', ...(retryAfter === undefined ? {} : { retryAfter }) })

function setup(o: Partial<OutboxOptions> = {}): { box: Outbox; reports: DeliveryReport[] } {
  const reports: DeliveryReport[] = []
  return { box: new Outbox({ ...opts, ...o }, (r) => reports.push(r)), reports }
}

t.test('stored before it is sent, removed once delivered', async (t) => {
  const { box, reports } = setup()
  box.put('ops', 'telegram', out('n1'), 0)
  t.match(box.records(), [{ key: 'ops/telegram/n1', state: 'pending', attempts: 0 }])
  const [d, ...more] = box.ready(0)
  t.same(more, [])
  t.match(box.records(), [{ state: 'sending', attempts: 1 }])
  t.equal(d?.notification.edit, undefined, 'a first message is posted')
  box.settle(d as Dispatch, ok(), 1)
  t.equal(box.records().length, 0)
  t.same(reports.map((r) => [r.id, r.state]), [['ops/telegram/n1#0.0.queued', 'queued'], ['ops/telegram/n1#0.1.delivered', 'delivered']])
  t.same(reports[1]?.messageIds, { '-100': 1 })
})

t.test('a retryable failure pauses the lane; after the backoff one message probes, then the rest follow', async (t) => {
  const { box } = setup()
  for (const id of ['a', 'b', 'c']) box.put('ops', 'telegram', out(id), 0)
  const [a] = box.ready(0)
  box.settle(a as Dispatch, retry(), 0)
  t.match(box.records()[0], { state: 'failed', attempts: 1, error: 'Telegram answered 502', nextAttemptAt: SEC })
  t.same(box.ready(SEC - 1), [], 'the lane waits out the backoff')
  const probe = box.ready(SEC)
  t.same(probe.map((d) => d.notification.id), ['a'], 'the oldest goes first, alone')
  box.settle(probe[0] as Dispatch, retry(5 * SEC), SEC)
  t.match(box.records()[0], { state: 'failed', attempts: 2, nextAttemptAt: 6 * SEC }, 'retry_after is honoured when longer than the backoff')
  t.same(box.ready(6 * SEC - 1), [])
  const again = box.ready(6 * SEC)
  box.settle(again[0] as Dispatch, ok(), 6 * SEC)
  t.same(box.ready(6 * SEC).map((d) => d.notification.id), ['b'], 'success: the next one')
})

t.test('another lane is not held back by a failing one', async (t) => {
  const { box } = setup()
  box.put('ops', 'telegram', out('a'), 0)
  box.put('ops', 'console', out('a'), 0)
  const both = box.ready(0)
  t.same(both.map((d) => d.key).sort(), ['ops/console/a', 'ops/telegram/a'])
  box.settle(both.find((d) => d.notifier === 'telegram') as Dispatch, retry(), 0)
  box.settle(both.find((d) => d.notifier === 'console') as Dispatch, ok({}), 0)
  t.same(box.records().map((r) => [r.key, r.state]), [['ops/telegram/a', 'failed']])
})

t.test('a permanent failure blocks the record until the configuration changes', async (t) => {
  const { box, reports } = setup()
  box.put('ops', 'telegram', out('a'), 0)
  box.put('ops', 'telegram', out('b'), 0)
  const [a] = box.ready(0)
  box.settle(a as Dispatch, { ok: false, messageIds: {}, retryable: false, error: 'chat -100 not found: check the chat id of route ops' }, 0)
  t.match(box.records()[0], { state: 'blocked', error: /chat -100 not found/ })
  t.equal(reports.at(-1)?.state, 'blocked')
  t.same(box.ready(0).map((d) => d.notification.id), ['b'], 'the lane is not paused: the next message is tried')
  t.same(box.ready(100 * SEC), [], 'a blocked record is not retried on its own')
  t.equal(box.unblock(), 1)
  t.same(box.ready(100 * SEC).map((d) => d.notification.id), [], 'b is still in flight (concurrency 1)')
})

t.test('a newer version is merged into its message\'s record; once the message exists, it is sent as an edit', async (t) => {
  const { box } = setup()
  box.put('ops', 'telegram', out('n1', { fingerprint: 'fp', total: 1 }), 0)
  const [post] = box.ready(0)
  // An update arrives while the post is on its way.
  box.put('ops', 'telegram', out('n1', { fingerprint: 'fp', revision: 1, total: 5, more: 4 }), 1)
  t.equal(box.records().length, 1, 'one record per message')
  box.settle(post as Dispatch, ok({ '-100': 42 }), 2)
  t.match(box.records(), [{ state: 'pending', revision: 1, notification: { total: 5 } }], 'kept: the newer counts are still to be sent')
  const [edit] = box.ready(2)
  t.same(edit?.notification.edit, { messageIds: { '-100': 42 } }, 'sent as an edit of the delivered message')
  t.equal(edit?.notification.total, 5)
  box.settle(edit as Dispatch, ok({ '-100': 42 }), 3)
  t.equal(box.records().length, 0)

  // Later revisions of the same message, after the first was delivered: edits too.
  box.put('ops', 'telegram', out('n1', { fingerprint: 'fp', revision: 2, total: 9 }), 4)
  const [later] = box.ready(4)
  t.same(later?.notification.edit, { messageIds: { '-100': 42 } })
  // The notifier's edit budget was spent: it posted a new message instead and says so.
  box.settle(later as Dispatch, ok({ '-100': 77 }), 5)
  box.put('ops', 'telegram', out('n1', { fingerprint: 'fp', revision: 3, total: 10 }), 6)
  t.same(box.ready(6)[0]?.notification.edit, { messageIds: { '-100': 77 } }, 'the next edit goes to the new message')
})

t.test('a partial delivery (some chats got it) is retried as an edit for those and a post for the others', async (t) => {
  const { box } = setup()
  box.put('ops', 'telegram', out('n1'), 0)
  box.settle(box.ready(0)[0] as Dispatch, { ok: false, messageIds: { '-100': 7 }, retryable: true, error: 'chat -200: Telegram answered 502' }, 0)
  const [again] = box.ready(10 * SEC)
  t.same(again?.notification.edit, { messageIds: { '-100': 7 } })
  box.settle(again as Dispatch, ok({ '-100': 7, '-200': 3 }), 10 * SEC)
  box.put('ops', 'telegram', out('n1', { revision: 1 }), 11 * SEC)
  t.same(box.ready(11 * SEC)[0]?.notification.edit, { messageIds: { '-100': 7, '-200': 3 } })
})

t.test('updates that waited out an outage arrive as one message with the latest counts', async (t) => {
  const { box } = setup()
  box.put('ops', 'telegram', out('n1', { fingerprint: 'fp', total: 1 }), 0)
  box.settle(box.ready(0)[0] as Dispatch, retry(), 0)
  for (let r = 1; r <= 5; r++) box.put('ops', 'telegram', out('n1', { fingerprint: 'fp', revision: r, total: 1 + r }), r * 100)
  t.equal(box.records().length, 1)
  const [d] = box.ready(10 * SEC)
  t.equal(d?.notification.edit, undefined, 'never delivered: posted, not edited')
  t.equal(d?.notification.total, 6)
  box.settle(d as Dispatch, ok(), 10 * SEC)
  t.equal(box.records().length, 0)
})

t.test('bounded: past the bound the oldest of one fingerprint are merged, else of one rule; counts summed', async (t) => {
  const { box, reports } = setup({ maxPerLane: 3 })
  box.put('ops', 'telegram', out('a1', { fingerprint: 'a', total: 2 }), 0)
  box.put('ops', 'telegram', out('b1', { fingerprint: 'b', total: 3 }), 0)
  box.put('ops', 'telegram', out('a2', { fingerprint: 'a', total: 4 }), 0)
  box.put('ops', 'telegram', out('c1', { fingerprint: 'c', total: 5 }), 0)
  t.same(box.records().map((r) => [r.notification.id, r.notification.total, r.notification.more]), [['a1', 6, 1], ['b1', 3, 0], ['c1', 5, 0]])
  t.match(reports.find((r) => r.state === 'merged'), { id: 'ops/telegram/a2#0.0.merged', mergedInto: 'ops/telegram/a1' })
  box.put('ops', 'telegram', out('d1', { fingerprint: 'd', total: 7 }), 0)
  t.same(box.records().map((r) => [r.notification.id, r.notification.total, r.notification.more]), [['a1', 9, 2], ['c1', 5, 0], ['d1', 7, 0]],
    'no fingerprint twice: the two oldest of the rule')
  box.put('ops', 'telegram', out('x1', { fingerprint: 'x', ruleId: 'r2', total: 1 }), 0)
  t.same(box.records().map((r) => [r.notification.id, r.notification.total]), [['a1', 14], ['d1', 7], ['x1', 1]])
  const total = box.records().reduce((n, r) => n + r.notification.total, 0)
  t.equal(total, 2 + 3 + 4 + 5 + 7 + 1, 'nothing dropped')

  const { box: tiny } = setup({ maxPerLane: 1 })
  tiny.put('ops', 'telegram', out('p', { ruleId: 'r1' }), 0)
  tiny.put('ops', 'telegram', out('q', { ruleId: 'r2' }), 0)
  tiny.put('ops', 'telegram', out('r', { ruleId: 'r2', state: 'resolved' }), 0)
  tiny.put('ops', 'telegram', out('s', { ruleId: 'r2' }), 0)
  t.same(tiny.records().map((r) => [r.notification.id, r.notification.more]), [['p', 0], ['q', 1], ['r', 0]],
    'nothing left to merge: one record per rule and state may go over the bound, no more')
})

t.test('an attempt with no answer times out; a late success is not sent again', async (t) => {
  const { box, reports } = setup()
  box.put('ops', 'telegram', out('a'), 0)
  const [d] = box.ready(0)
  box.expire(30 * SEC - 1)
  t.match(box.records()[0], { state: 'sending' })
  box.expire(30 * SEC)
  t.match(box.records()[0], { state: 'failed', error: /no answer from telegram within 30s/ })
  box.settle(d as Dispatch, ok(), 31 * SEC)
  t.equal(box.records().length, 0, 'it did arrive after all: done, no second attempt')
  t.same(reports.map((r) => r.state), ['queued', 'failed', 'delivered'])

  // A late failure after a timeout changes nothing.
  box.put('ops', 'telegram', out('b'), 40 * SEC)
  const [b] = box.ready(40 * SEC)
  box.expire(70 * SEC)
  box.settle(b as Dispatch, retry(), 71 * SEC)
  t.match(box.records()[0], { state: 'failed', attempts: 1 })
})

t.test('export and import through JSON: what was in flight is sent again, blocked is tried again, edits still find their message', async (t) => {
  const { box } = setup()
  box.put('ops', 'telegram', out('m', { fingerprint: 'm' }), 0)
  box.settle(box.ready(0)[0] as Dispatch, ok({ '-1': 5 }), 0)
  box.put('ops', 'telegram', out('a'), 1)
  box.put('ops', 'console', out('b'), 1)
  box.put('ops', 'telegram', out('m', { fingerprint: 'm', revision: 1, total: 3 }), 1)
  const inFlight = box.ready(1)
  box.settle(inFlight.find((d) => d.notifier === 'console') as Dispatch, { ok: false, messageIds: {}, retryable: false, error: 'blocked' }, 1)
  const saved = JSON.parse(JSON.stringify(box.exportState())) as ReturnType<Outbox['exportState']>
  t.same(saved.records.map((r) => [r.notifier, r.notification.id, r.state]), [['telegram', 'a', 'pending'], ['telegram', 'm', 'pending'], ['console', 'b', 'blocked']])

  const { box: restored } = setup()
  restored.importState(saved, 2)
  t.same(restored.records().map((r) => [r.notification.id, r.state]), [['a', 'pending'], ['m', 'pending'], ['b', 'pending']])
  const sent = restored.ready(2)
  t.same(sent.map((d) => d.notification.id).sort(), ['a', 'b'])
  restored.settle(sent.find((d) => d.notification.id === 'a') as Dispatch, ok(), 3)
  const [m] = restored.ready(3)
  t.same(m?.notification.edit, { messageIds: { '-1': 5 } }, 'the message delivered before the restart is edited')
})

t.test('forget drops the ids of a message once no record of it is left', async (t) => {
  const { box } = setup()
  box.put('ops', 'telegram', out('m'), 0)
  box.settle(box.ready(0)[0] as Dispatch, ok(), 0)
  box.put('ops', 'telegram', out('m', { revision: 1 }), 1)
  box.forget('m')
  const [edit] = box.ready(1)
  t.same(edit?.notification.edit, { messageIds: { '-100': 1 } }, 'a record of it was left: still an edit')
  box.settle(edit as Dispatch, ok(), 1)
  box.forget('m')
  box.put('ops', 'telegram', out('m', { revision: 2 }), 2)
  t.equal(box.ready(2)[0]?.notification.edit, undefined, 'forgotten: posted anew')
})
