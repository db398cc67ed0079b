import t from 'tap'
import { AlertPipeline, type AlertPipelineOptions } from '../rules/alerts/pipeline'
import type { DeliveryReport } from '../rules/alerts/outbox'
import type { AlertEvent, DeliveryResult, MatchRule, Notification, Notifier, Rule } from '../rules/model'

const SEC = 1000
const MIN = 60 * SEC
const T0 = Date.parse('2024-03-01T12:00:00Z')

/**
 * A notifier of our own interface that records what it delivered and can be told to fail the
 * way Telegram does: retryably (5xx, 429) or permanently (bot blocked). Message ids per chat,
 * and an edit answers with the edited message's ids.
 */
class RecordingNotifier implements Notifier {
  readonly delivered: Notification[] = []
  failing: 'no' | 'retryable' | 'permanent' | 'throws' = 'no'
  attempts = 0
  private nextId = 1

  constructor(readonly name = 'telegram', private readonly chat = '-100') {}

  async send(n: Notification): Promise<DeliveryResult> {
    this.attempts++
    if (this.failing === 'retryable') return { ok: false, messageIds: {}, retryable: true, error: 'Telegram answered 502 Bad Gateway', retryAfter: 2 * SEC }
    if (this.failing === 'permanent') return { ok: false, messageIds: {}, retryable: false, error: `Forbidden: bot was blocked by the user (chat ${this.chat})` }
    if (this.failing === 'throws') throw new Error('socket hang up')
    this.delivered.push(n)
    return { ok: true, messageIds: n.edit ? n.edit.messageIds : { [this.chat]: this.nextId++ } }
  }

  posts(): Notification[] {
    return this.delivered.filter((n) => n.edit === undefined)
  }

  edits(): Notification[] {
    return this.delivered.filter((n) => n.edit !== undefined)
  }
}

function rule(id: string, over: Partial<MatchRule> = {}): Rule {
  return {
    id, name: `Rule ${id}`, type: 'match', severity: 'error', enabled: true, group_by: ['client.ip'], labels: { team: 'web' }, route: 'ops',
    group_wait: 30 * SEC, group_interval: MIN, realert: 5 * MIN, realert_backoff: 1, realert_max: 0, resolve: false, source: 'rules/test.yaml:1:5',
    ...over
  }
}

function event(ruleId: string, seq: number, key: string, at: number, over: Partial<AlertEvent> = {}): AlertEvent {
  return {
    id: `${ruleId}@src1:${seq}`, ruleId, severity: 'error', state: 'firing', fingerprint: `${ruleId}|${key}`, groupKey: { 'client.ip': key }, at, count: 1,
    fields: { 'client.ip': key, 'url.path': `/login?n=${seq}` }, summary: `${ruleId} matched`, ...over
  }
}

/** A pipeline on a virtual clock. */
class Harness {
  now = T0
  readonly reports: DeliveryReport[] = []
  pipeline: AlertPipeline

  constructor(readonly rules: Rule[], public notifiers: Record<string, Notifier[]>, readonly limits: AlertPipelineOptions['limits'] = {}) {
    this.pipeline = this.build()
  }

  build(): AlertPipeline {
    return new AlertPipeline({
      rules: new Map(this.rules.map((r) => [r.id, r])), notifiers: this.notifiers, clock: () => this.now,
      onDelivery: (r) => this.reports.push(r), limits: this.limits, random: () => 0.5
    })
  }

  async push(events: AlertEvent[]): Promise<void> {
    this.pipeline.push(events)
    await this.pipeline.settled()
  }

  /** Moves the clock to `at` (absolute ms since T0), ticking every second as the agent does. */
  async until(at: number, step = SEC): Promise<void> {
    while (this.now < T0 + at) {
      this.now = Math.min(T0 + at, this.now + step)
      this.pipeline.tick()
      await this.pipeline.settled()
    }
  }

  /** Saves the state as the checkpoint would (JSON) and starts a new pipeline from it. */
  restart(): void {
    const saved = JSON.stringify(this.pipeline.exportState())
    this.pipeline = this.build()
    this.pipeline.importState(JSON.parse(saved))
  }
}

/** Per notification id, its last delivered version (what the chat shows once edits are applied). */
function lastVersions(delivered: Notification[]): Map<string, Notification> {
  const out = new Map<string, Notification>()
  for (const n of delivered) out.set(n.id, n)
  return out
}

t.test('one message per group_wait, edited with counts within the realert window, a new one after it', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('brute')], { ops: [tg] })
  await h.push([0, 1, 2, 3, 4].map((i) => event('brute', i, '10.0.0.9', T0 + i * SEC)))
  await h.until(29 * SEC)
  t.equal(tg.delivered.length, 0, 'nothing before group_wait')
  await h.until(30 * SEC)
  t.equal(tg.delivered.length, 1)
  const post = tg.delivered[0] as Notification
  t.match(post, { id: 'brute@src1:0', ruleName: 'Rule brute', route: 'ops', more: 4, total: 5, firstAt: T0, lastAt: T0 + 4 * SEC, labels: { team: 'web' } })
  t.equal(post.edit, undefined)

  await h.push([5, 6, 7].map((i) => event('brute', i, '10.0.0.9', h.now)))
  await h.until(89 * SEC)
  t.equal(tg.delivered.length, 1, 'the update waits for group_interval')
  await h.until(90 * SEC)
  t.equal(tg.delivered.length, 2)
  t.match(tg.delivered[1], { id: 'brute@src1:0', total: 8, more: 7, edit: { messageIds: { '-100': 1 } } }, 'an edit of the first message with the new count')

  // The window (opened at 30s) ends at 5m30s; the next event makes a new message.
  await h.until(5 * MIN)
  await h.push([event('brute', 8, '10.0.0.9', h.now)])
  await h.until(5 * MIN + 30 * SEC)
  t.equal(tg.delivered.length, 3)
  t.equal(tg.delivered[2]?.edit, undefined, 'after the window: a new message')
  t.match(tg.delivered[2], { id: 'brute@src1:8', total: 1, more: 0 })
  t.equal(tg.posts().length, 2)

  // Another client IP is another fingerprint: its own message.
  await h.push([event('brute', 9, '10.0.0.10', h.now)])
  await h.until(6 * MIN + 30 * SEC)
  t.match(tg.posts().at(-1), { id: 'brute@src1:9', fingerprint: 'brute|10.0.0.10' })
})

t.test('a restart in the middle of a dedup window sends nothing again, and replayed events are ignored', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('brute')], { ops: [tg] })
  const before = [0, 1, 2].map((i) => event('brute', i, '10.0.0.9', T0 + i * SEC))
  await h.push(before)
  await h.until(30 * SEC)
  t.equal(tg.posts().length, 1)

  await h.until(2 * MIN)
  h.restart()
  // The agent reads again from the last acknowledged offset: the same entries, the same event ids.
  await h.push(before)
  t.equal(h.pipeline.status().counters.replays, 3, 'the replayed events are recognised')
  await h.push([event('brute', 3, '10.0.0.9', h.now)])
  await h.until(4 * MIN)
  t.equal(tg.posts().length, 1, 'no second message inside the window')
  t.equal(tg.edits().length, 1)
  t.match(tg.edits()[0], { id: 'brute@src1:0', total: 4, edit: { messageIds: { '-100': 1 } } }, 'the message sent before the restart is edited, its count carried over')

  // Replays do not count either.
  await h.push(before)
  await h.until(6 * MIN)
  t.equal(tg.delivered.length, 2)
})

t.test('an outage of the notifier while 100 alerts pile up: all delivered afterwards, folded where the rules say so, nothing twice', async (t) => {
  const tg = new RecordingNotifier()
  const rules = [
    // Failed logins per user: grouped and deduplicated.
    rule('login', { group_by: ['user.name'], group_wait: 10 * SEC, group_interval: MIN, realert: 10 * MIN }),
    // Deposits: every one is its own message.
    rule('deposit', { group_by: ['deposit.id'], group_wait: 0, group_interval: 0, realert: 0 })
  ]
  const h = new Harness(rules, { ops: [tg] })
  tg.failing = 'retryable'
  let seq = 0
  for (let i = 0; i < 100; i++) {
    const at = h.now
    const e = i % 5 < 3
      ? event('login', seq++, `user${i % 6}`, at, { groupKey: { 'user.name': `user${i % 6}` }, fingerprint: `login|user${i % 6}` })
      : event('deposit', seq++, `dep${i}`, at, { groupKey: { 'deposit.id': `dep${i}` }, fingerprint: `deposit|dep${i}` })
    await h.push([e])
    await h.until(h.now - T0 + 6 * SEC)
    if (i === 50) h.restart() // and the agent restarts in the middle of it
  }
  const during = h.pipeline.status()
  t.ok(during.failed.length > 0, 'failures are shown in status')
  t.match(during.failed[0], { route: 'ops', notifier: 'telegram', state: 'failed', error: 'Telegram answered 502 Bad Gateway' })
  t.ok((during.failed[0]?.attempts ?? 0) >= 1)
  t.equal(tg.delivered.length, 0)

  tg.failing = 'no'
  await h.until(h.now - T0 + 30 * MIN)
  const end = h.pipeline.status()
  t.same([end.pending.length, end.failed.length, end.blocked.length, end.throttled], [0, 0, 0, 0], 'everything delivered')

  const postIds = tg.posts().map((n) => n.id)
  t.equal(new Set(postIds).size, postIds.length, 'no message posted twice')
  const finals = [...lastVersions(tg.delivered).values()]
  const total = (ruleId: string): number => finals.filter((n) => n.ruleId === ruleId).reduce((s, n) => s + n.total, 0)
  t.equal(total('login'), 60, 'every failed login is counted in a delivered message')
  t.equal(total('deposit'), 40, 'every deposit is in a delivered message')
  const loginMessages = finals.filter((n) => n.ruleId === 'login')
  t.ok(loginMessages.length <= 12, `logins folded per user and window (${loginMessages.length} messages for 6 users over 10 minutes)`)
  t.equal(new Set(loginMessages.map((n) => n.fingerprint)).size, 6)
  const deposits = finals.filter((n) => n.ruleId === 'deposit')
  t.ok(deposits.length >= 20, `deposits: one message each up to the rule's cap of 20 a minute, the overflow folded into counts (${deposits.length} messages)`)
  t.ok(tg.attempts > tg.delivered.length, 'it was retried during the outage')
})

t.test('replayed event ids are ignored', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('m', { group_wait: 0, realert: 0 })], { ops: [tg] })
  const batch = [1, 2, 3].map((i) => event('m', i, `ip${i}`, T0))
  await h.push(batch)
  await h.push(batch)
  await h.push([batch[1] as AlertEvent, event('m', 4, 'ip4', T0)])
  await h.until(10 * SEC)
  t.same(tg.delivered.map((n) => n.id), ['m@src1:1', 'm@src1:2', 'm@src1:3', 'm@src1:4'])
  t.match(h.pipeline.status().counters, { events: 8, replays: 4, notifications: 4, delivered: 4 })
})

t.test('memory stays bounded with 100,000 events of distinct fingerprints, and every count arrives', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('scan', { group_wait: 30 * SEC, group_interval: 5 * MIN, realert: 5 * MIN })], { ops: [tg] })
  const limits = { recent_event_ids: 10_000, max_fingerprints: 10_000, max_groups: 1_000, max_waiting_per_rule: 100, max_pending_per_route: 1_000 }
  let peak = { groups: 0, windows: 0, throttled: 0, outbox: 0, stateBytes: 0 }
  const observe = (): void => {
    const s = h.pipeline.status()
    peak = {
      groups: Math.max(peak.groups, s.groups), windows: Math.max(peak.windows, s.windows), throttled: Math.max(peak.throttled, s.throttled),
      outbox: Math.max(peak.outbox, s.pending.length + s.failed.length + s.blocked.length), stateBytes: peak.stateBytes
    }
  }
  for (let b = 0; b < 100; b++) {
    const events: AlertEvent[] = []
    for (let i = 0; i < 1000; i++) {
      const n = b * 1000 + i
      events.push(event('scan', n, `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`, h.now))
    }
    await h.push(events)
    await h.until(h.now - T0 + SEC)
    observe()
    if (b % 20 === 19) peak.stateBytes = Math.max(peak.stateBytes, JSON.stringify(h.pipeline.exportState()).length)
  }
  await h.until(h.now - T0 + 60 * MIN, 5 * SEC)
  observe()
  t.ok(peak.groups <= limits.max_groups + 1, `groups ${peak.groups}`)
  t.ok(peak.windows <= limits.max_fingerprints, `windows ${peak.windows}`)
  t.ok(peak.throttled <= limits.max_waiting_per_rule, `waiting for the cap ${peak.throttled}`)
  t.ok(peak.outbox <= limits.max_pending_per_route + 2, `outbox ${peak.outbox}`)
  t.ok(peak.stateBytes < 5 * 1024 * 1024, `the saved state stays small (${peak.stateBytes} bytes at most)`)
  t.equal(h.pipeline.exportState().seen.length, limits.recent_event_ids)

  const finals = [...lastVersions(tg.delivered).values()]
  t.equal(finals.reduce((s, n) => s + n.total, 0), 100_000, 'all 100,000 events are counted in delivered messages')
  t.ok(tg.delivered.length < 2_000, `folded into few messages (${tg.delivered.length})`)
  const postIds = tg.posts().map((n) => n.id)
  t.equal(new Set(postIds).size, postIds.length, 'nothing posted twice')
})

t.test('resolved: sent after the firing message it resolves; the next firing is sent without waiting for the window', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('errors', { resolve: true, group_wait: 10 * SEC }), rule('quiet', { resolve: false })], { ops: [tg] })
  await h.push([event('errors', 1, 'api', T0), event('errors', 2, 'api', T0 + SEC)])
  // Resolved before group_wait is over: the firing message goes first.
  await h.push([event('errors', 3, 'api', T0 + 5 * SEC, { state: 'resolved', count: 0, summary: 'back under the threshold' })])
  t.same(tg.delivered.map((n) => [n.id, n.state, n.total]), [['errors@src1:1', 'firing', 2], ['errors@src1:3', 'resolved', 2]])
  await h.push([event('errors', 4, 'api', h.now)])
  await h.until(20 * SEC)
  t.match(tg.delivered.at(-1), { id: 'errors@src1:4', state: 'firing', edit: undefined }, 'a new message, not an edit of the resolved episode')

  await h.push([event('errors', 5, 'other', h.now, { state: 'resolved' })])
  await h.push([event('quiet', 6, 'api', h.now), event('quiet', 7, 'api', h.now, { state: 'resolved' })])
  await h.until(2 * MIN)
  t.equal(tg.delivered.filter((n) => n.state === 'resolved').length, 1, 'no notice for what was never sent, nor for a rule without resolve')
  t.equal(h.pipeline.status().counters.resolvedIgnored, 2)
})

t.test('a permanent failure is shown in status until the configuration changes', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('m', { group_wait: 0 })], { ops: [tg] })
  tg.failing = 'permanent'
  await h.push([event('m', 1, 'a', T0)])
  await h.until(10 * MIN)
  const s = h.pipeline.status()
  t.equal(tg.attempts, 1, 'not retried on its own')
  t.match(s.blocked, [{ key: 'ops/telegram/m@src1:1', state: 'blocked', error: /bot was blocked by the user \(chat -100\)/, ruleId: 'm', attempts: 1 }])
  tg.failing = 'no'
  h.pipeline.reconfigure({ notifiers: { ops: [tg] } })
  await h.pipeline.settled()
  t.equal(tg.delivered.length, 1, 'delivered once the configuration changed')
  t.equal(h.pipeline.status().blocked.length, 0)
})

t.test('a rule whose route has no notifiers: kept, blocked with what to do, delivered once the route exists', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('m', { group_wait: 0, route: 'security' })], { ops: [tg] })
  await h.push([event('m', 1, 'a', T0)])
  t.match(h.pipeline.status().blocked, [{ route: 'security', error: /LW_ALERT_ROUTE: rule "m" sends to route "security", which has no notifiers/ }])
  const sec = new RecordingNotifier('telegram', '-200')
  h.pipeline.reconfigure({ notifiers: { ops: [tg], security: [sec] } })
  await h.pipeline.settled()
  t.same(sec.delivered.map((n) => n.id), ['m@src1:1'])
  t.equal(h.pipeline.status().blocked.length, 0)
})

t.test('several notifiers on a route deliver independently, each once', async (t) => {
  const tg = new RecordingNotifier('telegram')
  const con = new RecordingNotifier('console')
  const h = new Harness([rule('m', { group_wait: 0 })], { ops: [tg, con] })
  tg.failing = 'throws'
  await h.push([event('m', 1, 'a', T0)])
  t.equal(con.delivered.length, 1)
  t.match(h.pipeline.status().failed, [{ notifier: 'telegram', error: 'telegram: socket hang up' }], 'an exception from a notifier is a retryable failure')
  tg.failing = 'no'
  await h.until(5 * MIN)
  t.equal(tg.delivered.length, 1)
  t.equal(con.delivered.length, 1, 'the console got it once, not again with the retry')
})

t.test('a hung attempt times out and is retried; a late answer is not sent twice', async (t) => {
  let release: ((r: DeliveryResult) => void) | undefined
  let calls = 0
  const hung: Notifier = {
    name: 'telegram',
    send: () => {
      calls++
      return new Promise<DeliveryResult>((resolve) => { release = resolve })
    }
  }
  const h = new Harness([rule('m', { group_wait: 0 })], { ops: [hung] }, { send_timeout: 30 * SEC, retry_initial: 10 * SEC })
  h.pipeline.push([event('m', 1, 'a', T0)])
  for (let s = 1; s <= 31; s++) {
    h.now = T0 + s * SEC
    h.pipeline.tick()
  }
  t.match(h.pipeline.status().failed, [{ error: /no answer from telegram within 30s/ }])
  release?.({ ok: true, messageIds: { '-100': 9 } })
  await h.pipeline.settled()
  for (let s = 32; s <= 120; s++) {
    h.now = T0 + s * SEC
    h.pipeline.tick()
  }
  t.equal(calls, 1, 'it arrived late: not sent again')
  t.equal(h.pipeline.status().failed.length, 0)
  t.match(h.reports.map((r) => r.state), ['queued', 'failed', 'delivered'])
})

t.test('onDelivery reports every step with deterministic ids', async (t) => {
  const tg = new RecordingNotifier()
  const h = new Harness([rule('m', { group_wait: 0 })], { ops: [tg] })
  tg.failing = 'retryable'
  await h.push([event('m', 1, 'a', T0)])
  tg.failing = 'no'
  await h.until(MIN)
  t.same(h.reports.map((r) => r.id), ['ops/telegram/m@src1:1#0.0.queued', 'ops/telegram/m@src1:1#0.1.failed', 'ops/telegram/m@src1:1#0.2.delivered'])
  t.match(h.reports[2], { state: 'delivered', attempts: 2, messageIds: { '-100': 1 }, notification: { id: 'm@src1:1', ruleId: 'm' } })
})

t.test('bad input to the constructor and to importState is refused with a code', async (t) => {
  const tg = new RecordingNotifier('telegram')
  t.throws(() => new AlertPipeline({ rules: new Map(), notifiers: { ops: [tg, new RecordingNotifier('telegram')] }, clock: () => 0 }),
    { code: 'LW_CONFIG_CONFLICT', message: /routes.ops: two notifiers are named "telegram"/ })
  const p = new AlertPipeline({ rules: new Map(), notifiers: {}, clock: () => 0 })
  t.throws(() => p.importState({ version: 2 }), { code: 'LW_CHECKPOINT_CORRUPT' })
  t.throws(() => p.importState(null), { code: 'LW_CHECKPOINT_CORRUPT' })
  p.importState(JSON.parse(JSON.stringify(p.exportState())))
  t.same(p.status().counters.events, 0)
})
