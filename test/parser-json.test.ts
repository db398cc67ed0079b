/**
 * The JSON parser: ECS fields from pino, pino-http, structlog, python-json-logger, ECS loggers,
 * nginx's JSON format and generic keys; and never a field the line already has, so that
 * `{derived, ...original}` has no duplicate or conflicting key paths.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { FieldValue } from '../agent/entry'
import { parseJson } from '../agent/parsers/json'

const FIXTURES = join(__dirname, 'fixtures', 'parsers')
const UTC = { timezone: 'UTC' }
const MOSCOW = { timezone: 'Europe/Moscow' }

function lines(name: string): string[] {
  return readFileSync(join(FIXTURES, name), 'utf8').split('\n').filter((line) => line.length > 0)
}

function fieldsOf(line: string, ctx = UTC): Record<string, FieldValue> {
  const result = parseJson(line, ctx)
  if (result.error !== undefined) throw new Error(`unexpected parse error: ${result.error}`)
  return result.fields
}

/**
 * Key paths of a JSON document as Elasticsearch reads it: dotted keys expand into objects, so
 * `"log.level"` and `"log": {"level"}` are the same path. Throws on a path given twice, or a path
 * that is a value in one place and an object in another. Objects may meet (both become one
 * object); arrays are values and are not entered. A small recursive-descent reader, because
 * JSON.parse silently keeps the last of two equal keys.
 */
function assertNoDuplicatePaths(json: string): void {
  const kinds = new Map<string, 'value' | 'object'>()
  let i = 0
  const ws = (): void => { while (i < json.length && ' \t\r\n'.includes(json[i]!)) i++ }
  const declare = (path: string, kind: 'value' | 'object'): void => {
    const known = kinds.get(path)
    if (known !== undefined && (known === 'value' || kind === 'value')) throw new Error(`duplicate key path: ${path}`)
    kinds.set(path, kind)
  }
  const readString = (): string => {
    const start = i
    i++
    while (json[i] !== '"') i += json[i] === '\\' ? 2 : 1
    i++
    return JSON.parse(json.slice(start, i)) as string
  }
  const skipValue = (): void => {
    ws()
    const c = json[i]
    if (c === '"') { readString(); return }
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']'
      i++
      ws()
      if (json[i] === close) { i++; return }
      for (;;) {
        if (c === '{') { ws(); readString(); ws(); i++ }
        skipValue()
        ws()
        if (json[i++] === close) return
      }
    }
    while (i < json.length && !',}] \t\r\n'.includes(json[i]!)) i++
  }
  const readObject = (prefix: string): void => {
    i++ // {
    ws()
    if (json[i] === '}') { i++; return }
    for (;;) {
      ws()
      const key = readString()
      ws()
      i++ // :
      ws()
      const segments = key.split('.')
      let path = prefix
      for (let s = 0; s < segments.length - 1; s++) {
        path = path === '' ? segments[s]! : path + '.' + segments[s]!
        declare(path, 'object')
      }
      path = path === '' ? segments[segments.length - 1]! : path + '.' + segments[segments.length - 1]!
      if (json[i] === '{') {
        declare(path, 'object')
        readObject(path)
      } else {
        declare(path, 'value')
        skipValue()
      }
      ws()
      if (json[i++] === '}') return
    }
  }
  ws()
  readObject('')
}

/** The document as the brief describes it: derived fields first, then the original members. */
function documentOf(line: string, fields: Record<string, FieldValue>): string {
  const derived = JSON.stringify(fields).slice(1, -1)
  return derived.length === 0 ? line : '{' + derived + ',' + line.slice(1)
}

t.test('the duplicate-path check itself catches collisions', async (t) => {
  t.throws(() => assertNoDuplicatePaths('{"log.level":"x","log":{"level":"y"}}'), /log\.level/)
  t.throws(() => assertNoDuplicatePaths('{"error.type":"X","error":"boom"}'), /error/)
  t.throws(() => assertNoDuplicatePaths('{"message":"a","message":"b"}'), /message/)
  t.throws(() => assertNoDuplicatePaths('{"http":{"response":{"status_code":1}},"http.response.status_code":2}'), /status_code/)
  t.doesNotThrow(() => assertNoDuplicatePaths('{"log.level":"x","log":{"logger":"y"},"a":[{"b":1},{"b":2}]}'))
})

t.test('no fixture line gets a duplicate or conflicting key path', async (t) => {
  const files = ['pino.ndjson', 'pino-http.ndjson', 'structlog.ndjson', 'python-json-logger.ndjson', 'ecs-logging.ndjson', 'generic.ndjson']
  let checked = 0
  for (const file of files) {
    for (const line of lines(file)) {
      const document = documentOf(line, fieldsOf(line))
      t.doesNotThrow(() => assertNoDuplicatePaths(document), `${file}: ${line.slice(0, 60)}`)
      t.doesNotThrow(() => JSON.parse(document), `${file}: the document is valid JSON`)
      checked++
    }
  }
  t.equal(checked, 32, 'every fixture line was checked')
})

t.test('pino', async (t) => {
  const [info, warn, error, fatal, child] = lines('pino.ndjson').map((line) => fieldsOf(line))
  t.same(info, {
    '@timestamp': '2024-01-05T12:00:00.428Z',
    message: 'server listening on port 3000',
    'log.level': 'info',
    'log.logger': 'billing-api',
    'host.name': 'api-7f9c4d',
    'process.pid': 4821,
  })
  t.equal(warn!['log.level'], 'warn')
  t.equal(error!['log.level'], 'error')
  t.equal(error!['error.type'], 'SyntaxError')
  t.equal(error!['error.message'], "Expected property name or '}' in JSON at position 1")
  t.match(error!['error.stack_trace'], /^SyntaxError: Expected property name[^\n]*\n {4}at JSON\.parse \(<anonymous>\)/)
  t.equal(fatal!['log.level'], 'fatal')
  t.equal(fatal!['error.type'], 'TypeError')
  t.equal(child!['message'], 'pool ready')
  t.notOk('event.duration' in child!, 'the child binding "event" (a string) blocks event.*')
})

t.test('pino-http', async (t) => {
  const [ok, failed, post] = lines('pino-http.ndjson').map((line) => fieldsOf(line))
  t.same(ok, {
    '@timestamp': '2024-01-05T12:00:00.440Z',
    message: 'request completed',
    'log.level': 'info',
    'log.logger': 'billing-api',
    'host.name': 'api-7f9c4d',
    'process.pid': 4821,
    'http.request.method': 'GET',
    'url.original': '/api/users?id=5&expand=orders',
    'url.path': '/api/users',
    'url.query': 'id=5&expand=orders',
    'user_agent.original': 'curl/8.4.0',
    'http.request.referrer': 'https://shop.example/cart',
    'client.ip': '10.2.0.15',
    'http.response.status_code': 200,
    'event.duration': 1_000_000,
  })
  t.equal(failed!['http.response.status_code'], 500)
  t.equal(failed!['error.message'], 'failed with status code 500')
  t.equal(failed!['event.duration'], 0)
  t.equal(post!['http.request.method'], 'POST')
  t.equal(post!['client.ip'], '::ffff:10.2.0.16')
  t.equal(post!['event.duration'], 37_000_000)
  t.notOk('url.query' in post!, 'no query string, no url.query')
})

t.test('structlog', async (t) => {
  const [login, payment, crashed, local, heartbeat] = lines('structlog.ndjson')
  t.same(fieldsOf(login!), {
    '@timestamp': '2024-01-05T12:00:00.123Z',
    message: 'user logged in',
    'log.level': 'info',
    'log.logger': 'app.auth',
  })
  const p = fieldsOf(payment!)
  t.equal(p['error.type'], 'requests.exceptions.HTTPError')
  t.equal(p['error.message'], '502 Server Error: Bad Gateway for url: https://pay.example/v1/charges')
  t.match(p['error.stack_trace'], /^Traceback \(most recent call last\):\n {2}File "\/srv\/app\/billing.py"/)
  const c = fieldsOf(crashed!)
  t.equal(c['log.level'], 'critical')
  t.equal(c['error.type'], 'ZeroDivisionError', 'dict_tracebacks: the raised exception is the first')
  t.equal(c['error.message'], 'division by zero')
  t.equal(fieldsOf(local!, MOSCOW)['@timestamp'], '2024-01-05T12:00:03.250Z', 'a zone-less time is read in ctx.timezone')
  t.equal(fieldsOf(local!, MOSCOW)['log.level'], 'warn')
  t.equal(fieldsOf(heartbeat!)['@timestamp'], '2024-01-05T12:00:04.750Z', 'epoch seconds with a fraction')
})

t.test('python-json-logger', async (t) => {
  const [created, failed, retry] = lines('python-json-logger.ndjson')
  t.same(fieldsOf(created!, MOSCOW), {
    '@timestamp': '2024-01-05T12:00:05.120Z',
    'log.level': 'info',
    'log.logger': 'orders.api',
  }, 'asctime in the input zone; message is already there')
  const f = fieldsOf(failed!, MOSCOW)
  t.equal(f['error.type'], 'django.db.utils.OperationalError')
  t.equal(f['error.message'], 'could not serialize access due to concurrent update')
  const r = fieldsOf(retry!)
  t.equal(r['@timestamp'], '2024-01-05T12:00:06.300Z')
  t.equal(r['log.level'], 'warn')
  t.notOk('process.pid' in r, '"process": 311 (a number) blocks process.*')
})

t.test('ECS loggers get nothing added', async (t) => {
  for (const line of lines('ecs-logging.ndjson')) t.same(fieldsOf(line), {}, line.slice(0, 70))
})

t.test('nginx JSON log_format', async (t) => {
  t.same(fieldsOf(lines('generic.ndjson')[0]!), {
    '@timestamp': '2024-01-05T12:00:10.000Z',
    'http.request.method': 'GET',
    'http.version': '2.0',
    'url.original': '/search?q=%22boots%22&page=2',
    'url.path': '/search',
    'url.query': 'q=%22boots%22&page=2',
    'client.ip': '203.0.113.9',
    'user_agent.original': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X)',
    'http.response.body.bytes': 5120,
    'http.response.status_code': 200,
    'event.duration': 42_000_000,
  })
})

t.test('conflicts: scalar parents, dotted keys, nulls, existing objects', async (t) => {
  const generic = lines('generic.ndjson')
  t.same(fieldsOf(generic[1]!, MOSCOW), {
    '@timestamp': '2024-01-05T09:00:11.000Z',
    'log.level': 'error',
    'http.request.method': 'POST',
    'http.response.status_code': 502,
  }, 'string "error", "url", "host", "user", "event" block error.*, url.*, host.name, user.name, event.duration; message exists')
  t.same(fieldsOf(generic[2]!), {}, 'dotted "log.level", "http.response.status_code", "message", "@timestamp" are all taken')
  t.same(fieldsOf(generic[3]!), {
    '@timestamp': '2024-01-05T12:00:13.500Z',
    message: 'proxied',
    'log.level': 'info',
    'url.original': '/healthz?verbose=1',
    'url.path': '/healthz',
    'url.query': 'verbose=1',
    'client.ip': '10.0.0.1',
    'http.response.status_code': 204,
  }, 'http.request.method exists nested; status_code goes beside it')
  t.same(fieldsOf(generic[4]!), { message: 'scalar parent', 'log.level': 'info' },
    '"http": {"response": "n/a"} blocks the status code; a "log" object without level does not block log.level')
  t.same(fieldsOf(generic[5]!), {}, '"message": null and "error": null count as present')
  t.same(fieldsOf(generic[6]!), { message: 'ecs event object' }, 'event.duration already nested')
})

t.test('generic keys from other loggers', async (t) => {
  const generic = lines('generic.ndjson')
  const winston = fieldsOf(generic[7]!)
  t.equal(winston['error.type'], 'Error')
  t.equal(winston['error.message'], 'connect ECONNREFUSED 127.0.0.1:5432')
  t.equal(winston['@timestamp'], '2024-01-05T12:00:14.000Z')
  t.same(fieldsOf(generic[8]!), {
    '@timestamp': '2024-01-05T12:00:15.000Z',
    message: 'hi',
    'log.level': 'info',
    'log.logger': 'myapp',
    'host.name': 'web-1',
    'process.pid': 77,
  }, 'bunyan')
  t.same(fieldsOf(generic[9]!), { '@timestamp': '2024-01-05T12:00:16.123Z', message: 'listening', 'log.level': 'info' }, 'zap')
  const named = fieldsOf(generic[10]!)
  t.notOk('log.logger' in named, 'a "name" outside pino/bunyan/python-json-logger is not a logger name')
  t.equal(named['user.name'], 'alice')
  t.same(fieldsOf(generic[11]!), { '@timestamp': '2024-01-05T12:00:17.123Z', message: 'Order 17 placed', 'log.level': 'warn' }, 'Serilog CLEF')
})

t.test('levels', async (t) => {
  const level = (value: unknown): FieldValue | undefined => fieldsOf(JSON.stringify({ level: value }))['log.level']
  t.same([10, 20, 30, 40, 50, 60].map(level), ['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
  t.equal(level(35), 'info', 'a custom pino level falls in its band')
  t.same(['WARNING', 'Warning', 'CRITICAL', 'err', 'Information', 'NOTICE', 'http'].map(level),
    ['warn', 'warn', 'critical', 'error', 'info', 'notice', 'http'])
  t.equal(level(''), undefined)
})

t.test('lines that are not JSON objects', async (t) => {
  for (const [line, reason] of [
    ['not json at all', /not valid JSON/],
    ['{"level":30,"msg":"cut', /not valid JSON/],
    ['[1,2,3]', /an array, not an object/],
    ['"just a string"', /a string, not an object/],
    ['null', /null, not an object/],
    ['42', /a number, not an object/],
  ] as const) {
    const result = parseJson(line, UTC)
    t.match(result.error, /^LW_PARSE_JSON: /, line)
    t.match(result.error, reason, line)
    t.same(result.fields, { message: line })
    t.equal(result.object, undefined)
  }
})

t.test('object is the parsed line', async (t) => {
  const line = lines('pino.ndjson')[0]!
  t.same(parseJson(line, UTC).object, JSON.parse(line))
})

t.test('time values', async (t) => {
  const at = (time: unknown): FieldValue | undefined => fieldsOf(JSON.stringify({ time }), MOSCOW)['@timestamp']
  t.equal(at(1704456000123), '2024-01-05T12:00:00.123Z', 'epoch ms')
  t.equal(at(1704456000), '2024-01-05T12:00:00.000Z', 'epoch s')
  t.equal(at(1704456000123456), '2024-01-05T12:00:00.123Z', 'epoch µs')
  t.equal(at('1704456000123'), '2024-01-05T12:00:00.123Z', 'epoch ms as text')
  t.equal(at('2024-01-05T12:00:00.123Z'), '2024-01-05T12:00:00.123Z')
  t.equal(at('2024-01-05T13:00:00.5+01:00'), '2024-01-05T12:00:00.500Z')
  t.equal(at('2024-01-05 15:00:00'), '2024-01-05T12:00:00.000Z', 'no zone: Europe/Moscow')
  t.equal(fieldsOf('{"time_local":"05/Jan/2024:15:00:10 +0300"}')['@timestamp'], '2024-01-05T12:00:10.000Z', "nginx's $time_local")
  t.equal(fieldsOf('{"created":1704456000.5}')['@timestamp'], '2024-01-05T12:00:00.500Z', "Python's created")
  t.equal(at('yesterday'), undefined)
  t.equal(at('2024-02-30T00:00:00Z'), undefined, 'no such day')
  t.equal(at(true), undefined)
})

t.test('flat: whether any top-level key is dotted, for the rules\' field lookups', async (t) => {
  const ctx = { timezone: 'UTC' }
  t.equal(parseJson('{"level":30,"msg":"hi","req":{"method":"GET"}}', ctx).flat, true, 'pino: nested objects only')
  t.equal(parseJson('{"message":"hi","http":{"response.status_code":500}}', ctx).flat, true, 'a dotted key below the top level does not count')
  t.equal(parseJson('{"@timestamp":"2024-01-01T00:00:00Z","log.level":"info","message":"hi"}', ctx).flat, false, 'ECS: log.level at the top')
  t.equal(parseJson('{"a":1,"b":2,"service.name":"x"}', ctx).flat, false, 'a dotted key after others')
  t.equal(parseJson('not json', ctx).flat, undefined, 'no object, nothing to say')
})

t.test('what is said of one line\'s keys is not reused for the next line\'s unless they are the same keys', async (t) => {
  // The parser remembers the last line's top-level names by position; every kind of difference
  // from the line before must be seen.
  const ctx = { timezone: 'UTC' }
  const said = (line: string): string => {
    const res = parseJson(line, ctx)
    return `plain=${String(res.plain)} flat=${String(res.flat)} status=${String(res.fields['http.response.status_code'])}`
  }
  const steps: Array<[string, string]> = [
    ['{"msg":"a","n":1}', 'plain=true flat=true status=undefined'],
    ['{"msg":"b","n":2}', 'plain=true flat=true status=undefined'],
    ['{"msg":"c","n":3,"http":{"response":{"status_code":201}},"status":500}', 'plain=false flat=true status=undefined'],
    ['{"msg":"d","n":4}', 'plain=true flat=true status=undefined'],
    ['{"msg":"e","n":5,"status":502}', 'plain=true flat=true status=502'],
    ['{"msg":"f","n.x":6,"status":503}', 'plain=false flat=false status=503'],
    ['{"msg":"f","n.x":6,"status":503}', 'plain=false flat=false status=503'],
    ['{"msg":"g","n":7,"status":504}', 'plain=true flat=true status=504'],
    ['{"msg":"h"}', 'plain=true flat=true status=undefined'],
    ['{"msg":"i","n":8,"http.response.status_code":200,"status":505}', 'plain=false flat=false status=undefined'],
    ['{"msg":"j","n":8,"http.response.status_code":200,"status":505}', 'plain=false flat=false status=undefined'],
    ['{"msg":"k","n":9,"status":506}', 'plain=true flat=true status=506'],
  ]
  for (const [line, expected] of steps) t.equal(said(line), expected, line)
  const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i]))
  t.equal(said(JSON.stringify(many)), 'plain=true flat=true status=undefined', 'more names than are remembered')
  t.equal(said(JSON.stringify({ ...many, 'a.b': 1 })), 'plain=false flat=false status=undefined', 'more names, one dotted')
  t.equal(said(JSON.stringify({ ...many, http: {} })), 'plain=false flat=true status=undefined', 'more names, one an ECS root')
})
