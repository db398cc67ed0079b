/**
 * `logwarden rules test`: promtool-style rule tests on real log lines and a virtual clock —
 * passing and failing tests and what the output says about them, "must not fire", counts, group
 * keys, resolved notices, deadlines on the virtual clock, and mistakes in the test file itself.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { loadRules } from '../rules/load'
import { ruleTestsCli, runRuleTests } from '../rules/test-runner'

const RULES = `rules:
  - id: http-5xx-burst
    type: frequency
    query: 'http.response.status_code >= 500'
    threshold: 5
    window: 1m
    group_by: [client.ip]
    resolve: true
  - id: python-error
    type: match
    when: { field: log.level, equals: error }
  - id: deposit-unverified
    type: absence
    query: 'event.action: deposit.created'
    end: { query: 'event.action: deposit.verified' }
    key: deposit.id
    within: 2h
`

const access = (ip: string, status: number): string =>
  `'${ip} - - [17/May/2015:10:05:03 +0000] "GET /api/orders?id=1 HTTP/1.1" ${status} 120 "-" "Mozilla/5.0"'`

function dir(t: Test, files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lw-rules-test-'))
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true })
    fs.writeFileSync(path.join(root, name), text)
  }
  return root
}

t.test('passing tests on real access lines, Python records and JSON entries', async (t) => {
  const root = dir(t, {
    'packs/http.yaml': RULES,
    'packs/http.test.yaml': `rule_files: [http.yaml]
tests:
  - name: a burst of 5xx from one client fires once, then resolves
    until: 3m
    input:
      - at: 0s
        line: ${access('10.0.0.1', 502)}
        repeat: 6
        every: 5s
      - at: 10s
        line: ${access('10.0.0.2', 503)}
    expect:
      - rule: http-5xx-burst
        group_key: { client.ip: 10.0.0.1 }
        count: 1
      - rule: http-5xx-burst
        group_key: { client.ip: 10.0.0.1 }
        state: resolved
  - name: successes never fire
    input:
      - at: 0s
        line: ${access('10.0.0.1', 200)}
        repeat: 200
    expect: []
  - name: a Python traceback is an error record
    input:
      - at: 1s
        line: |
          2024-01-05 12:00:00,123 ERROR Internal Server Error: /api
          Traceback (most recent call last):
            File "/app/shop/views.py", line 3, in get
              raise ValueError("bad")
          ValueError: bad
    expect:
      - rule: python-error
        count: 1
  - name: a deposit not verified within 2 hours fires at the deadline
    tick: 1m
    until: 3h
    input:
      - at: 0s
        entry: { event.action: deposit.created, deposit.id: 123 }
      - at: 10m
        entry: { event: { action: deposit.created }, deposit: { id: 456 } }
      - at: 30m
        entry: { event.action: deposit.verified, deposit.id: 456 }
    expect:
      - rule: deposit-unverified
        group_key: { deposit.id: 123 }
        count: 1
`,
  })
  const result = await runRuleTests(path.join(root, 'packs/http.test.yaml'), loadRules)
  t.equal(result.ok, true, result.output)
  t.match(result.output, /ok {4}a burst of 5xx from one client fires once, then resolves/)
  t.match(result.output, /4 tests, all passed/)
})

t.test('a failing test names the test, what was expected and what fired', async (t) => {
  const root = dir(t, {
    'http.yaml': RULES,
    'http.test.yaml': `rule_files: [http.yaml]
tests:
  - name: must not fire on a few errors
    input:
      - at: 0s
        line: ${access('10.9.9.9', 500)}
        repeat: 5
    expect: []
  - name: wrong count
    input:
      - at: 0s
        line: ${access('10.9.9.9', 500)}
        repeat: 5
    expect:
      - rule: http-5xx-burst
        count: 2
  - name: wrong group key
    input:
      - at: 0s
        line: ${access('10.9.9.9', 500)}
        repeat: 5
    expect:
      - rule: http-5xx-burst
        group_key: { client.ip: 10.0.0.1 }
`,
  })
  const result = await runRuleTests(path.join(root, 'http.test.yaml'), loadRules)
  t.equal(result.ok, false)
  const out = result.output
  t.match(out, /FAIL {2}must not fire on a few errors\n\s+expected nothing to fire\n\s+fired:\n\s+! http-5xx-burst \{client\.ip: 10\.9\.9\.9\} firing at \+4s: 5 matches in 1m \(threshold 5\)/)
  t.match(out, /FAIL {2}wrong count\n\s+expected http-5xx-burst firing 2 times \(.*http\.test\.yaml:15:9\), got 1/)
  t.match(out, /FAIL {2}wrong group key\n\s+expected http-5xx-burst \{client\.ip: 10\.0\.0\.1\} firing at least once .* got 0\n.*no expectation selects/)
  t.match(out, /3 tests, 3 failed/)
})

t.test('the virtual clock: a deadline one second short of passing does not fire; at it, it does', async (t) => {
  const root = dir(t, {
    'r.yaml': RULES,
    'r.test.yaml': `rule_files: [r.yaml]
tests:
  - name: before the deadline
    until: 7199s
    input: [{ at: 0s, entry: { event.action: deposit.created, deposit.id: 1 } }]
    expect: []
  - name: at the deadline
    until: 2h
    input: [{ at: 0s, entry: { event.action: deposit.created, deposit.id: 1 } }]
    expect: [{ rule: deposit-unverified, group_key: { deposit.id: 1 }, count: 1 }]
  - name: the end comes in time
    until: 5h
    input:
      - { at: 0s, entry: { event.action: deposit.created, deposit.id: 1 } }
      - { at: 7199s, entry: { event.action: deposit.verified, deposit.id: 1 } }
    expect: []
  - name: the end comes after the deadline (the clock ticked in between, as live)
    input:
      - { at: 0s, entry: { event.action: deposit.created, deposit.id: 1 } }
      - { at: 3h, entry: { event.action: deposit.verified, deposit.id: 1 } }
    expect: [{ rule: deposit-unverified, count: 1 }]
`,
  })
  const result = await runRuleTests(path.join(root, 'r.test.yaml'), loadRules)
  t.equal(result.ok, true, result.output)
  t.match(result.output, /4 tests, all passed/)
})

t.test('mistakes in the test file are reported with file:line:column and a suggestion', async (t) => {
  const root = dir(t, {
    'r.yaml': RULES,
    'r.test.yaml': `rule_files: [r.yaml]
tests:
  - name: typos
    inputs: []
    input:
      - at: soon
        line: x
        entry: { a: 1 }
      - at: 1s
        line: y
        format: nginx
    expect:
      - rule: http-5xx-burts
`,
  })
  const result = await runRuleTests(path.join(root, 'r.test.yaml'), loadRules)
  t.equal(result.ok, false)
  t.match(result.output, /r\.test\.yaml:4:5: LW_RULE_UNKNOWN_KEY: tests\[0\]\.inputs: unknown key in a rule test file\. Did you mean "input"\?/)
  t.match(result.output, /r\.test\.yaml:6:13: LW_RULE_DURATION: tests\[0\]\.input\[0\]\.at: "soon" is not a duration/)
  t.match(result.output, /LW_RULE_CONFLICT: tests\[0\]\.input\[0\]: an input needs exactly one of `line` and `entry`/)
  t.match(result.output, /r\.test\.yaml:11:17: LW_RULE_VALUE: tests\[0\]\.input\[1\]\.format: "nginx" is not a log format/)

  fs.writeFileSync(path.join(root, 'r.test.yaml'), `rule_files: [r.yaml]
tests:
  - name: unknown rule
    input: []
    expect:
      - rule: http-5xx-burts
`)
  const unknown = await runRuleTests(path.join(root, 'r.test.yaml'), loadRules)
  t.match(unknown.output, /r\.test\.yaml:6:9: LW_RULE_VALUE: no rule "http-5xx-burts" in .*r\.yaml\. Did you mean "http-5xx-burst"\?/)

  fs.writeFileSync(path.join(root, 'r.test.yaml'), 'rule_files: [r.yaml]\ntests:\n  - name: x\n   input: [\n')
  const broken = await runRuleTests(path.join(root, 'r.test.yaml'), loadRules)
  t.match(broken.output, /r\.test\.yaml:\d+:\d+: LW_RULE_SYNTAX: /)
})

t.test('rule files that do not load fail the test file with the loader\'s messages', async (t) => {
  const root = dir(t, {
    'bad.yaml': 'rules:\n  - id: x\n    type: frequncy\n    threshold: 3\n    window: 1m\n',
    'bad.test.yaml': 'rule_files: [bad.yaml]\ntests:\n  - name: t\n    input: []\n    expect: []\n',
  })
  const result = await runRuleTests(path.join(root, 'bad.test.yaml'), loadRules)
  t.equal(result.ok, false)
  t.match(result.output, /the rule files do not load; fix them first:\n\s+.*bad\.yaml:3:\d+: LW_RULE_/)
})

t.test('the CLI runs every *.test.yaml under a directory and sets the exit code', async (t) => {
  const root = dir(t, {
    'packs/http.yaml': RULES,
    'packs/http.test.yaml': `rule_files: [http.yaml]\ntests:\n  - name: quiet\n    input: [{ at: 0s, line: ${access('1.1.1.1', 200)} }]\n    expect: []\n`,
    'packs/nested/more.test.yaml': `rule_files: [../http.yaml]\ntests:\n  - name: fires\n    input: [{ at: 0s, line: ${access('1.1.1.1', 500)}, repeat: 5 }]\n    expect: [{ rule: http-5xx-burst, count: 1 }]\n`,
  })
  let output = ''
  const code = await ruleTestsCli([path.join(root, 'packs')], (text) => { output += text })
  t.equal(code, 0, output)
  t.match(output, /http\.test\.yaml\n {2}ok {4}quiet/)
  t.match(output, /more\.test\.yaml\n {2}ok {4}fires/)

  fs.writeFileSync(path.join(root, 'packs/nested/more.test.yaml'), `rule_files: [../http.yaml]\ntests:\n  - name: fires\n    input: [{ at: 0s, line: ${access('1.1.1.1', 500)}, repeat: 5 }]\n    expect: []\n`)
  t.equal(await ruleTestsCli([path.join(root, 'packs')], () => undefined), 1, 'a failing test: exit 1')
  t.equal(await ruleTestsCli([path.join(root, 'empty-dir-that-is-not-there.test.yaml')], () => undefined), 1, 'a missing file: exit 1')
  fs.mkdirSync(path.join(root, 'none'))
  t.equal(await ruleTestsCli([path.join(root, 'none')], () => undefined), 2, 'no test files: exit 2')
})
