import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Entry } from '../agent/entry'
import { loadRules, loadRuleText, ruleFiles } from '../rules/load'

const fixtures = join(__dirname, 'fixtures', 'rules')

/** Problems as printed, with the fixture directory cut from file names. */
function printed(paths: string[]): string[] {
  return loadRules(paths).problems.map((p) => p.format().split(fixtures + '/').join(''))
}

function entry(fields: Entry['fields'], object?: Record<string, unknown>): Entry {
  const e: Entry = { sourceId: 's', offset: 0, end: 1, text: '', fields }
  if (object !== undefined) e.object = object
  return e
}

t.test('the contract example loads with every default filled in and durations in ms', async (t) => {
  const { rules, problems, files } = loadRules([join(fixtures, 'good')])
  t.same(problems, [])
  t.same(files.map((f) => f.slice(fixtures.length + 1)), ['good/http.yaml', 'good/nested/more.yaml'], 'directories are searched recursively, sorted; *.test.yaml is left out')
  t.same(rules.map((r) => r.rule.id), ['http-5xx', 'http-5xx-when', 'http-5xx-ratio', 'deposit-not-verified', 'billing-silent', 'new-admin-ip'])
  const [http, when, ratio, correlated, flatline, newValue] = rules
  t.same(http!.rule, {
    id: 'http-5xx',
    name: 'HTTP 5xx responses',
    severity: 'error',
    enabled: true,
    group_by: ['service.name', 'url.path'],
    labels: { team: 'web', tier: '1' },
    route: 'default',
    group_wait: 30_000,
    group_interval: 300_000,
    realert: 600_000,
    realert_backoff: 1,
    realert_max: 3_600_000,
    resolve: true,
    source: join(fixtures, 'good/http.yaml') + ':3:5',
    query: 'http.response.status_code >= 500 and not url.path: /health*',
    template: '{{rule.name}}: {{fields.url.path}}',
    type: 'frequency',
    threshold: 10,
    window: 300_000,
  })
  t.match(when!.rule, { name: 'http-5xx-when', severity: 'warning', group_wait: 0, realert: 300_000, resolve: false, labels: {}, group_by: [] },
    'a match rule waits 0s by default; the name defaults to the id')
  t.match(ratio!.rule, { type: 'ratio', threshold: 0.05, min_count: 10, window: 600_000, group_wait: 30_000 })
  t.ok(ratio!.base, 'the ratio base is compiled')
  t.match(correlated!.rule, { type: 'absence', key: 'labels.deposit_id', within: 7_200_000 })
  t.ok(correlated!.end, 'the absence end is compiled')
  t.match(flatline!.rule, { type: 'absence', min_count: 1, window: 900_000 })
  t.notOk('min_count' in correlated!.rule, 'a correlated absence rule gets no flatline defaults')
  t.match(newValue!.rule, { type: 'new_value', enabled: false, field: 'client.ip', forget_after: 30 * 86_400_000, regression_after: 7 * 86_400_000 })

  const status = (code: number, path: string): Entry => entry({ 'http.response.status_code': code, 'url.path': path })
  for (const rule of [http!, when!]) {
    t.equal(rule.match.test(status(503, '/api')), true, `${rule.rule.id}: 503 on /api`)
    t.equal(rule.match.test(status(503, '/healthz')), false, `${rule.rule.id}: health checks are left out`)
    t.equal(rule.match.test(status(200, '/api')), false, `${rule.rule.id}: 200`)
    t.same(rule.match.required, ['http.response.status_code'])
  }
})

t.test('mistakes are reported with file:line:column, the key, and a suggestion', async (t) => {
  t.same(printed([join(fixtures, 'bad/typos.yaml')]), [
    'bad/typos.yaml:3:11: LW_RULE_VALUE: rules[0].type: "frequncy" is not a rule type (match, frequency, ratio, absence, new_value). Did you mean "frequency"?',
    'bad/typos.yaml:5:5: LW_RULE_MISSING_KEY: rules[1].threshold: required key is missing. Add "threshold:" under rules[1]: How many matches within the window fire the rule.',
    'bad/typos.yaml:7:13: LW_RULE_FIELD: rules[1].query: http.response.status_cod is not an ECS field. Did you mean "http.response.status_code"? (A field of your own belongs under a name that is not an ECS field set, e.g. labels.* or app.*.)',
    'bad/typos.yaml:7:49: LW_RULE_FIELD: rules[1].query: url.pth is not an ECS field. Did you mean "url.path"? (A field of your own belongs under a name that is not an ECS field set, e.g. labels.* or app.*.)',
    'bad/typos.yaml:8:5: LW_RULE_UNKNOWN_KEY: rules[1].thresold: unknown key. Did you mean "threshold"?',
    'bad/typos.yaml:9:13: LW_RULE_DURATION: rules[1].window: must be longer than 0. Write a number and a unit: "30s", "5m", "1h", "30d" (a plain number is milliseconds).',
    'bad/typos.yaml:12:5: LW_RULE_UNKNOWN_KEY: rules[2].threshold: not an option of match rules (only of frequency or ratio). Remove it, or set type: frequency.',
    'bad/typos.yaml:15:30: LW_RULE_UNKNOWN_KEY: rules[2].when.all[0].regexp: unknown key. Did you mean "regex"?',
    'bad/typos.yaml:16:20: LW_RULE_FIELD: rules[2].when.all[1].field: user.nmae is not an ECS field. Did you mean "user.name"? (A field of your own belongs under a name that is not an ECS field set, e.g. labels.* or app.*.)',
    'bad/typos.yaml:17:9: LW_RULE_VALUE: rules[3].id: "Bad Id" is not a valid rule id. Use lowercase letters, digits, "_", "." and "-", e.g. "bad-id".',
  ])
})

t.test('malformed conditions, queries, regexes and templates', async (t) => {
  t.same(printed([join(fixtures, 'bad/conditions.yaml')]), [
    'bad/conditions.yaml:4:11: LW_RULE_CONDITION: rules[0].when: field "url.path" has no test. Add one of equals, in, gt, gte, lt, lte, exists, contains, prefix, regex next to field:.',
    'bad/conditions.yaml:7:5: LW_RULE_MISSING_KEY: rules[1].when.field: required key is missing: equals tests a field. Add "field:" with the field it tests, e.g. { field: url.path, equals: ... }.',
    'bad/conditions.yaml:11:5: LW_RULE_CONFLICT: rules[2].when: query and when cannot be used together. Keep one: query (a Kibana query string) or when (a structured condition).',
    'bad/conditions.yaml:12:5: LW_RULE_MISSING_KEY: rules[3].query: required key is missing. Add "query:" (a Kibana query string, e.g. \'http.response.status_code >= 500\') or "when:" (a structured condition).',
    'bad/conditions.yaml:16:11: LW_RULE_TYPE: rules[4].when: expected a mapping, got a list. Wrap a list of conditions in all: [...] (every one holds) or any: [...] (at least one does).',
    'bad/conditions.yaml:19:37: LW_RULE_REGEX: rules[5].when.regex: cannot be used: lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported, because RE2 guarantees linear time. Rewrite the pattern without lookaround or backreferences (RE2 syntax), or use contains / prefix.',
    'bad/conditions.yaml:22:34: LW_RULE_QUERY: rules[6].query: this "(" is never closed. Add the missing ")".',
    // The column is that of the regex inside the double-quoted query.
    'bad/conditions.yaml:25:23: LW_RULE_REGEX: rules[7].query: cannot be used: lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported, because RE2 guarantees linear time. Rewrite the pattern without lookaround or backreferences (RE2 syntax), or use contains / prefix.',
    'bad/conditions.yaml:29:15: LW_RULE_TEMPLATE: rules[8].template: not a valid Mustache template: Unclosed section "fields" at 15. Close every {{#section}} with {{/section}} and every {{ with }}; values are written {{fields.url.path}}.',
    'bad/conditions.yaml:34:16: LW_RULE_VALUE: rules[9].threshold: must be at most 1, got 5. A ratio threshold is a share: 0.05 for 5%.',
    'bad/conditions.yaml:42:5: LW_RULE_CONFLICT: rules[10].window: applies to a flatline absence rule (no end:), not to one with end: Remove it (a correlated rule uses key and within), or remove end: for a flatline rule.',
    'bad/conditions.yaml:43:5: LW_RULE_MISSING_KEY: rules[11].key: required key is missing. Add "key:" under rules[11]: Correlated mode: the field whose value ties an end to its start (e.g. deposit.id).',
    'bad/conditions.yaml:43:5: LW_RULE_MISSING_KEY: rules[11].within: required key is missing. Add "within:" under rules[11]: Correlated mode: how long the end may take after the start.',
  ])
})

t.test('a rule with a problem is left out; the others of the file load', async (t) => {
  const { rules, problems } = loadRuleText([
    'rules:',
    '  - { id: fine, type: match, query: "a:1" }',
    '  - { id: broken, type: match, query: "a:1", colour: red }',
    '  - { id: also-fine, type: match, when: { field: a, equals: 2 } }',
  ].join('\n'), 'inline.yaml')
  t.same(rules.map((r) => r.rule.id), ['fine', 'also-fine'])
  t.same(problems.map((p) => p.format()), [
    'inline.yaml:3:46: LW_RULE_UNKNOWN_KEY: rules[1].colour: unknown key. Allowed here: id, name, description, type, severity, enabled, query, when, group_by, labels, route, template, group_wait, group_interval, realert, realert_backoff, realert_max.',
  ])
})

t.test('rule ids are unique across files', async (t) => {
  const { rules, problems } = loadRules([join(fixtures, 'dup')])
  t.same(rules.map((r) => r.rule.id), ['same', 'other'], 'the first keeps its id')
  t.same(problems.map((p) => p.format().split(fixtures + '/').join('')), [
    `dup/b.yaml:5:9: LW_RULE_DUPLICATE_ID: rules[1].id: "same" is already the id of the rule at ${join(fixtures, 'dup/a.yaml')}:2:9. Rule ids must be unique across all rule files: rename one of them.`.split(fixtures + '/').join(''),
  ])
})

t.test('YAML syntax errors, unreadable paths and files that are not rule files', async (t) => {
  const dir = t.testdir({
    'tabs.yaml': 'rules:\n\t- id: x\n',
    'dupkey.yaml': 'rules:\n  - id: a\n    id: b\n    type: match\n    query: "a:1"\n',
    'empty.yaml': '',
    'list.yaml': '- id: a\n',
  })
  const out = loadRules([dir, join(dir, 'missing.yaml')]).problems.map((p) => p.format().split(dir + '/').join(''))
  t.same(out, [
    'missing.yaml: LW_RULE_READ: missing.yaml: not found. Give a rule file (.yaml) or a directory of them.',
    'dupkey.yaml:3:5: LW_RULE_SYNTAX: Map keys must be unique. Each key may appear once in a mapping: remove or merge the repeated one.',
    'empty.yaml:1:1: LW_RULE_MISSING_KEY: rules: required key is missing. A rule file is a mapping with a list of rules: "rules:" followed by "- id: ..." items.',
    'list.yaml:1:1: LW_RULE_TYPE: (top level): expected a mapping, got a list. A rule file: a list of alert rules, evaluated on every log entry as it passes. Durations are "30s", "5m", "1h", "30d" or a number of milliseconds. Field paths are ECS names (http.response.status_code) or paths in the JSON line (req.method). Check files with `logwarden rules check PATH`.',
    'tabs.yaml:2:1: LW_RULE_SYNTAX: Tabs are not allowed as indentation. Indent with spaces, not tabs.',
  ])
})

t.test('nothing is interpolated: ${VAR} is text', async (t) => {
  const { rules, problems } = loadRuleText('rules:\n  - { id: env, type: match, query: \'message: "${HOME}"\' }\n', 'env.yaml')
  t.same(problems, [])
  t.equal(rules[0]!.match.test(entry({ message: '${HOME}' })), true)
  t.equal(rules[0]!.match.test(entry({ message: process.env['HOME'] ?? '/root' })), false)
})

t.test('ruleFiles lists a file given by name even when it is not *.yaml', async (t) => {
  const dir = t.testdir({ 'rules.txt': 'rules: []\n', sub: { 'a.yml': 'rules: []\n', '.hidden.yaml': 'x', 'a.test.yml': 'x' } })
  writeFileSync(join(dir, 'sub', 'b.YAML'), 'rules: []\n')
  const { files, problems } = ruleFiles([join(dir, 'rules.txt'), dir])
  t.same(problems, [])
  t.same(files.map((f) => f.slice(dir.length + 1)), ['rules.txt', 'sub/a.yml', 'sub/b.YAML'])
})
