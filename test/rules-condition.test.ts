import t from 'tap'
import type { Entry } from '../agent/entry'
import { compileCondition } from '../rules/condition'
import { decodeUrl, fieldOf, suggestField } from '../rules/fields'
import type { CompiledCondition, ConditionSpec } from '../rules/model'

function entry(fields: Entry['fields'], object?: Record<string, unknown>): Entry {
  const e: Entry = { sourceId: 's', offset: 0, end: 1, text: '', fields }
  if (object !== undefined) e.object = object
  return e
}

function compile(spec: ConditionSpec): CompiledCondition {
  const result = compileCondition(spec)
  if (result.condition === undefined) throw new Error(JSON.stringify(result.problems))
  return result.condition
}

/** Which of `values` (as the field's value) the condition accepts. */
function accepted(spec: ConditionSpec, values: unknown[]): unknown[] {
  const test = compile(spec).test
  return values.filter((value) => test(entry({}, value === undefined ? {} : { f: value })))
}

t.test('fieldOf reads entry.fields first, then the JSON object nested or dotted', async (t) => {
  const e = entry({ 'http.response.status_code': 502 }, {
    http: { response: { status_code: 200 } },
    'url.path': '/dotted',
    req: { 'headers.host': 'mixed', headers: { 'user-agent': 'curl' } },
    list: [1, 2],
    empty: null,
  })
  t.equal(fieldOf(e, 'http.response.status_code'), 502, 'the derived field wins')
  t.equal(fieldOf(e, 'url.path'), '/dotted')
  t.equal(fieldOf(e, 'req.headers.host'), 'mixed')
  t.equal(fieldOf(e, 'req.headers.user-agent'), 'curl')
  t.same(fieldOf(e, 'list'), [1, 2])
  t.equal(fieldOf(e, 'empty'), null)
  t.equal(fieldOf(e, 'missing.field'), undefined)
  t.equal(fieldOf(e, 'constructor'), undefined, 'nothing is read from the prototype')
  t.equal(fieldOf(e, 'req.toString'), undefined)
  t.equal(fieldOf(entry({ message: 'm' }), 'message'), 'm', 'an entry without an object')
})

t.test('equals compares numbers with numeric text, and booleans with their text', async (t) => {
  t.same(accepted({ field: 'f', equals: 500 }, [500, '500', 500.0, '500.0', 501, true, undefined, null, [400, 500]]), [500, '500', 500, [400, 500]])
  t.same(accepted({ field: 'f', equals: '500' }, [500, '500', ' 500']), [500, '500'])
  t.same(accepted({ field: 'f', equals: true }, [true, 'true', false, 1]), [true, 'true'])
  t.same(accepted({ field: 'f', equals: 'GET' }, ['GET', 'get', ['POST', 'GET'], { GET: 1 }]), ['GET', ['POST', 'GET']])
  t.same(accepted({ field: 'f', equals: 'GET', ignore_case: true }, ['GET', 'get', 'Get', 'POST']), ['GET', 'get', 'Get'])
  t.same(accepted({ field: 'f', equals: null }, [undefined, null, '', 0]), [undefined, null], 'null means no value')
})

t.test('in', async (t) => {
  t.same(accepted({ field: 'f', in: ['GET', 'HEAD', 404] }, ['GET', 'HEAD', 'POST', 404, '404', 405]), ['GET', 'HEAD', 404, '404'])
  t.same(accepted({ field: 'f', in: ['a', null] }, ['a', 'b', undefined, null]), ['a', undefined, null])
  t.same(accepted({ field: 'f', in: ['Admin'], ignore_case: true }, ['admin', 'ADMIN', 'user']), ['admin', 'ADMIN'])
})

t.test('gt, gte, lt, lte compare numbers (numeric text too) or, with a text bound, text', async (t) => {
  const values = [499, 500, 501, '500', '503', 'abc', '', ' 600', '0x1F5', true, null]
  t.same(accepted({ field: 'f', gte: 500 }, values), [500, 501, '500', '503'])
  t.same(accepted({ field: 'f', gt: 500 }, values), [501, '503'])
  t.same(accepted({ field: 'f', lt: 500 }, values), [499])
  t.same(accepted({ field: 'f', lte: 500 }, values), [499, 500, '500'])
  t.same(accepted({ field: 'f', gte: 400, lt: 500 }, [399, 400, 499, 500]), [400, 499], 'several tests on one field all hold')
  t.same(accepted({ field: 'f', gte: '2024-01-01', lt: '2024-02-01' }, ['2023-12-31T23:59:59Z', '2024-01-15T00:00:00Z', '2024-02-01', 20240115]),
    ['2024-01-15T00:00:00Z'], 'ISO dates compare as text')
  t.same(accepted({ field: 'f', gt: '5' }, [6, '6', 4]), [6, '6'], 'a numeric text bound is a number')
})

t.test('exists', async (t) => {
  t.same(accepted({ field: 'f', exists: true }, ['', 0, false, [], {}, null, undefined]), ['', 0, false, [], {}])
  t.same(accepted({ field: 'f', exists: false }, ['', 0, null, undefined]), [null, undefined])
})

t.test('contains, prefix and regex test text only', async (t) => {
  const values = ['/admin/users', '/api/admin', '/ADMIN', 42, ['/x', '/admin']]
  t.same(accepted({ field: 'f', prefix: '/admin' }, values), ['/admin/users', ['/x', '/admin']])
  t.same(accepted({ field: 'f', contains: 'admin' }, values), ['/admin/users', '/api/admin', ['/x', '/admin']])
  t.same(accepted({ field: 'f', contains: 'admin', ignore_case: true }, values), ['/admin/users', '/api/admin', '/ADMIN', ['/x', '/admin']])
  t.same(accepted({ field: 'f', regex: '^/(api/)?admin$' }, values), ['/api/admin', ['/x', '/admin']])
  t.same(accepted({ field: 'f', regex: 'ADMIN$', ignore_case: true }, values), ['/api/admin', '/ADMIN', ['/x', '/admin']])
  t.same(accepted({ field: 'f', regex: '4' }, values), [], 'a number is not text')
})

t.test('decode: percent- and plus-decoding before the test', async (t) => {
  const spec: ConditionSpec = { field: 'url.query', contains: "' or 1=1", decode: true, ignore_case: true }
  const test = compile(spec).test
  const q = (query: string): boolean => test(entry({ 'url.query': query }))
  t.equal(q("id=1' OR 1=1"), true, 'plain')
  t.equal(q('id=1%27+OR+1%3D1'), true, 'percent and plus')
  t.equal(q('id=1%2527%2520OR%25201%253D1'), true, 'double encoded')
  t.equal(q('id=1%27%20AND%201%3D1'), false)
  t.equal(compile({ field: 'url.query', contains: "' or 1=1", ignore_case: true }).test(entry({ 'url.query': 'id=1%27+OR+1%3D1' })), false,
    'without decode the encoded text does not match')
})

t.test('decodeUrl', async (t) => {
  t.equal(decodeUrl('%2527'), "'", 'double encoding is undone')
  t.equal(decodeUrl('%252527'), "'", 'triple encoding too')
  t.equal(decodeUrl('%25252527'), '%27', 'but no more than three passes')
  t.equal(decodeUrl('a+b%20c'), 'a b c', '+ is a space')
  t.equal(decodeUrl('a%2Bb'), 'a b', 'an encoded + is a + after one pass, and a space after the next')
  t.equal(decodeUrl('100%'), '100%', 'a lone % stays')
  t.equal(decodeUrl('%zz%4'), '%zz%4', 'invalid escapes stay as written')
  t.equal(decodeUrl('..%c0%af..'), '..%c0%af..', 'invalid UTF-8 (overlong /) stays as written')
  t.equal(decodeUrl('%27%E0'), "'%E0", 'a valid byte before an invalid one is still decoded')
  t.equal(decodeUrl('caf%C3%A9%20%E2%82%AC'), 'café €', 'UTF-8 sequences')
  t.equal(decodeUrl('%3Cscript%3E'), '<script>')
  const plain = '/plain/path'
  t.equal(decodeUrl(plain), plain)
})

t.test('combinators and what a condition requires', async (t) => {
  const spec: ConditionSpec = {
    all: [
      { field: 'http.response.status_code', gte: 500 },
      { any: [{ field: 'url.path', prefix: '/api' }, { all: [{ field: 'url.path', prefix: '/v2' }, { field: 'service.name', equals: 'shop' }] }] },
      { not: { field: 'user_agent.original', contains: 'kube-probe' } },
    ],
  }
  const c = compile(spec)
  t.same(c.fields.sort(), ['http.response.status_code', 'service.name', 'url.path', 'user_agent.original'])
  t.same(c.required.sort(), ['http.response.status_code', 'url.path'], 'all: union; any: intersection; not: nothing')
  const e = (status: number, path: string, ua?: string, service?: string): boolean => {
    const fields: Entry['fields'] = { 'http.response.status_code': status, 'url.path': path }
    if (ua !== undefined) fields['user_agent.original'] = ua
    if (service !== undefined) fields['service.name'] = service
    return c.test(entry(fields))
  }
  t.equal(e(500, '/api/x'), true)
  t.equal(e(500, '/v2/x', undefined, 'shop'), true)
  t.equal(e(500, '/v2/x', undefined, 'other'), false)
  t.equal(e(500, '/api/x', 'kube-probe/1.27'), false)
  t.equal(e(404, '/api/x'), false)

  t.same(compile({ field: 'a', exists: false }).required, [], 'a test that holds for a missing field requires nothing')
  t.same(compile({ field: 'a', equals: null }).required, [])
  t.same(compile({ field: 'a', in: ['x', null] }).required, [])
  t.same(compile({ field: 'a', in: ['x'] }).required, ['a'])
  t.same(compile({ any: [{ field: 'a', equals: 1 }, { field: 'a', equals: 2 }] }).required, ['a'])
  t.same(compile({ not: { field: 'a', exists: false } }).required, [], 'not requires nothing, even when it means "exists"')
})

t.test('malformed conditions are problems, not exceptions', async (t) => {
  const problems = (spec: unknown): string[] => compileCondition(spec as ConditionSpec).problems.map((p) => `${p.code} ${p.path.join('.')}: ${p.message}`)
  t.same(problems({ field: 'a' }), ['LW_RULE_CONDITION : field a has no test'])
  t.same(problems({ all: [] }), ['LW_RULE_CONDITION all: all needs a list of at least one condition'])
  t.same(problems({ all: [{ field: 'a', equals: 1 }], any: [] }), ['LW_RULE_CONDITION : all and any cannot be used together in one condition'])
  t.same(problems({ any: [{ field: 'a', regex: '(a)\\1' }] }), ['LW_RULE_REGEX any.0.regex: cannot be used: backreferences (\\1 ...) are not supported, because RE2 guarantees linear time'])
  t.same(problems({ field: 'a', equals: 1, colour: 'red' }), ['LW_RULE_UNKNOWN_KEY colour: unknown key'])
  t.same(problems('a:1'), ['LW_RULE_CONDITION : a condition must be a mapping'])
})

t.test('misspelt ECS field names get a suggestion; fields of the application do not', async (t) => {
  t.equal(suggestField('http.response.status_cod'), 'http.response.status_code')
  t.equal(suggestField('http.response.status'), 'http.response.status_code', 'the last word cut short')
  t.equal(suggestField('url.pth'), 'url.path')
  t.equal(suggestField('mesage'), 'message')
  t.equal(suggestField('http.response.status_code'), undefined)
  t.equal(suggestField('req.method'), undefined, 'not an ECS field set')
  t.equal(suggestField('labels.deposit_id'), undefined)
  t.equal(suggestField('error.fingerprint'), undefined, 'logwarden adds it')
  t.equal(suggestField('url.something_else'), undefined, 'nothing close')
})
