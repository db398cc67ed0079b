/**
 * The rule types, one test each, through the engine: match, frequency (group keys, the window
 * sliding), ratio (min_count), absence (correlated and flatline), new_value (bounded seen-set that
 * survives export/import), and resolved notices.
 */
import t from 'tap'
import type { Entry, FieldValue } from '../agent/entry'
import type { CompiledRule } from '../rules/compiled'
import { RuleEngine } from '../rules/engine'
import type { AlertEvent, Rule } from '../rules/model'
import { H, M, ruleBase, S, T0, where } from './support/rules'

function base(id: string): Omit<Rule, 'type'> {
  return ruleBase(id)
}

const is5xx = where('http.response.status_code', (v) => (v as number) >= 500)
const isRequest = where('http.request.method', () => true)

let offset = 0
function entry(fields: Record<string, FieldValue>): Entry {
  const e: Entry = { sourceId: 'src', offset, end: offset + 10, text: '', fields }
  offset += 10
  return e
}

/** Feeds entries at the given times, ticking every second in between as the agent does. */
class Clock {
  now = T0
  events: AlertEvent[] = []
  constructor(readonly engine: RuleEngine) {}
  advance(ms: number): void {
    const end = this.now + ms
    while (this.now + S <= end) {
      this.now += S
      this.events.push(...this.engine.tick(this.now))
    }
    this.now = end
  }
  feed(e: Entry): readonly AlertEvent[] {
    const out = this.engine.evaluate(e, this.now)
    this.events.push(...out)
    return out
  }
}

t.test('match: every matching entry is an event with its group key; others allocate nothing', async (t) => {
  const rule: Rule = { ...base('errors'), type: 'match', group_by: ['service.name'] }
  const engine = new RuleEngine([{ rule, match: is5xx }], { timestamps: 'arrival' })
  const none = engine.evaluate(entry({ 'http.response.status_code': 200 }), T0)
  t.equal(none.length, 0)
  t.equal(engine.evaluate(entry({ 'http.response.status_code': 404 }), T0), none, 'the same shared empty array: nothing allocated')
  const [event] = engine.evaluate(entry({ 'http.response.status_code': 502, 'service.name': 'api', 'http.request.method': 'GET', 'url.path': '/x' }), T0 + 5)
  t.match(event, { ruleId: 'errors', state: 'firing', count: 1, at: T0 + 5, groupKey: { 'service.name': 'api' }, summary: 'GET /x → 502' })
  const [other] = engine.evaluate(entry({ 'http.response.status_code': 503, 'service.name': 'web' }), T0)
  t.not(other!.fingerprint, event!.fingerprint, 'another group key, another fingerprint')
  const [again] = engine.evaluate(entry({ 'http.response.status_code': 500, 'service.name': 'api' }), T0)
  t.equal(again!.fingerprint, event!.fingerprint, 'the same group key, the same fingerprint')
  t.not(again!.id, event!.id, 'another entry, another id')
})

t.test('frequency: threshold per group key in a sliding window; repeats while firing; resolves', async (t) => {
  const rule: Rule = { ...base('burst'), type: 'frequency', threshold: 3, window: M, group_by: ['client.ip'], resolve: true }
  const c = new Clock(new RuleEngine([{ rule, match: is5xx }], { timestamps: 'arrival' }))
  const hit = (ip: string): readonly AlertEvent[] => c.feed(entry({ 'http.response.status_code': 500, 'client.ip': ip }))

  t.equal(hit('1.1.1.1').length, 0)
  c.advance(20 * S)
  t.equal(hit('1.1.1.1').length, 0)
  t.equal(hit('2.2.2.2').length, 0, 'another group counts on its own')
  c.advance(45 * S) // the first hit of 1.1.1.1 (at 0s) has left the 1m window
  t.equal(hit('1.1.1.1').length, 0, 'two in the window (20s, 65s): the window slid past the first')
  c.advance(10 * S)
  const fired = hit('1.1.1.1')
  t.equal(fired.length, 1, 'three within a minute (20s, 65s, 75s)')
  t.match(fired[0], { state: 'firing', count: 3, groupKey: { 'client.ip': '1.1.1.1' }, summary: '3 matches in 1m (threshold 3)' })
  t.equal(hit('1.1.1.1').length, 0, 'already firing: no event per entry')

  c.events.length = 0
  c.advance(30 * S)
  t.same(c.events, [], 'still 3+ in the window: nothing new before a window has passed')
  c.advance(40 * S)
  const resolved = c.events.filter((e) => e.state === 'resolved')
  t.equal(resolved.length, 1, 'resolved once the count fell below the threshold')
  t.match(resolved[0], { groupKey: { 'client.ip': '1.1.1.1' }, summary: /^resolved: \d match(es)? in 1m \(threshold 3\)$/ })
  t.equal(resolved[0]!.fingerprint, fired[0]!.fingerprint)
})

t.test('frequency: a burst that keeps going repeats the alert once per window', async (t) => {
  const rule: Rule = { ...base('steady'), type: 'frequency', threshold: 2, window: M }
  const c = new Clock(new RuleEngine([{ rule, match: is5xx }], { timestamps: 'arrival' }))
  for (let i = 0; i < 200; i++) {
    c.feed(entry({ 'http.response.status_code': 500 }))
    c.advance(S)
  }
  const firing = c.events.filter((e) => e.state === 'firing')
  t.ok(firing.length >= 3 && firing.length <= 4, `first alert plus one repeat per minute over 200s (got ${firing.length})`)
  t.equal(new Set(firing.map((e) => e.id)).size, firing.length, 'each repeat has its own id')
  t.equal(new Set(firing.map((e) => e.fingerprint)).size, 1, 'and the same fingerprint')
})

t.test('frequency: group keys beyond the bound fold into one overflow group that still counts', async (t) => {
  const rule: Rule = { ...base('scan'), type: 'frequency', threshold: 5, window: M, group_by: ['client.ip'] }
  const engine = new RuleEngine([{ rule, match: is5xx }], { timestamps: 'arrival', maxGroupsPerRule: 3 })
  const events: AlertEvent[] = []
  for (let i = 0; i < 10; i++) events.push(...engine.evaluate(entry({ 'http.response.status_code': 500, 'client.ip': `10.0.0.${i}` }), T0))
  t.equal(engine.stats()[0]!.size, 4, 'three keys and the overflow group')
  t.equal(engine.stats()[0]!.overflowed, 7)
  t.equal(events.length, 1, 'seven distinct addresses in the overflow group pass the threshold of 5')
  t.same(events[0]!.groupKey, { 'client.ip': '(other)' })
})

t.test('frequency: late entries count in their own bucket; entries older than the window do not; empty groups are dropped', async (t) => {
  const rule: Rule = { ...base('late'), type: 'frequency', threshold: 3, window: M }
  const engine = new RuleEngine([{ rule, match: is5xx }])
  const at = (stamp: number, now: number): readonly AlertEvent[] =>
    engine.evaluate(entry({ 'http.response.status_code': 500, '@timestamp': new Date(stamp).toISOString() }), now)
  const now = T0 + 10 * M
  t.equal(at(now - 5 * S, now).length, 0)
  t.equal(at(now - 3 * M, now).length, 0, 'older than the window behind the newest entry: not counted')
  t.equal(at(now - 50 * S, now).length, 0, 'late but within the window: counted')
  t.equal(at(now - 2 * S, now).length, 1, 'third within the minute (-50s, -5s, -2s)')
  t.equal(engine.stats()[0]!.size, 1)
  engine.tick(now + 2 * M)
  t.equal(engine.stats()[0]!.size, 0, 'the window emptied: the group is gone')
})

t.test('ratio: share above the threshold fires only with min_count base entries', async (t) => {
  const rule: Rule = { ...base('5xx-share'), type: 'ratio', base: {}, threshold: 0.05, min_count: 20, window: 5 * M, resolve: true }
  const c = new Clock(new RuleEngine([{ rule, match: is5xx, base: isRequest }], { timestamps: 'arrival' }))
  const request = (status: number): readonly AlertEvent[] => c.feed(entry({ 'http.request.method': 'GET', 'http.response.status_code': status }))

  for (let i = 0; i < 5; i++) t.equal(request(500).length, 0, 'all errors, but fewer than min_count requests')
  t.equal(c.feed(entry({ 'http.response.status_code': 500 })).length, 0, 'not in the base set (no method): not counted')
  for (let i = 0; i < 14; i++) request(200)
  const fired = request(200)
  t.equal(fired.length, 1, 'the 20th request completes min_count: 5 of 20 is 25%')
  t.match(fired[0], { count: 5, ratio: { share: 0.25, base: 20 }, summary: 'share 25% (5 of 20) in 5m (threshold 5%)' })

  for (let i = 0; i < 100; i++) request(200)
  c.advance(10 * S)
  const resolved = c.events.filter((e) => e.state === 'resolved')
  t.equal(resolved.length, 1, '5 of 120 is 4.2%: resolved on the next tick')
  t.match(resolved[0]!.summary, /^resolved: share 4\.17% \(5 of 120\)/)
})

t.test('ratio: below the threshold never fires however many requests', async (t) => {
  const rule: Rule = { ...base('share'), type: 'ratio', base: {}, threshold: 0.05, min_count: 10, window: 5 * M }
  const engine = new RuleEngine([{ rule, match: is5xx, base: isRequest }], { timestamps: 'arrival' })
  let fired = 0
  for (let i = 0; i < 1000; i++) {
    fired += engine.evaluate(entry({ 'http.request.method': 'GET', 'http.response.status_code': i % 25 === 24 ? 500 : 200 }), T0 + i).length
  }
  t.equal(fired, 0, '4% errors stay under 5%')
})

t.test('absence, correlated: a start without its end within the time fires; a late end resolves', async (t) => {
  const rule: Rule = {
    ...base('deposit-unverified'), type: 'absence', end: {}, key: 'deposit.id', within: 2 * H, resolve: true,
  }
  const created = where('event.action', (v) => v === 'deposit.created')
  const verified = where('event.action', (v) => v === 'deposit.verified')
  const c = new Clock(new RuleEngine([{ rule, match: created, end: verified }], { timestamps: 'arrival' }))

  c.feed(entry({ 'event.action': 'deposit.created', 'deposit.id': '123' }))
  c.feed(entry({ 'event.action': 'deposit.created', 'deposit.id': '456' }))
  c.feed(entry({ 'event.action': 'deposit.created' })) // no key: cannot be correlated
  c.advance(H)
  c.feed(entry({ 'event.action': 'deposit.verified', 'deposit.id': '456' }))
  c.advance(H - 2 * S)
  t.same(c.events, [], 'nothing before the deadline')
  c.advance(3 * S)
  t.equal(c.events.length, 1, 'the deposit never verified fires at its deadline')
  t.match(c.events[0], {
    state: 'firing', at: T0 + 2 * H, groupKey: { 'deposit.id': '123' },
    summary: 'deposit.id 123 started 2h ago and did not end within 2h',
  })
  t.equal(c.engine.stats()[0]!.overflowed, 1, 'the start without a key is counted')

  c.advance(30 * M)
  const late = c.feed(entry({ 'event.action': 'deposit.verified', 'deposit.id': '123' }))
  t.equal(late.length, 1)
  t.match(late[0], { state: 'resolved', fingerprint: c.events[0]!.fingerprint, summary: 'deposit.id 123 ended 2h30m after it started (limit 2h)' })
})

t.test('absence, flatline: fewer than min_count in the window fires after a full window; resolves when back', async (t) => {
  const rule: Rule = { ...base('heartbeat'), type: 'absence', min_count: 2, window: 10 * M, resolve: true }
  const c = new Clock(new RuleEngine([{ rule, match: where('message', (v) => v === 'heartbeat') }], { timestamps: 'arrival' }))
  const beat = (): void => { c.feed(entry({ message: 'heartbeat' })) }

  for (let i = 0; i < 6; i++) {
    beat()
    c.advance(3 * M)
  }
  t.same(c.events, [], 'a heartbeat every 3 minutes: 3-4 per 10 minutes')
  c.advance(12 * M)
  t.equal(c.events.length, 1, 'silence: fires once, when the window holds only the last beat')
  t.match(c.events[0], { state: 'firing', count: 1, summary: '1 match in 10m (expected at least 2)' })
  beat()
  beat()
  c.advance(S)
  t.equal(c.events.length, 2)
  t.match(c.events[1], { state: 'resolved', fingerprint: c.events[0]!.fingerprint })
})

t.test('absence, flatline: a new rule waits a whole window before it can fire', async (t) => {
  const rule: Rule = { ...base('quiet'), type: 'absence', min_count: 1, window: 5 * M }
  const c = new Clock(new RuleEngine([{ rule, match: where('message', () => true) }], { timestamps: 'arrival' }))
  c.advance(5 * M - S)
  t.same(c.events, [], 'not before the rule has watched for 5m')
  c.advance(2 * S)
  t.equal(c.events.length, 1)
})

t.test('new_value: first sighting fires, per group; regression after a quiet spell; bounded; survives export/import', async (t) => {
  const rule: Rule = {
    ...base('new-admin-ip'), type: 'new_value', field: 'client.ip', group_by: ['user.name'],
    forget_after: 30 * 24 * H, regression_after: 7 * 24 * H,
  }
  const isAdmin = where('url.path', (v) => String(v).startsWith('/admin'))
  const compiled: CompiledRule[] = [{ rule, match: isAdmin }]
  const engine = new RuleEngine(compiled, { timestamps: 'arrival', maxSeenPerRule: 3 })
  const visit = (e: RuleEngine, ip: string, user: string, at: number): readonly AlertEvent[] =>
    e.evaluate(entry({ 'url.path': '/admin/users', 'client.ip': ip, 'user.name': user }), at)

  const first = visit(engine, '1.1.1.1', 'ann', T0)
  t.equal(first.length, 1)
  t.match(first[0], { summary: 'new client.ip 1.1.1.1', groupKey: { 'user.name': 'ann', 'client.ip': '1.1.1.1' } })
  t.equal(visit(engine, '1.1.1.1', 'ann', T0 + M).length, 0, 'seen: quiet')
  t.equal(visit(engine, '1.1.1.1', 'bob', T0 + M).length, 1, 'new for another user')
  t.equal(engine.evaluate(entry({ 'url.path': '/', 'client.ip': '9.9.9.9' }), T0).length, 0, 'not an admin page')

  const saved = JSON.parse(JSON.stringify(engine.exportState())) as unknown
  const restarted = new RuleEngine(compiled, { timestamps: 'arrival', maxSeenPerRule: 3 })
  t.same(restarted.importState(saved).restored, ['new-admin-ip'])
  t.equal(visit(restarted, '1.1.1.1', 'ann', T0 + 2 * M).length, 0, 'after a restart the value is still known')

  const back = visit(restarted, '1.1.1.1', 'bob', T0 + 8 * 24 * H)
  t.equal(back.length, 1, 'quiet for 8 days: a regression')
  t.match(back[0]!.summary, 'client.ip 1.1.1.1 is back after 7d23h quiet (regression)')

  visit(restarted, '2.2.2.2', 'ann', T0 + 8 * 24 * H)
  visit(restarted, '3.3.3.3', 'ann', T0 + 8 * 24 * H)
  t.equal(restarted.stats()[0]!.size, 3, 'bounded at maxSeen')
  t.equal(restarted.stats()[0]!.overflowed, 1, 'the least recently seen was evicted')
  t.equal(visit(restarted, '1.1.1.1', 'ann', T0 + 8 * 24 * H).length, 1, 'the evicted value (ann 1.1.1.1) is new again')
})

t.test('new_value: values quiet for forget_after are forgotten on tick', async (t) => {
  const rule: Rule = { ...base('nv'), type: 'new_value', field: 'client.ip', forget_after: H }
  const engine = new RuleEngine([{ rule, match: where('client.ip', () => true) }], { timestamps: 'arrival' })
  engine.evaluate(entry({ 'client.ip': '1.1.1.1' }), T0)
  engine.tick(T0 + 30 * M)
  t.equal(engine.stats()[0]!.size, 1)
  engine.tick(T0 + 2 * H)
  t.equal(engine.stats()[0]!.size, 0)
  t.equal(engine.evaluate(entry({ 'client.ip': '1.1.1.1' }), T0 + 2 * H).length, 1, 'forgotten: new again')
})

t.test('new_value on error.fingerprint: derived by the engine, the alert carries the exception', async (t) => {
  const rule: Rule = { ...base('new-exception'), type: 'new_value', field: 'error.fingerprint', forget_after: 30 * 24 * H }
  const engine = new RuleEngine([{ rule, match: where('error.type', () => true) }], { timestamps: 'arrival' })
  const stack = (line: number): string => `TypeError: Cannot read properties of undefined (reading 'id')\n    at getUser (/srv/app/src/users.js:${line}:5)\n    at /srv/app/node_modules/express/lib/router/layer.js:95:5`
  const error = (line: number): Entry => entry({
    'error.type': 'TypeError', 'error.message': "Cannot read properties of undefined (reading 'id')", 'error.stack_trace': stack(line),
  })
  const [first] = engine.evaluate(error(10), T0)
  t.match(first, {
    summary: "new exception TypeError: Cannot read properties of undefined (reading 'id')",
    exception: { type: 'TypeError', count: 1, firstSeen: T0, lastSeen: T0, regression: false, frames: ['src/users.js in getUser'] },
  })
  t.equal(first!.groupKey['error.fingerprint'], first!.exception!.fingerprint)
  t.equal(engine.evaluate(error(12), T0 + M).length, 0, 'the same exception from a moved line: not new')
})
