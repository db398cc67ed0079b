/**
 * `rules.disable`: a rule named there stays loaded but is never evaluated; an id no rule has is
 * reported with the closest one (rules/disable.ts, and the configuration that carries it).
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from '@elastic/elasticsearch'
import pino from 'pino'
import t from 'tap'
import { Alerting } from '../agent/alerting'
import { checkConfig, loadConfig } from '../agent/config/load'
import type { Entry } from '../agent/entry'
import { parserFor } from '../agent/parsers'
import { disableRules } from '../rules/disable'
import { RuleEngine } from '../rules/engine'
import { loadRules } from '../rules/load'
import { RuleIndex } from '../rules/rule-index'
import { agentConfig, scenario } from './support/agent-harness'

const packs = loadRules([join(__dirname, '..', 'rules', 'packs')])

/** A 503 on a payment path: the built-in http-5xx-critical-path rule fires on it. */
function failedPayment(i: number): Entry {
  const text = JSON.stringify({ level: 50, time: 1_763_700_000_000 + i, msg: 'request completed', req: { method: 'POST', url: '/api/payments' }, res: { statusCode: 503 } })
  const r = parserFor('json')(text, { timezone: 'UTC' })
  return { sourceId: 's', offset: i * 200, end: i * 200 + 199, text, fields: r.fields, object: r.object, flat: r.flat, plain: r.plain, flags: undefined, source: { 'service.name': 'shop' } }
}

function firedRules(rules: Parameters<typeof disableRules>[0]): string[] {
  const engine = new RuleEngine(rules, { index: (r) => new RuleIndex(r), sourceFields: (e) => e.source })
  const fired = new Set<string>()
  for (let i = 0; i < 20; i++) for (const e of engine.evaluate(failedPayment(i), 1_763_700_000_000 + i)) fired.add(e.ruleId)
  return [...fired].sort()
}

t.test('a disabled rule is loaded but not evaluated; the others run as before', async (t) => {
  t.same(packs.problems, [])
  t.ok(firedRules(packs.rules).includes('http-5xx-critical-path'), 'it fires when not disabled')
  const { rules, unknown } = disableRules(packs.rules, ['http-5xx-critical-path'])
  t.same(unknown, [])
  t.equal(rules.length, packs.rules.length, 'still loaded')
  t.equal(rules.find((c) => c.rule.id === 'http-5xx-critical-path')?.rule.enabled, false)
  t.same(firedRules(rules), firedRules(packs.rules).filter((id) => id !== 'http-5xx-critical-path'), 'every other rule fires as before')
  t.equal(packs.rules.find((c) => c.rule.id === 'http-5xx-critical-path')?.rule.enabled, true, 'the loaded rule itself is not changed (a reload starts from it)')
  t.equal(disableRules(packs.rules, []).rules, packs.rules, 'nothing to disable: the same list')
})

t.test('an id no rule has is reported, with the closest id when there is one', async (t) => {
  const { unknown } = disableRules(packs.rules, ['http-5xx-rato', 'no-such-thing-at-all', 'http-5xx-ratio'])
  t.same(unknown, [{ id: 'http-5xx-rato', suggestion: 'http-5xx-ratio' }, { id: 'no-such-thing-at-all' }])
})

t.test('the configuration takes rules.disable as a list of rule ids', async (t) => {
  const base = 'service: { name: shop }\ninputs: [{ type: file, paths: ["./*.log"] }]\n'
  const dir = t.testdir({ 'ok.yaml': base + 'rules: { disable: [http-5xx-ratio, security-xss] }\n', 'bad.yaml': base + 'rules: { disable: [HTTP 5xx] }\n' })
  t.same(loadConfig(join(dir, 'ok.yaml')).rules.disable, ['http-5xx-ratio', 'security-xss'])
  const problems = checkConfig(join(dir, 'bad.yaml')).problems.map((p) => p.format().split(dir + '/').join(''))
  t.equal(problems.length, 1)
  t.match(problems[0], /^bad\.yaml:3:20: LW_CONFIG_VALUE: rules\.disable\[0\]/)
})

t.test('the agent evaluates without the disabled rule and warns of an id no rule has', async (t) => {
  const lines: string[] = []
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(s) } })
  const s = scenario('disable')
  t.teardown(() => rmSync(s.dir, { recursive: true, force: true }))
  const cfg = agentConfig(s, 'http://127.0.0.1:1', [])
  cfg.rules = { builtin: ['http'], paths: [], disable: ['http-5xx-critical-path', 'http-5xx-rato'] }
  const client = new Client({ node: 'http://127.0.0.1:1' })
  const alerting = new Alerting(cfg, log, client)
  t.teardown(() => alerting.close(Date.now()))
  t.same(await alerting.load(), [])
  const warning = lines.map((l) => JSON.parse(l) as { msg: string }).find((l) => l.msg.startsWith('LW_RULE_DISABLE_UNKNOWN'))
  t.match(warning?.msg, /names "http-5xx-rato", which no loaded rule has; did you mean "http-5xx-ratio"\?/)
  const events = []
  for (let i = 0; i < 20; i++) events.push(...alerting.engine.evaluate(failedPayment(i), 1_763_700_000_000 + i))
  t.same(events.filter((e) => e.ruleId === 'http-5xx-critical-path'), [], 'the disabled rule never fires')
  t.ok(alerting.ruleCount > 1, 'the rest of the pack is loaded')
})
