import { join } from 'node:path'
import t from 'tap'
import { rulesCheck } from '../rules/check'

const fixtures = join(__dirname, 'fixtures', 'rules')

t.test('valid rule files: ok, and a summary', async (t) => {
  const result = rulesCheck([join(fixtures, 'good')])
  t.equal(result.ok, true)
  t.equal(result.output, '6 rules in 2 files OK')
  t.same(rulesCheck([join(fixtures, 'good', 'http.yaml')]), { ok: true, output: '2 rules in 1 file OK' })
})

t.test('any problem: not ok, every problem printed, then a summary', async (t) => {
  const result = rulesCheck([join(fixtures, 'good'), join(fixtures, 'dup'), join(fixtures, 'nowhere')])
  t.equal(result.ok, false)
  t.same(result.output.split(fixtures + '/').join('').split('\n'), [
    'nowhere: LW_RULE_READ: nowhere: not found. Give a rule file (.yaml) or a directory of them.',
    'dup/b.yaml:5:9: LW_RULE_DUPLICATE_ID: rules[1].id: "same" is already the id of the rule at dup/a.yaml:2:9. Rule ids must be unique across all rule files: rename one of them.',
    '2 problems (8 rules in 4 files loaded without one)',
  ])
})

t.test('the built-in packs pass', async (t) => {
  const result = rulesCheck([join(__dirname, '..', 'rules', 'packs')])
  t.equal(result.ok, true, result.output)
  t.match(result.output, /^\d+ rules in \d+ files OK$/)
})

t.test('no path given is a mistake, not an empty success', async (t) => {
  t.same(rulesCheck([]), { ok: false, output: 'LW_RULE_READ: no rule files given. Pass rule files or directories: logwarden rules check rules/ my-rules.yaml' })
})
