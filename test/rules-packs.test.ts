/**
 * The built-in rule packs (rules/packs/*.yaml): they load with no problem (what `logwarden rules
 * check rules/packs` checks), every rule says what it is and carries its pack's label, and each
 * pack's rule tests (rules/packs/*.test.yaml, real log lines on the virtual clock) pass on the
 * real runner, as `logwarden rules test rules/packs` runs them in CI.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { rulesCheck } from '../rules/check'
import { loadRules } from '../rules/load'
import { parserFor } from '../agent/parsers'
import { RuleEngine } from '../rules/engine'
import { RuleIndex } from '../rules/rule-index'
import { ruleTestsCli, runRuleTests } from '../rules/test-runner'

const PACKS_DIR = path.join(__dirname, '..', 'rules', 'packs')
const PACKS = ['business', 'database', 'exceptions', 'external-api', 'http', 'security', 'tasks', 'websocket']

/** The pack a compiled rule came from: its `source` is `file:line:column`. */
function packOf(source: string): string {
  const file = source.replace(/:\d+:\d+$/, '')
  return path.basename(file).replace(/\.ya?ml$/, '')
}

interface TestFileShape {
  rule_files: string[]
  tests: Array<{ name: string; expect: Array<{ rule: string }> | null }>
}

t.test('the packs load with no problem (`rules check rules/packs`)', async (t) => {
  const check = rulesCheck([PACKS_DIR])
  t.equal(check.ok, true, check.output)
  t.match(check.output, /^\d+ rules in 8 files OK$/)
  const loaded = loadRules([PACKS_DIR])
  t.same(loaded.files.map((f) => path.basename(f)).sort(), PACKS.map((p) => `${p}.yaml`), 'every pack is read, and no test file as a rule file')
  t.ok(loaded.rules.length >= 30, `${loaded.rules.length} rules`)
})

t.test('every rule has a name, a description, a severity and its pack label', async (t) => {
  const rules = loadRules([PACKS_DIR]).rules
  const problems: string[] = []
  for (const { rule } of rules) {
    const pack = packOf(rule.source)
    if (!PACKS.includes(pack)) problems.push(`${rule.id}: not from a pack file (${rule.source})`)
    if (rule.name === rule.id) problems.push(`${rule.id}: no name of its own`)
    if ((rule.description ?? '').length < 40) problems.push(`${rule.id}: no description that says what it means`)
    if (!['critical', 'error', 'warning', 'info'].includes(rule.severity)) problems.push(`${rule.id}: severity ${rule.severity}`)
    if (rule.labels['pack'] !== pack) problems.push(`${rule.id}: labels.pack is ${String(rule.labels['pack'])}, not ${pack}`)
    if (!rule.enabled) problems.push(`${rule.id}: disabled`)
    // Alerts are grouped by these fields: a rule without any would make one stream of everything,
    // which only suits a correlated absence (its key makes the streams).
    if (rule.type !== 'absence' && rule.group_by.length === 0) problems.push(`${rule.id}: no group_by`)
  }
  t.same(problems, [], `${rules.length} rules checked`)
})

t.test('every pack has a test file that makes each of its rules fire and pins down silence', async (t) => {
  const rules = loadRules([PACKS_DIR]).rules
  for (const pack of PACKS) {
    const file = path.join(PACKS_DIR, `${pack}.test.yaml`)
    t.ok(fs.existsSync(file), `${pack}.test.yaml exists`)
    const doc = parse(fs.readFileSync(file, 'utf8')) as TestFileShape
    t.same(doc.rule_files, [`${pack}.yaml`], `${pack}.test.yaml tests ${pack}.yaml`)
    const expected = new Set(doc.tests.flatMap((test) => (test.expect ?? []).map((e) => e.rule)))
    for (const { rule } of rules.filter((r) => packOf(r.rule.source) === pack)) {
      t.ok(expected.has(rule.id), `${pack}.test.yaml expects ${rule.id} to fire somewhere`)
    }
    const quiet = doc.tests.filter((test) => Array.isArray(test.expect) && test.expect.length === 0)
    t.ok(quiet.length >= 1, `${pack}.test.yaml has a "must not fire" test (${quiet.length})`)
  }
})

for (const pack of PACKS) {
  t.test(`${pack}.test.yaml passes`, async (t) => {
    const result = await runRuleTests(path.join(PACKS_DIR, `${pack}.test.yaml`), loadRules)
    t.equal(result.ok, true, result.output)
    t.match(result.output, /\d+ tests?, all passed/)
  })
}

t.test('`logwarden rules test rules/packs` finds every test file and exits 0', async (t) => {
  let output = ''
  const code = await ruleTestsCli([PACKS_DIR], (text) => { output += text })
  t.equal(code, 0, output)
  for (const pack of PACKS) t.match(output, `${pack}.test.yaml`, `ran ${pack}.test.yaml`)
  t.notMatch(output, /FAIL/)
})

t.test('exception-new flags an exception back after 7 quiet days as a regression, not as new', async (t) => {
  // The rule test above counts the events; this looks at what they say.
  const engine = new RuleEngine(loadRules([path.join(PACKS_DIR, 'exceptions.yaml')]).rules, { timestamps: 'arrival', index: (rules) => new RuleIndex(rules) })
  const day = 86_400_000
  const t0 = Date.UTC(2024, 4, 21)
  const line = (order: number): string => JSON.stringify({ level: 50, time: t0, pid: 31, hostname: 'api-1',
    err: { type: 'Error', message: `payment provider returned 402 for order ${order}`, stack: `Error: payment provider returned 402 for order ${order}\n    at charge (/app/src/billing/charge.js:77:11)` },
    msg: 'charge failed' })
  let offset = 0
  const see = (text: string, at: number): string[] => {
    const parsed = parserFor('json')(text, { timezone: 'UTC' })
    const events = engine.evaluate({ sourceId: 'pack-test', offset, end: offset + text.length + 1, text, fields: parsed.fields, object: parsed.object }, at)
    offset += text.length + 1
    return events.filter((e) => e.ruleId === 'exception-new').map((e) => `${e.exception?.regression === true ? 'regression' : 'new'}: ${e.summary}`)
  }
  t.match(see(line(9912), t0), [/^new: new exception Error: payment provider returned/])
  t.same(see(line(9913), t0 + day), [], 'seen the next day: not new')
  t.match(see(line(13007), t0 + 9 * day), [/^regression: .*regression/], 'back after 8 quiet days')
  t.same(see(line(13008), t0 + 10 * day), [], 'and not again the day after')
})
