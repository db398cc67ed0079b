import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Entry } from '../agent/entry'
import { parserFor } from '../agent/parsers'
import { compileCondition } from '../rules/condition'
import type { ConditionSpec } from '../rules/model'
import { compileQuery, parseQuery } from '../rules/query'

/** 10,000 real Apache combined-format lines, parsed as the agent parses them. */
function corpus(): Entry[] {
  const parse = parserFor('access')
  const text = readFileSync(join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log'), 'utf8')
  return text.split('\n').filter((line) => line.length > 0).map((line, i) => {
    const result = parse(line, { timezone: 'UTC' })
    const e: Entry = { sourceId: 'corpus', offset: i, end: i + 1, text: line, fields: result.fields }
    if (result.object !== undefined) e.object = result.object
    return e
  })
}

function spec(query: string): ConditionSpec {
  const parsed = parseQuery(query)
  if (parsed.query === undefined) throw new Error(JSON.stringify(parsed.problems))
  return parsed.query.spec
}

function problems(query: string): string[] {
  return compileQuery(query).problems.map((p) => `${p.offset}: ${p.code}: ${p.message}. ${p.hint}`)
}

t.test('a query and the equivalent `when` select the same entries of real traffic', async (t) => {
  const entries = corpus()
  t.ok(entries.length >= 9_000, `${entries.length} entries`)
  const pairs: Array<[string, ConditionSpec]> = [
    ['http.response.status_code >= 500 and not url.path: /health*',
      { all: [{ field: 'http.response.status_code', gte: 500 }, { not: { field: 'url.path', prefix: '/health' } }] }],
    ['http.response.status_code:[400 TO 499] and http.request.method:(GET or HEAD)',
      { all: [{ field: 'http.response.status_code', gte: 400, lte: 499 }, { field: 'http.request.method', in: ['GET', 'HEAD'] }] }],
    ['url.path:*.php or user_agent.original:/(bot|crawler|spider)/i',
      { any: [{ field: 'url.path', regex: '(?s)^.*\\.php$' }, { field: 'user_agent.original', regex: '(bot|crawler|spider)', ignore_case: true }] }],
    ['url.path:/images/* and not http.response.status_code:200',
      { all: [{ field: 'url.path', prefix: '/images/' }, { not: { field: 'http.response.status_code', equals: 200 } }] }],
    ['http.request.referrer:*semicomplete* or client.ip:66.249.73.135',
      { any: [{ field: 'http.request.referrer', contains: 'semicomplete' }, { field: 'client.ip', equals: '66.249.73.135' }] }],
    ['http.response.body.bytes > 100000 or http.response.status_code:{300 TO 400}',
      { any: [{ field: 'http.response.body.bytes', gt: 100000 }, { field: 'http.response.status_code', gt: 300, lt: 400 }] }],
    ['url.query:*', { field: 'url.query', exists: true }],
  ]
  for (const [query, when] of pairs) {
    const a = compileQuery(query).condition!
    const b = compileCondition(when).condition!
    let matched = 0
    let differ = 0
    for (const e of entries) {
      const x = a.test(e)
      if (x !== b.test(e)) differ++
      if (x) matched++
    }
    t.equal(differ, 0, `${query}: same result on every entry`)
    t.ok(matched > 0 && matched < entries.length, `${query}: matches ${matched}, not none and not all`)
    t.same([...a.required].sort(), [...b.required].sort(), `${query}: same required fields`)
  }
})

t.test('the query syntax, term by term', async (t) => {
  t.same(spec('http.response.status_code >= 500 and not url.path: /health*'),
    { all: [{ field: 'http.response.status_code', gte: 500 }, { not: { field: 'url.path', prefix: '/health' } }] },
    'Kibana spellings: lower-case operators, `field >= n`, a space after the colon, a path as a value')
  t.same(spec('a:1 OR b:2 AND c:3'), { any: [{ field: 'a', equals: 1 }, { all: [{ field: 'b', equals: 2 }, { field: 'c', equals: 3 }] }] },
    'AND binds tighter than OR')
  t.same(spec('(a:1 OR b:2) AND c:3'), { all: [{ any: [{ field: 'a', equals: 1 }, { field: 'b', equals: 2 }] }, { field: 'c', equals: 3 }] })
  t.same(spec('a:1 b:2'), { all: [{ field: 'a', equals: 1 }, { field: 'b', equals: 2 }] }, 'implicit AND')
  t.same(spec('-a:1 NOT b:2'), { all: [{ not: { field: 'a', equals: 1 } }, { not: { field: 'b', equals: 2 } }] })
  t.same(spec('a:>=5 a:<10 b:>1 b:<=2'), { all: [{ field: 'a', gte: 5 }, { field: 'a', lt: 10 }, { field: 'b', gt: 1 }, { field: 'b', lte: 2 }] }, 'Lucene comparisons')
  t.same(spec('a:[1 TO 5}'), { field: 'a', gte: 1, lt: 5 })
  t.same(spec('a:[500 TO *]'), { field: 'a', gte: 500 })
  t.same(spec('@timestamp:["2024-01-01" TO "2024-02-01"}'), { field: '@timestamp', gte: '2024-01-01', lt: '2024-02-01' })
  t.same(spec('client.ip:10.0.0.1'), { field: 'client.ip', equals: '10.0.0.1' })
  t.same(spec('url.original:"http://x/a?b=1"'), { field: 'url.original', equals: 'http://x/a?b=1' })
  t.same(spec('url.original:http://x/a?b=1'), { field: 'url.original', regex: '(?s)^http:\\/\\/x\\/a.b=1$' }, 'unquoted, ? is a wildcard (as in Lucene)')
  t.same(spec('a:true b:null c:-1.5'), { all: [{ field: 'a', equals: true }, { field: 'b', equals: null }, { field: 'c', equals: -1.5 }] })
  t.same(spec('a:"quoted *text*"'), { field: 'a', equals: 'quoted *text*' }, 'no wildcards in quotes')
  t.same(spec("a:'single \\' quote'"), { field: 'a', equals: "single ' quote" })
  t.same(spec('"log.level":error'), { field: 'log.level', equals: 'error' }, 'a quoted field name')
  t.same(spec('a:pre*'), { field: 'a', prefix: 'pre' })
  t.same(spec('a:*mid*'), { field: 'a', contains: 'mid' })
  t.same(spec('a:*end'), { field: 'a', regex: '(?s)^.*end$' })
  t.same(spec('a:f?o*.js'), { field: 'a', regex: '(?s)^f.o.*\\.js$' })
  t.same(spec('a:*'), { field: 'a', exists: true })
  t.same(spec('a:x\\*y'), { field: 'a', equals: 'x*y' }, 'an escaped wildcard is literal')
  t.same(spec('message:connection\\ refused'), { field: 'message', equals: 'connection refused' })
  t.same(spec('a:/ab+c/'), { field: 'a', regex: 'ab+c' })
  t.same(spec('a:/ab+c/i'), { field: 'a', regex: 'ab+c', ignore_case: true })
  t.same(spec('a:/a.b/s'), { field: 'a', regex: '(?s)a.b' })
  t.same(spec('a:/a\\/b/'), { field: 'a', regex: 'a/b' })
  t.same(spec('url.path:/api/v1/*'), { field: 'url.path', prefix: '/api/v1/' }, 'a path is not a regex')
  t.same(spec('a:(x or y or z)'), { any: [{ field: 'a', equals: 'x' }, { field: 'a', equals: 'y' }, { field: 'a', equals: 'z' }] })
  t.same(spec('a:(x and not y)'), { all: [{ field: 'a', equals: 'x' }, { not: { field: 'a', equals: 'y' } }] })
  t.same(spec('timeout'), { field: 'message', contains: 'timeout', ignore_case: true }, 'a word with no field searches message')
  t.same(spec('"connection refused"'), { field: 'message', contains: 'connection refused', ignore_case: true })
  t.same(spec('time*out'), { field: 'message', regex: 'time.*out', ignore_case: true })
})

t.test('query problems give the offset and what to do', async (t) => {
  const hint = "Write field:value terms joined by and / or / not, e.g. 'http.response.status_code >= 500 and not url.path: /health*'; quote values with spaces or parentheses."
  t.same(problems(''), [`0: LW_RULE_QUERY: the query is empty. ${hint}`])
  t.same(problems('a:'), ['2: LW_RULE_QUERY: a: has no value. Write a:value, or a:* for "has any value"; quote a value with spaces.'])
  t.same(problems('a:1 and'), [`7: LW_RULE_QUERY: and at the end has no condition after it. ${hint}`])
  t.same(problems('and a:1'), ['0: LW_RULE_QUERY: unexpected "and". Each and / or joins two conditions; not (or -) goes before one; parentheses must pair up.'])
  t.same(problems('a:1 or or b:2'), ['7: LW_RULE_QUERY: unexpected "or". Each and / or joins two conditions; not (or -) goes before one; parentheses must pair up.'])
  t.same(problems('(a:1 or b:2'), ['0: LW_RULE_QUERY: this "(" is never closed. Add the missing ")".'])
  t.same(problems('a:1)'), ['3: LW_RULE_QUERY: this ")" closes nothing. Remove it, or add the "(" it belongs to.'])
  t.same(problems('a:"open'), ['2: LW_RULE_QUERY: this " is never closed. Add the closing ".'])
  t.same(problems('a:[1 5]'), ['5: LW_RULE_QUERY: a: a range is written [low TO high]. For example [400 TO 499], {0 TO 1] or [500 TO *].'])
  t.same(problems('a:/x/g'), ['5: LW_RULE_QUERY: unknown regex flag "g". Flags are i (ignore case), m (multiline) and s (. matches newlines).'])
  t.same(problems('*'), ['0: LW_RULE_QUERY: "*" alone matches any entry, and says nothing about it. Name a field: service.name:* for "has a service name", or leave the wildcard out.'])
  t.same(problems('a:1 or b:/(x)\\1/'), ['9: LW_RULE_REGEX: cannot be used: backreferences (\\1 ...) are not supported, because RE2 guarantees linear time. Rewrite the pattern without lookaround or backreferences (RE2 syntax), or use contains / prefix.'],
    'a regex problem points at its term')
})

t.test('parseQuery lists the fields with their offsets', async (t) => {
  const parsed = parseQuery('http.response.status_cod >= 500 and url.pth:(a or b)')
  t.same(parsed.query?.fields, [
    { name: 'http.response.status_cod', offset: 0 },
    { name: 'url.pth', offset: 36 },
    { name: 'url.pth', offset: 36 },
  ])
})
