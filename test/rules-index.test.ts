import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Entry } from '../agent/entry'
import { parserFor } from '../agent/parsers'
import type { CompiledRule } from '../rules/compiled'
import { loadRuleText } from '../rules/load'
import { requiredFields, RuleIndex } from '../rules/rule-index'

function load(yaml: string): CompiledRule[] {
  const { rules, problems } = loadRuleText(yaml, 'index.yaml')
  if (problems.length > 0) throw new Error(problems.map((p) => p.format()).join('\n'))
  return rules
}

function corpus(): Entry[] {
  const parse = parserFor('access')
  const text = readFileSync(join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log'), 'utf8')
  return text.split('\n').filter((l) => l.length > 0).map((line, i) => ({ sourceId: 'c', offset: i, end: i + 1, text: line, fields: parse(line, { timezone: 'UTC' }).fields }))
}

/** Whether the rule needs to see the entry: its condition (or, for ratio, the base; for absence, the start or the end) holds. */
function concerns(compiled: CompiledRule, entry: Entry): boolean {
  if (compiled.rule.type === 'ratio') return compiled.base!.test(entry)
  return compiled.match.test(entry) || (compiled.end?.test(entry) ?? false)
}

const RULES = `
rules:
  - { id: status-5xx, type: match, query: 'http.response.status_code >= 500' }
  - { id: get-404, type: match, query: 'http.request.method: GET and http.response.status_code: 404' }
  - { id: head-or-options, type: match, query: 'http.request.method: (HEAD or OPTIONS)' }
  - { id: status-text, type: match, when: { field: http.response.status_code, equals: "304" } }
  - { id: bot, type: match, query: 'user_agent.original: /bot|crawler/i' }
  - { id: either, type: match, query: 'url.query: * or http.request.referrer: *semicomplete*' }
  - { id: no-referrer, type: match, when: { field: http.request.referrer, exists: false } }
  - { id: not-get, type: match, query: 'not http.request.method: GET' }
  - { id: method-any-case, type: match, when: { field: http.request.method, equals: post, ignore_case: true } }
  - { id: pino-only, type: match, query: 'req.method: DELETE' }
  - { id: disabled, type: match, enabled: false, query: 'http.response.status_code: 200' }
  - { id: ratio, type: ratio, base: { query: 'http.request.method: GET' }, query: 'http.response.status_code >= 400', threshold: 0.1, window: 5m }
  - { id: absence, type: absence, query: 'url.path: /favicon.ico', end: { query: 'url.path: /robots.txt' }, key: client.ip, within: 1h }
  - { id: new-ip, type: new_value, query: 'url.path: /admin*', field: client.ip }
`

t.test('every rule that concerns an entry is a candidate, on real traffic', async (t) => {
  const rules = load(RULES)
  const index = new RuleIndex(rules)
  t.equal(index.size, rules.length - 1, 'the disabled rule is not indexed')
  const entries = corpus()
  let missed = 0
  let disabled = 0
  let candidates = 0
  const concerned = new Map<string, number>()
  const offered = new Map<string, number>()
  for (const entry of entries) {
    const found = new Set(index.candidates(entry).map((c) => c.rule.id))
    candidates += found.size
    for (const id of found) offered.set(id, (offered.get(id) ?? 0) + 1)
    if (found.has('disabled')) disabled++
    for (const rule of rules) {
      if (!rule.rule.enabled || !concerns(rule, entry)) continue
      concerned.set(rule.rule.id, (concerned.get(rule.rule.id) ?? 0) + 1)
      if (!found.has(rule.rule.id)) missed++
    }
  }
  t.equal(missed, 0, 'no rule that concerns an entry is left out')
  t.equal(disabled, 0, 'a disabled rule never is a candidate')
  for (const id of ['status-5xx', 'get-404', 'head-or-options', 'status-text', 'bot', 'either', 'no-referrer', 'not-get', 'method-any-case', 'ratio', 'absence']) {
    t.ok((concerned.get(id) ?? 0) > 0, `${id} concerns some entries (${concerned.get(id) ?? 0})`)
  }
  // Rules filed by value are offered exactly where the value is.
  t.equal(offered.get('head-or-options'), concerned.get('head-or-options'))
  t.equal(offered.get('status-text'), concerned.get('status-text'))
  t.equal(offered.get('pino-only'), undefined, 'a field access logs do not have')
  t.equal(offered.get('absence'), concerned.get('absence'), 'a correlated absence rule is filed under the values of its start and its end')
  t.comment(`${(candidates / entries.length).toFixed(2)} candidates per entry of ${index.size} rules`)
})

t.test('rules are found by the values they need, and by the fields they need', async (t) => {
  const rules = load(RULES)
  const index = new RuleIndex(rules)
  const ids = (fields: Entry['fields'], object?: Record<string, unknown>): string[] => {
    const e: Entry = { sourceId: 's', offset: 0, end: 1, text: '', fields }
    if (object !== undefined) e.object = object
    return index.candidates(e).map((c) => c.rule.id).sort()
  }
  // Always: the rules that need no field (not-get, no-referrer).
  const always = ['no-referrer', 'not-get']
  t.same(ids({}), always)
  // either (`url.query: * or referrer: *semicomplete*`): each branch needs its field, one of
  // them its text, so it is a candidate only where one branch can hold.
  t.same(ids({ 'url.query': 'a=1' }), [...always, 'either'].sort(), 'an any: the presence of one branch\'s field')
  t.same(ids({ 'http.request.referrer': 'http://semicomplete.com/x' }), [...always, 'either'].sort(), 'or the literal of the other')
  t.same(ids({ 'http.request.referrer': 'http://example.com/' }), always, 'neither: not a candidate')
  t.same(ids({ 'http.request.method': 'PUT', 'http.response.status_code': 200 }), always,
    'status-5xx is filed by its range: not for 200; method-any-case ignores case, so by literal: not for PUT')
  t.same(ids({ 'http.response.status_code': 500 }), [...always, 'status-5xx'].sort(), 'the range: its bound is in')
  t.same(ids({ 'http.response.status_code': '503' }), [...always, 'status-5xx'].sort(), 'text that reads as a number in the range')
  t.same(ids({ 'http.response.status_code': ['200', '502'] as unknown as string }), [...always, 'status-5xx'].sort(), 'an array with one element in the range')
  t.same(ids({ 'http.response.status_code': 'n/a' }), always, 'text that is not a number is in no range')
  t.same(ids({ 'http.request.method': 'Post' }), [...always, 'method-any-case'].sort(), 'method-any-case for any spelling of post')
  t.same(ids({ 'http.request.method': 'GET', 'http.response.status_code': 404 }), [...always, 'get-404', 'ratio'].sort())
  t.same(ids({ 'http.request.method': 'HEAD', 'http.response.status_code': '304' }), [...always, 'head-or-options', 'status-text'].sort())
  t.same(ids({ 'http.response.status_code': 304 }), [...always, 'status-text'].sort(), '304 and "304" are the same value')
  // new-ip (url.path: /admin*, a prefix) is filed by literal: only paths containing /admin.
  t.same(ids({ 'url.path': '/favicon.ico' }), [...always, 'absence'].sort(), 'the start of an absence rule')
  t.same(ids({ 'url.path': '/robots.txt' }), [...always, 'absence'].sort(), 'and its end')
  t.same(ids({ 'url.path': '/index.html' }), always, 'a path without the literal: the prefix rule is not a candidate')
  t.same(ids({ 'url.path': '/ADMIN/x' }), always, 'the literal in another case: the prefix test, which minds case, judges the text')
  t.same(ids({ 'url.path': '/admin/x' }), [...always, 'new-ip'].sort(), 'new_value: not its watched field, which the engine may derive')
  t.same(ids({ 'url.path': '/ädmin/x' }), always, 'non-ASCII text: the tests of every literal-filed rule judge it')
  t.same(ids({ 'user_agent.original': 'Googlebot/2.1' }), [...always, 'bot'].sort(), 'a regex ignoring case: its literal in another case')
  t.same(ids({ 'user_agent.original': 'ſearchBOT' }), [...always, 'bot'].sort(), 'and in text with non-ASCII characters')
  t.same(ids({}, { req: { method: 'DELETE' } }), [...always, 'pino-only'].sort(), 'values in the JSON object are found')
  t.same(ids({ 'http.request.method': ['OPTIONS', 'HEAD'] as unknown as string }), [...always, 'head-or-options'].sort(),
    'an array value: once, however many elements match')
})

t.test('ranges: open and closed bounds, both ends, and what is not a range', async (t) => {
  const index = new RuleIndex(load(`
rules:
  - { id: over-5, type: match, when: { field: n, gt: 5 } }
  - { id: from-5, type: match, when: { field: n, gte: 5 } }
  - { id: between, type: match, when: { all: [ { field: n, gt: 1 }, { field: n, lt: 3 } ] } }
  - { id: text-bound, type: match, when: { field: n, gt: "b" } }
  - { id: decoded, type: match, when: { field: n, gte: 5, decode: true } }
`))
  const ids = (n: unknown): string[] => index.candidates({ sourceId: 's', offset: 0, end: 1, text: '', fields: { n: n as string } }).map((c) => c.rule.id).sort()
  t.same(ids(5), ['decoded', 'from-5', 'text-bound'], 'gt leaves its bound out, gte keeps it')
  t.same(ids(5.5), ['decoded', 'from-5', 'over-5', 'text-bound'])
  t.same(ids(2), ['between', 'decoded', 'text-bound'], 'two bounds from an all')
  t.same(ids(3), ['decoded', 'text-bound'], 'lt leaves its bound out')
  t.same(ids('%35'), ['decoded', 'text-bound'], 'a decoded field is not filed by range: its text may decode into one')
})

t.test('buckets: every field a rule needs must be there, a field shared by buckets is read once per entry', async (t) => {
  const index = new RuleIndex(load(`
rules:
  - { id: query-and-referrer, type: match, query: 'url.query: * and http.request.referrer: *' }
  - { id: query-and-ip, type: match, query: 'url.query: * and client.ip: *' }
  - { id: ip-only, type: match, when: { field: client.ip, exists: true } }
`))
  const reads = new Map<string, number>()
  const counted = (fields: Record<string, string | null>): Entry['fields'] => new Proxy(fields as Entry['fields'], {
    get: (target, key) => {
      if (typeof key === 'string') reads.set(key, (reads.get(key) ?? 0) + 1)
      return Reflect.get(target, key)
    },
  })
  const ids = (fields: Record<string, string | null>): string[] =>
    index.candidates({ sourceId: 's', offset: 0, end: 1, text: '', fields: counted(fields) }).map((c) => c.rule.id).sort()
  t.same(ids({}), [], 'none of the fields: no rule')
  t.same(ids({ 'url.query': 'a=1' }), [], 'one of two fields is not enough')
  t.same(ids({ 'url.query': 'a=1', 'client.ip': '10.0.0.1' }), ['ip-only', 'query-and-ip'])
  t.same(ids({ 'url.query': 'a=1', 'http.request.referrer': 'http://x/', 'client.ip': '10.0.0.1' }), ['ip-only', 'query-and-ip', 'query-and-referrer'])
  t.same(ids({ 'client.ip': null, 'url.query': 'a=1', 'http.request.referrer': 'http://x/' }), ['query-and-referrer'], 'null is not there')
  reads.clear()
  ids({ 'url.query': 'a=1', 'http.request.referrer': 'http://x/', 'client.ip': '10.0.0.1' })
  t.equal(reads.get('url.query'), 1, 'url.query, needed by two buckets, is read once')
  t.equal(reads.get('client.ip'), 1, 'client.ip, needed by two buckets, is read once')
})

t.test('fields are found where the rules find them: parsed fields, the JSON object (nested or dotted), the source', async (t) => {
  const index = new RuleIndex(load(`
rules:
  - { id: by-value, type: match, when: { field: http.request.method, equals: DELETE } }
  - { id: by-literal, type: match, when: { field: url.path, contains: /admin } }
  - { id: by-range, type: match, when: { field: http.response.status_code, gte: 500 } }
  - { id: by-presence, type: match, query: 'labels.tenant: * and client.ip: *' }
  - { id: inherited-name, type: match, when: { field: constructor, equals: x } }
`))
  const ids = (fields: Entry['fields'], object?: Record<string, unknown>, source?: Entry['source']): string[] => {
    const e: Entry = { sourceId: 's', offset: 0, end: 1, text: '', fields }
    if (object !== undefined) e.object = object
    if (source !== undefined) e.source = source
    return index.candidates(e).map((c) => c.rule.id).sort()
  }
  t.same(ids({ 'http.request.method': 'DELETE' }), ['by-value'], 'a parsed field')
  t.same(ids({}, { http: { request: { method: 'DELETE' } } }), ['by-value'], 'nested in the JSON object')
  t.same(ids({}, { 'http.request.method': 'DELETE' }), ['by-value'], 'under a dotted key')
  t.same(ids({}, { http: { 'request.method': 'DELETE' } }), ['by-value'], 'a mix of both')
  t.same(ids({}, { url: { path: '/admin/users' } }), ['by-literal'])
  t.same(ids({}, { http: { response: { status_code: 503 } } }), ['by-range'])
  t.same(ids({ 'client.ip': '10.0.0.1' }, undefined, { 'labels.tenant': 'acme' }), ['by-presence'], 'one field parsed, one from the source')
  t.same(ids({ 'client.ip': '10.0.0.1' }, { labels: { tenant: null } }), [], 'null is not there')
  t.same(ids({ 'http.request.method': 'GET' }, { http: { request: { method: 'DELETE' } } }), [], 'a parsed field comes first')
  t.same(ids({}, {}), [], 'nothing read from Object.prototype (constructor)')
  t.same(ids({}, { constructor: 'x' }), ['inherited-name'], 'an own member named like one is read')
})

t.test('an index of rules that need nothing: every one is always a candidate', async (t) => {
  const index = new RuleIndex(load(`
rules:
  - { id: not-get, type: match, query: 'not http.request.method: GET' }
  - { id: no-referrer, type: match, when: { field: http.request.referrer, exists: false } }
`))
  t.same(index.candidates({ sourceId: 's', offset: 0, end: 1, text: '', fields: {} }).map((c) => c.rule.id).sort(), ['no-referrer', 'not-get'])
  t.same(new RuleIndex([]).candidates({ sourceId: 's', offset: 0, end: 1, text: '', fields: {} }), [], 'no rules at all')
})

t.test('requiredFields by rule type', async (t) => {
  const rules = load(RULES)
  const byId = new Map(rules.map((r) => [r.rule.id, r]))
  t.same(requiredFields(byId.get('ratio')!), ['http.request.method'], 'ratio: the base')
  t.same(requiredFields(byId.get('absence')!), ['url.path'], 'absence: what start and end both need')
  t.same(requiredFields(byId.get('new-ip')!), ['url.path'], 'new_value: its condition only')
  t.same(requiredFields(byId.get('either')!), [])
})

t.test('a literal in the text is not enough: the test it comes from must hold', async (t) => {
  const rules = load(`
rules:
  - id: shell
    type: match
    when:
      any:
        - { field: url.query, decode: true, ignore_case: true, regex: '(;|\\|)\\s*id\\b' }
        - { field: user_agent.original, decode: true, ignore_case: true, regex: '(;|\\|)\\s*id\\b' }
  - id: login-failures
    type: match
    when:
      any:
        - { field: event.outcome, equals: failure, ignore_case: true }
        - all:
            - { field: http.request.method, equals: POST }
            - { field: http.response.status_code, in: [401, 403] }
  - id: five-hundred-text
    type: match
    when:
      any:
        - { field: http.response.status_code, equals: "500", ignore_case: true }
        - { field: message, contains: boom }
`)
  const index = new RuleIndex(rules)
  const ids = (fields: Entry['fields']): string[] =>
    index.candidates({ sourceId: 's', offset: 0, end: 1, text: '', fields }).map((c) => c.rule.id).sort()
  const browser = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0'
  t.same(ids({ 'user_agent.original': browser }), [], 'a browser\'s user agent has a ";" and no command')
  t.same(ids({ 'user_agent.original': browser, 'url.query': 'q=1%3B%20ID' }), ['shell'], 'a decoded query with one')
  t.same(ids({ 'user_agent.original': '() ; id' }), ['shell'], 'a user agent with one')
  t.notOk(ids({ 'http.request.method': 'POST', 'http.response.status_code': 200 }).includes('login-failures'),
    'an equality in one branch of an any is looked up by value: the status, not the method half the requests have')
  t.ok(ids({ 'http.request.method': 'POST', 'http.response.status_code': 401 }).includes('login-failures'))
  t.same(ids({ 'event.outcome': 'FAILURE' }), ['login-failures'], 'the other branch, by its literal')
  t.same(ids({ 'http.response.status_code': 500 }), ['five-hundred-text'],
    'an equality with text that reads as a number matches the number, which a text scan never sees')
  t.same(ids({ message: 'boom' }), ['five-hundred-text'])
  // The gates never leave out a rule that holds.
  for (const fields of [{ 'url.query': 'x=|id' }, { 'http.request.method': 'POST', 'http.response.status_code': '403' }, { 'http.response.status_code': '500' }] as Array<Entry['fields']>) {
    const entry: Entry = { sourceId: 's', offset: 0, end: 1, text: '', fields }
    const found = new Set(index.candidates(entry).map((c) => c.rule.id))
    for (const rule of rules) if (rule.match.test(entry)) t.ok(found.has(rule.rule.id), `${rule.rule.id} holds for ${JSON.stringify(fields)} and is a candidate`)
  }
})
