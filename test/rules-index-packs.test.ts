/**
 * The rule index leaves rules out only when they cannot match: for every built-in pack rule and
 * every entry of real traffic (the Apache corpus), of the packs' own test lines, and of encoded
 * attacks, a rule whose condition holds is among the candidates.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import type { Entry } from '../agent/entry'
import { detectFormat, parserFor } from '../agent/parsers'
import type { CompiledRule } from '../rules/compiled'
import { loadRules } from '../rules/load'
import { RuleIndex } from '../rules/rule-index'

const PACKS = join(__dirname, '..', 'rules', 'packs')

function concerns(compiled: CompiledRule, entry: Entry): boolean {
  if (compiled.rule.type === 'ratio') return compiled.base!.test(entry)
  return compiled.match.test(entry) || (compiled.end?.test(entry) ?? false)
}

/** Every `line:` of the packs' test files, and the Apache corpus, as entries. */
function entries(): Entry[] {
  const lines: string[] = readFileSync(join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log'), 'utf8').split('\n').filter(Boolean)
  for (const file of readdirSync(PACKS).filter((f) => f.endsWith('.test.yaml'))) {
    const doc = parseYaml(readFileSync(join(PACKS, file), 'utf8')) as { tests?: Array<{ input?: Array<{ line?: string; entry?: unknown }> }> }
    for (const test of doc.tests ?? []) {
      for (const input of test.input ?? []) {
        if (typeof input.line === 'string') lines.push(input.line)
        if (input.entry !== undefined) lines.push(JSON.stringify(input.entry))
      }
    }
  }
  // Encoded and mixed-case attacks, and non-ASCII look-alikes.
  lines.push(
    '1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /search?q=%2527%2520UNION%2520SeLeCt%2520password%2520from%2520users-- HTTP/1.1" 200 1 "-" "curl/8"',
    '1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /p?x=%3CScRiPt%3Ealert(1)%3C/script%3E HTTP/1.1" 200 1 "-" "Mozilla/5.0"',
    '1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1" 404 1 "-" "Mozilla/5.0"',
    '1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /a?s=ſelect HTTP/1.1" 200 1 "-" "ſqlmap/1.7"',
  )
  return lines.map((line, i) => {
    const format = detectFormat([line])
    const res = parserFor(format)(line, { timezone: 'UTC' })
    const e: Entry = { sourceId: 'p', offset: i, end: i + 1, text: line, fields: res.fields }
    if (res.object !== undefined) e.object = res.object
    return e
  })
}

t.test('every built-in rule whose condition holds is a candidate', async (t) => {
  const { rules, problems } = loadRules([PACKS])
  t.same(problems.map((p) => p.message), [])
  const index = new RuleIndex(rules)
  let checked = 0
  let matched = 0
  const missed: string[] = []
  for (const entry of entries()) {
    const candidates = new Set(index.candidates(entry).map((c) => c.rule.id))
    for (const rule of rules) {
      checked++
      if (!concerns(rule, entry)) continue
      matched++
      if (!candidates.has(rule.rule.id)) missed.push(`${rule.rule.id}: ${entry.text.slice(0, 120)}`)
    }
  }
  t.ok(matched > 50, `conditions held ${matched} times in ${checked} checks`)
  t.same(missed, [], 'no rule whose condition holds was left out')
})
