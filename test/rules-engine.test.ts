/**
 * The rule engine as a whole: state saved in the middle of a window and restored continues
 * exactly (no re-fire, no lost count); a replay gives identical event ids; a reload keeps the
 * state of unchanged rules; the index narrows the rules tried; entries count at their own time
 * when it is believable; one broken rule does not stop the others.
 */
import t from 'tap'
import type { Entry, FieldValue } from '../agent/entry'
import type { CompiledRule } from '../rules/compiled'
import { RuleEngine, stateSignature } from '../rules/engine'
import type { AlertEvent, Rule } from '../rules/model'
import { RuleIndex } from '../rules/rule-index'
import { H, M, ruleBase, S, T0, where } from './support/rules'

function base(id: string): Omit<Rule, 'type'> {
  return ruleBase(id, { severity: 'error', resolve: true })
}

const is5xx = where('http.response.status_code', (v) => (v as number) >= 500)

function entryAt(offset: number, fields: Record<string, FieldValue>, sourceId = 'file-1'): Entry {
  return { sourceId, offset, end: offset + 100, text: '', fields }
}

const frequency = (threshold: number): CompiledRule => ({
  rule: { ...base('burst'), type: 'frequency', threshold, window: 5 * M, group_by: ['client.ip'] },
  match: is5xx,
})

/** Runs entries (one per 10s, ticking every second) through an engine; returns what fired. */
function run(engine: RuleEngine, entries: Entry[], start: number): AlertEvent[] {
  const out: AlertEvent[] = []
  let now = start
  for (const e of entries) {
    out.push(...engine.evaluate(e, now))
    for (let i = 0; i < 10; i++) {
      now += S
      out.push(...engine.tick(now))
    }
  }
  return out
}

const errors = (from: number, n: number): Entry[] =>
  Array.from({ length: n }, (_, i) => entryAt((from + i) * 100, { 'http.response.status_code': 500, 'client.ip': '10.1.1.1' }))

t.test('export/import in the middle of a window: the count carries on, no re-fire, same ids', async (t) => {
  const rules = [frequency(10)]
  const straight = run(new RuleEngine(rules, { timestamps: 'arrival' }), errors(0, 30), T0)
  t.equal(straight.filter((e) => e.state === 'firing').length, 1, 'one alert in 5 minutes of errors')

  // The same stream, with a restart after 6 entries (6 in the window, threshold 10).
  const before = new RuleEngine(rules, { timestamps: 'arrival' })
  const first = run(before, errors(0, 6), T0)
  t.same(first, [], 'not yet at the threshold')
  const saved = JSON.parse(JSON.stringify(before.exportState())) as unknown
  const after = new RuleEngine(rules, { timestamps: 'arrival' })
  t.same(after.importState(saved), { restored: ['burst'], discarded: [] })
  const rest = run(after, errors(6, 24), T0 + 60 * S)
  t.same(rest.map((e) => e.id), straight.map((e) => e.id), 'the same events with the same ids: no count lost')

  // A restart after the alert fired: the saved state knows it is firing.
  const firing = new RuleEngine(rules, { timestamps: 'arrival' })
  const fired = run(firing, errors(0, 12), T0)
  t.equal(fired.length, 1)
  const restored = new RuleEngine(rules, { timestamps: 'arrival' })
  restored.importState(JSON.parse(JSON.stringify(firing.exportState())))
  const continued = run(restored, errors(12, 18), T0 + 120 * S)
  t.same([...fired, ...continued].map((e) => e.id), straight.map((e) => e.id), 'no re-fire after the restart')
})

t.test('a replay of the same entries gives the same event ids', async (t) => {
  const rules: CompiledRule[] = [
    { rule: { ...base('each'), type: 'match' }, match: is5xx },
    frequency(3),
  ]
  const a = run(new RuleEngine(rules, { timestamps: 'arrival' }), errors(0, 5), T0)
  const b = run(new RuleEngine(rules, { timestamps: 'arrival' }), errors(0, 5), T0 + 7 * H)
  t.equal(a.length, 6, '5 matches and one burst')
  t.same(b.map((e) => e.id), a.map((e) => e.id))
  t.same(b.map((e) => e.fingerprint), a.map((e) => e.fingerprint))
  const elsewhere = run(new RuleEngine(rules, { timestamps: 'arrival' }), errors(0, 5).map((e) => ({ ...e, sourceId: 'file-2' })), T0)
  t.notSame(elsewhere.map((e) => e.id), a.map((e) => e.id), 'another source: other ids')
})

t.test('setRules keeps the state of unchanged rules and starts changed ones afresh', async (t) => {
  const engine = new RuleEngine([frequency(5)], { timestamps: 'arrival' })
  run(engine, errors(0, 4), T0)
  const renamed = frequency(5)
  renamed.rule = { ...renamed.rule, name: 'Burst of errors', severity: 'critical', source: 'other.yaml:9:3' }
  engine.setRules([renamed])
  const fired = engine.evaluate(errors(4, 1)[0]!, T0 + 41 * S)
  t.equal(fired.length, 1, 'the 5th error fires: the 4 before the reload were kept')
  t.equal(fired[0]!.severity, 'critical', 'the new definition is used')

  engine.setRules([frequency(6)])
  t.equal(engine.evaluate(errors(5, 1)[0]!, T0 + 42 * S).length, 0, 'threshold changed: counting starts over')
  t.not(stateSignature(frequency(5).rule), stateSignature(frequency(6).rule))
  t.equal(stateSignature(frequency(5).rule), stateSignature(renamed.rule))
})

t.test('importState drops the state of rules that changed and ignores another version', async (t) => {
  const engine = new RuleEngine([frequency(5)], { timestamps: 'arrival' })
  run(engine, errors(0, 4), T0)
  const saved = engine.exportState()
  t.same(new RuleEngine([frequency(7)]).importState(saved), { restored: [], discarded: ['burst'] })
  const report = new RuleEngine([frequency(5)]).importState({ ...saved, version: 99 })
  t.same(report.restored, [])
  t.match(report.reason, /version 99/)
})

t.test('exported state is bounded and JSON', async (t) => {
  const engine = new RuleEngine([frequency(1000)], { timestamps: 'arrival', maxGroupsPerRule: 50 })
  for (let i = 0; i < 5000; i++) engine.evaluate(entryAt(i, { 'http.response.status_code': 500, 'client.ip': `10.0.${i >> 8}.${i & 255}` }), T0 + i * 10)
  const text = JSON.stringify(engine.exportState())
  const state = JSON.parse(text) as { rules: { burst: { state: { groups: unknown[] } } } }
  t.equal(state.rules.burst.state.groups.length, 51, '50 groups and the overflow group')
  t.ok(text.length < 100_000, `small (${text.length} bytes)`)
})

t.test('the index narrows the rules tried; a stale index is not trusted after setRules', async (t) => {
  const tried: string[] = []
  const spy = (id: string): CompiledRule => ({
    rule: { ...base(id), type: 'match' },
    match: { test: () => { tried.push(id); return false }, fields: [], required: [] },
  })
  const a = spy('a')
  const b = spy('b')
  const built: CompiledRule[][] = []
  // An index answers with positions in the rules it was built for: here always the second.
  const engine = new RuleEngine([a, b], { index: (rules) => { built.push(rules); return { select: () => 1, hits: [1] } } })
  engine.evaluate(entryAt(0, {}), T0)
  t.same(tried, ['b'], 'only the candidate was tried')
  t.equal(built.length, 1)
  const c = spy('c')
  engine.setRules([a, c])
  tried.length = 0
  engine.evaluate(entryAt(0, {}), T0)
  t.same(tried, ['c'], 'the index was rebuilt for the new rules')

  const fixed = new RuleEngine([a, b], { index: { select: () => 1, hits: [0] } })
  tried.length = 0
  fixed.evaluate(entryAt(0, {}), T0)
  t.same(tried, ['a'])
  fixed.setRules([b, c])
  tried.length = 0
  fixed.evaluate(entryAt(0, {}), T0)
  t.same(tried, ['b', 'c'], 'an index object serves its own rules only: after setRules every rule is tried')
})

t.test('a rule that throws is counted and the others still run', async (t) => {
  const broken: CompiledRule = {
    rule: { ...base('broken'), type: 'match' },
    match: { test: () => { throw new Error('bad predicate') }, fields: [], required: [] },
  }
  const good: CompiledRule = { rule: { ...base('good'), type: 'match' }, match: is5xx }
  const engine = new RuleEngine([broken, good], { timestamps: 'arrival' })
  t.equal(engine.evaluate(entryAt(0, { 'http.response.status_code': 500 }), T0).length, 1)
  t.match(engine.stats().find((s) => s.id === 'broken'), { errors: 1, lastError: 'bad predicate' })
})

t.test('rules that throw, one after another and last, with the index: each counted, every other rule runs', async (t) => {
  const thrower = (id: string): CompiledRule => ({
    rule: { ...base(id), type: 'match' },
    match: { test: () => { throw new Error(`${id} failed`) }, fields: [], required: [] },
  })
  const good = (id: string): CompiledRule => ({ rule: { ...base(id), type: 'match' }, match: is5xx })
  const rules = [thrower('x1'), thrower('x2'), good('g1'), thrower('x3'), good('g2'), thrower('x4')]
  for (const index of [undefined, (r: CompiledRule[]) => new RuleIndex(r)]) {
    const engine = new RuleEngine(rules, { timestamps: 'arrival', ...(index ? { index } : {}) })
    const fired = engine.evaluate(entryAt(0, { 'http.response.status_code': 500 }), T0).map((e) => e.ruleId).sort()
    t.same(fired, ['g1', 'g2'], index ? 'with the index' : 'without')
    engine.evaluate(entryAt(1, { 'http.response.status_code': 500 }), T0)
    for (const id of ['x1', 'x2', 'x3', 'x4']) t.match(engine.stats().find((s) => s.id === id), { errors: 2, lastError: `${id} failed` })
    t.match(engine.stats().find((s) => s.id === 'g1'), { errors: 0 })
  }
})

t.test('disabled rules do not run', async (t) => {
  const off: CompiledRule = { rule: { ...base('off'), type: 'match', enabled: false }, match: is5xx }
  const engine = new RuleEngine([off])
  t.equal(engine.evaluate(entryAt(0, { 'http.response.status_code': 500 }), T0).length, 0)
  t.same(engine.stats(), [])
})

t.test('entry time: a backlog counts at its own times, not as a burst; wrong times count at arrival', async (t) => {
  const rules = [frequency(10)]
  const stamped = (i: number, at: number): Entry => entryAt(i * 100, {
    'http.response.status_code': 500, 'client.ip': '10.1.1.1', '@timestamp': new Date(at).toISOString(),
  })
  // 20 minutes of one error a minute, read in one go 20 minutes later (after a restart).
  const now = T0 + 20 * M
  const backlog = new RuleEngine(rules)
  let fired = 0
  for (let i = 0; i < 20; i++) fired += backlog.evaluate(stamped(i, T0 + i * M), now).length
  t.equal(fired, 0, 'one a minute is 5 per 5 minutes: no burst')

  const arrival = new RuleEngine(rules, { timestamps: 'arrival' })
  fired = 0
  for (let i = 0; i < 20; i++) fired += arrival.evaluate(stamped(i, T0 + i * M), now).length
  t.equal(fired, 1, 'counted at arrival the same backlog is a burst')

  const skewed = new RuleEngine(rules)
  fired = 0
  for (let i = 0; i < 20; i++) fired += skewed.evaluate(stamped(i, now - 3 * H + i * M), now).length
  t.equal(fired, 1, 'timestamps 3 hours off (a wrong zone) are not believed: counted at arrival')
})

t.test('the tick clock follows a backlog: a deadline does not fire before the end entry is read', async (t) => {
  const rule: Rule = { ...base('unverified'), type: 'absence', end: {}, key: 'deposit.id', within: 10 * M }
  const engine = new RuleEngine([{
    rule,
    match: where('event.action', (v) => v === 'created'),
    end: where('event.action', (v) => v === 'verified'),
  }])
  const now = T0 + 25 * M // reading, 25 minutes late, what was logged from T0 on
  const at = (i: number, action: string, minute: number): Entry => entryAt(i, { 'event.action': action, 'deposit.id': '7', '@timestamp': new Date(T0 + minute * M).toISOString() })
  engine.evaluate(at(1, 'created', 0), now)
  t.same(engine.tick(now + S), [], 'the clock is at the backlog time, not at now: the deadline has not passed')
  engine.evaluate(at(2, 'verified', 8), now + 2 * S)
  t.same(engine.tick(now + 11 * M), [], 'verified within 10 minutes: never fires')

  const late = new RuleEngine([{ rule, match: where('event.action', (v) => v === 'created'), end: where('event.action', (v) => v === 'verified') }])
  late.evaluate(at(1, 'created', 0), now)
  t.same(late.tick(now + 4 * M), [], 'the clock catches up at twice the wall speed: 8 minutes after the start')
  const fired = late.tick(now + 5 * M)
  t.equal(fired.length, 1, 'with no end read, the deadline passes as the clock catches up')
  t.equal(fired[0]!.at, T0 + 10 * M, 'at the deadline')
})

t.test('events carry redacted key fields, the exception with its history, and source fields', async (t) => {
  const rule: Rule = { ...base('exc'), type: 'match' }
  const engine = new RuleEngine([{ rule, match: where('error.type', () => true) }], {
    timestamps: 'arrival',
    sourceFields: () => ({ 'service.name': 'billing', 'host.name': 'pay-1' }),
  })
  const e = (i: number): Entry => entryAt(i, {
    'error.type': 'OperationalError',
    'error.message': 'connection to postgres://app:pw@10.0.0.5/db failed',
    'url.query': 'token=abc',
  })
  const [first] = engine.evaluate(e(0), T0)
  t.match(first, {
    fields: { 'service.name': 'billing', 'host.name': 'pay-1', 'url.query': 'token=[REDACTED]', 'error.message': 'connection to postgres://app:[REDACTED]@10.0.0.5/db failed' },
    exception: { type: 'OperationalError', count: 1, firstSeen: T0, regression: false },
    summary: 'OperationalError: connection to postgres://app:[REDACTED]@10.0.0.5/db failed',
  })
  const [second] = engine.evaluate(e(100), T0 + M)
  t.match(second!.exception, { count: 2, firstSeen: T0, lastSeen: T0 + M, fingerprint: first!.exception!.fingerprint })
})
