/**
 * The built-in packs are read ahead at build time (scripts/prebuild-packs.js): a start loads
 * their data and positions from JSON instead of parsing their YAML. The rules must come out the
 * same, and the read-ahead must only ever stand for the exact text it was made from.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadRuleText, readAhead, READ_AHEAD_FILE, type ReadAhead } from '../rules/load'

const PACKS = join(__dirname, '..', 'rules', 'packs')
const packFiles = readdirSync(PACKS).filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))

t.test('every pack loads to the same rules, positions included, from its read-ahead as from its YAML', async (t) => {
  for (const name of packFiles) {
    const file = join(PACKS, name)
    const text = readFileSync(file, 'utf8')
    const ahead = readAhead(text, file)
    if (ahead === undefined) {
      t.fail(`${name}: no read-ahead (the pack has problems)`)
      continue
    }
    const fromYaml = loadRuleText(text, file)
    const fromAhead = loadRuleText(text, file, JSON.parse(JSON.stringify(ahead)) as ReadAhead)
    t.same(fromAhead.problems, [], `${name}: no problems`)
    t.same(fromAhead.rules.map((r) => r.rule), fromYaml.rules.map((r) => r.rule), `${name}: the same ${fromYaml.rules.length} rules, each with its source position`)
    t.ok(fromYaml.rules.every((r) => /\.yaml:\d+:\d+$/.test(r.rule.source)), `${name}: sources are file:line:column`)
  }
})

t.test('a read-ahead stands for its own text only; other text is parsed, and its problems located', async (t) => {
  const file = join(PACKS, 'http.yaml')
  const text = readFileSync(file, 'utf8')
  const ahead = readAhead(text, file)!
  // Data that differs from the text proves which one was used.
  const forged: ReadAhead = JSON.parse(JSON.stringify(ahead)) as ReadAhead
  ;(forged.data as { rules: Array<{ id: string }> }).rules[0]!.id = 'from-the-read-ahead'
  t.equal(loadRuleText(text, file, forged).rules[0]!.rule.id, 'from-the-read-ahead', 'the same text: the read-ahead is used, the YAML not parsed')
  const edited = text.replace('threshold: 0.05', 'treshold: 0.05')
  const stale = loadRuleText(edited, file, forged)
  t.not(stale.rules[0]?.rule.id, 'from-the-read-ahead', 'an edited text is not taken from a read-ahead of the old one')
  t.match(stale.problems.map((p) => `${p.where ?? ''} ${p.message}`).join('\n'), /http\.yaml:\d+:\d+ .*treshold: unknown key/, 'its problem is located in the file')
})

t.test('the build reads ahead every pack as it is now', async (t) => {
  const built = join(__dirname, '..', 'dist', 'rules', READ_AHEAD_FILE)
  if (!t.ok(existsSync(built), `${built} is there (npm test builds first; run npm run build)`)) return
  const entries = JSON.parse(readFileSync(built, 'utf8')) as Record<string, ReadAhead>
  for (const name of packFiles) {
    const sha = createHash('sha256').update(readFileSync(join(PACKS, name), 'utf8')).digest('hex')
    t.equal(entries[name]?.sha256, sha, `${name}: read ahead from its current text`)
  }
})
