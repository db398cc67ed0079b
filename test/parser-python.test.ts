/**
 * The Python logging parser: Django, the logging default, basicConfig, gunicorn, uvicorn and Celery
 * lines, with tracebacks (chained ones too) joined to them as framing would.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { FieldValue } from '../agent/entry'
import { exceptionOf, parsePython } from '../agent/parsers/python'

const FIXTURES = join(__dirname, 'fixtures', 'parsers')
const UTC = { timezone: 'UTC' }
const MOSCOW = { timezone: 'Europe/Moscow' }

/**
 * The records of a fixture as multiline framing hands them over: a line that is not a
 * continuation (indented, blank, or part of a traceback) starts a new record.
 */
function records(name: string): string[] {
  const result: string[] = []
  // After a traceback's frames, its exception line (`Type: message`) still belongs to the record.
  let awaitingException = false
  for (const line of readFileSync(join(FIXTURES, name), 'utf8').trimEnd().split('\n')) {
    const exceptionLine = awaitingException && /^[\w.]+(:|$)/.test(line)
    const continues = result.length > 0 && (line === '' || /^\s/.test(line) || line.startsWith('Traceback (') ||
      line.startsWith('During handling') || line.startsWith('The above exception') || exceptionLine)
    if (line.startsWith('Traceback (')) awaitingException = true
    else if (exceptionLine || !continues) awaitingException = false
    if (continues) result[result.length - 1] += '\n' + line
    else result.push(line)
  }
  return result
}

function fieldsOf(text: string, ctx = UTC): Record<string, FieldValue> {
  const result = parsePython(text, ctx)
  if (result.error !== undefined) throw new Error(`unexpected parse error: ${result.error}`)
  return result.fields
}

t.test('Django with chained tracebacks', async (t) => {
  const [notFound, cause, context] = records('django.log')
  t.same(fieldsOf(notFound!, MOSCOW), {
    '@timestamp': '2024-01-05T12:00:29.786Z',
    'log.level': 'warn',
    'log.logger': 'django.request',
    'log.origin.file.line': 241,
    message: 'Not Found: /favicon.ico',
  })
  const c = fieldsOf(cause!, MOSCOW)
  t.equal(c['message'], 'Internal Server Error: /api/orders/17', 'the first line only')
  t.equal(c['log.level'], 'error')
  t.equal(c['error.type'], 'django.db.utils.OperationalError', 'the exception raised last, dotted name kept')
  t.equal(c['error.message'], 'database unavailable')
  const stack = c['error.stack_trace'] as string
  t.ok(stack.startsWith('Traceback (most recent call last):\n  File "/srv/shop/orders/db.py", line 12, in fetch'))
  t.ok(stack.includes('\n\nThe above exception was the direct cause of the following exception:\n\n'), 'both tracebacks kept')
  t.ok(stack.endsWith('django.db.utils.OperationalError: database unavailable'))
  const x = fieldsOf(context!, MOSCOW)
  t.equal(x['error.type'], 'ValueError')
  t.equal(x['error.message'], "invalid literal for int() with base 10: 'abc'")
  t.match(x['error.stack_trace'], /KeyError: 'user_id'\n\nDuring handling of the above exception/)
})

t.test('logging default format, "," and "." milliseconds', async (t) => {
  const [info, critical, refund] = records('logging-default.log')
  t.same(fieldsOf(info!, MOSCOW), {
    '@timestamp': '2024-01-05T12:00:31.787Z',
    'log.logger': 'payments.worker',
    'log.level': 'info',
    message: 'charged card ending 4242 for 19.99 EUR',
  })
  t.equal(fieldsOf(critical!, MOSCOW)['log.level'], 'critical')
  const r = fieldsOf(refund!, MOSCOW)
  t.equal(r['@timestamp'], '2024-01-05T12:00:32.004Z')
  t.equal(r['error.type'], 'stripe.error.InvalidRequestError')
  t.equal(r['error.message'], 'Request req_8Zk: Charge ch_3O has already been refunded.', 'split at the first colon only')
  t.equal(r['message'], 'refund failed')
})

t.test('Django verbose: level, time, module, process, thread', async (t) => {
  const [verbose, short] = records('django-verbose.log')
  t.same(fieldsOf(verbose!, MOSCOW), {
    'log.level': 'warn',
    '@timestamp': '2024-01-05T12:00:33.788Z',
    'log.origin.file.name': 'cache.py',
    'process.pid': 12333,
    'process.thread.id': 140059694197632,
    message: 'cache miss ratio 0.42 above threshold',
  })
  t.same(fieldsOf(short!, MOSCOW), { 'log.level': 'info', '@timestamp': '2024-01-05T12:00:34.001Z', message: 'reindex finished in 3.2s' })
})

t.test('basicConfig', async (t) => {
  const [sub, root] = records('basic-config.log')
  t.same(fieldsOf(sub!), { 'log.level': 'warn', 'log.logger': 'root.sub', message: 'disk usage at 91%: /var/lib/postgresql' })
  t.same(fieldsOf(root!), { 'log.level': 'error', 'log.logger': 'root', message: 'unhandled signal 15' })
})

t.test('gunicorn', async (t) => {
  const all = records('gunicorn.log')
  t.equal(all.length, 6)
  t.same(fieldsOf(all[0]!, MOSCOW), {
    '@timestamp': '2024-01-05T12:00:00.000Z',
    'process.pid': 1,
    'log.level': 'info',
    message: 'Starting gunicorn 21.2.0',
  }, 'its own zone wins over the input zone')
  t.equal(fieldsOf(all[3]!)['log.level'], 'critical')
  t.equal(fieldsOf(all[3]!)['message'], 'WORKER TIMEOUT (pid:7)')
  const e = fieldsOf(all[4]!)
  t.equal(e['process.pid'], 7)
  t.equal(e['message'], 'Error handling request /api/report')
  t.equal(e['error.type'], 'SystemExit')
  t.equal(e['error.message'], '1')
  t.equal(fieldsOf(all[5]!)['@timestamp'], '2024-01-05T12:05:32.000Z', '+0300 applied')
})

t.test('uvicorn', async (t) => {
  const [started, running, ok, failed, asgi, warning, ipv6] = records('uvicorn.log')
  t.same(fieldsOf(started!), { 'log.level': 'info', message: 'Started server process [4113]' })
  t.equal(fieldsOf(running!)['message'], 'Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)')
  t.same(fieldsOf(ok!), {
    'log.level': 'info',
    'client.ip': '127.0.0.1',
    'client.port': 52345,
    'http.request.method': 'GET',
    'url.original': '/items/5?q=somequery',
    'url.path': '/items/5',
    'url.query': 'q=somequery',
    'http.version': '1.1',
    'http.response.status_code': 200,
    message: '127.0.0.1:52345 - "GET /items/5?q=somequery HTTP/1.1" 200 OK',
  })
  const f = fieldsOf(failed!)
  t.equal(f['http.request.method'], 'POST')
  t.equal(f['url.path'], '/api/upload')
  t.equal(f['http.response.status_code'], 500)
  t.equal(f['client.ip'], '10.0.0.7')
  const a = fieldsOf(asgi!)
  t.equal(a['log.level'], 'error')
  t.equal(a['message'], 'Exception in ASGI application')
  t.equal(a['error.type'], 'ValueError')
  t.equal(a['error.message'], 'file too large')
  t.match(a['error.stack_trace'], /\^\^\^\^\n {2}File "\/app\/main.py", line 21, in upload/)
  t.same(fieldsOf(warning!), { 'log.level': 'warn', message: 'Invalid HTTP request received.' })
  t.equal(fieldsOf(ipv6!)['client.ip'], '::1')
  t.equal(fieldsOf(ipv6!)['client.port'], 60514)
})

t.test('Celery worker: process, task name and id, the traceback of a failed task', async (t) => {
  const all = records('celery.log')
  t.equal(all.length, 6)
  t.same(fieldsOf(all[0]!, MOSCOW), {
    '@timestamp': '2024-05-21T07:15:30.001Z',
    'log.level': 'info',
    'process.name': 'MainProcess',
    message: 'Connected to redis://redis:6379/0',
  }, 'Celery writes local time without a zone: the input zone applies')
  t.same(fieldsOf(all[3]!), {
    '@timestamp': '2024-05-21T10:15:42.050Z',
    'log.level': 'warn',
    'process.name': 'ForkPoolWorker-3',
    'celery.task.name': 'billing.tasks.charge_card',
    'celery.task.id': '8d2b6a1e-5f0c-4a5e-9c1e-2f6d1a0b7c33',
    message: 'card declined once, retrying',
  }, "a task's own message: worker_task_log_format's prefix becomes fields")
  const failed = fieldsOf(all[4]!)
  t.equal(failed['log.level'], 'error')
  t.equal(failed['message'], "Task billing.tasks.charge_card[8d2b6a1e-5f0c-4a5e-9c1e-2f6d1a0b7c33] raised unexpected: ConnectionError('Connection refused')",
    "Celery's own record about a task keeps its wording (the rules look for it)")
  t.equal(failed['error.type'], 'ConnectionError')
  t.equal(failed['error.message'], 'Connection refused')
  t.match(failed['error.stack_trace'], /^Traceback \(most recent call last\):\n {2}File "\/usr\/local\/lib\/python3.11\/site-packages\/celery\/app\/trace.py"/)
  t.equal(fieldsOf(all[5]!)['message'], 'Task reports.tasks.build_report[2b7f5c0e-0d7b-4a8f-9d0b-3c1e2f4a5b6c] succeeded in 0.4120s: None')
  t.equal(parsePython('[2024-05-21 10:15:30,001: NOTICE/MainProcess] x', UTC).error !== undefined, true, 'an unknown level is not Celery')
})

t.test('a multiline message without a traceback is all message', async (t) => {
  const fields = fieldsOf('2024-01-05 12:00:00,000 - app - INFO - rows:\n  a=1\n  b=2')
  t.equal(fields['message'], 'rows:\n  a=1\n  b=2')
  t.notOk('error.type' in fields)
})

t.test('lines between the message and the traceback stay in the message', async (t) => {
  const fields = fieldsOf('ERROR:app:first\nsecond\nTraceback (most recent call last):\n  File "x.py", line 1, in <module>\nKeyError: 1')
  t.equal(fields['message'], 'first\nsecond')
  t.equal(fields['error.type'], 'KeyError')
})

t.test('a bare traceback (an uncaught exception on stderr)', async (t) => {
  const text = 'Traceback (most recent call last):\n  File "/app/run.py", line 3, in <module>\n    main()\nRuntimeError: boom\nsecond line of the message'
  const result = parsePython(text, UTC)
  t.equal(result.error, undefined)
  t.same(result.fields, {
    'error.stack_trace': text,
    'error.type': 'RuntimeError',
    'error.message': 'boom\nsecond line of the message',
    message: 'RuntimeError: boom\nsecond line of the message',
  })
})

t.test('exceptionOf', async (t) => {
  const frames = 'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\n    f()\n'
  t.same(exceptionOf(frames + 'KeyboardInterrupt'), { type: 'KeyboardInterrupt' }, 'no message')
  t.same(exceptionOf(frames + 'AssertionError:'), { type: 'AssertionError' }, 'empty message')
  t.same(exceptionOf(frames + '  File "b.py"\nnot an exception line: x'), { message: 'not an exception line: x' }, 'no class name, no type')
  t.same(exceptionOf(frames + 'psycopg2.errors.UndefinedTable: relation "orders" does not exist\nLINE 1: SELECT * FROM orders\n                      ^\n'), {
    type: 'psycopg2.errors.UndefinedTable',
    message: 'relation "orders" does not exist\nLINE 1: SELECT * FROM orders\n                      ^',
  }, 'a message with an indented line')
  t.same(exceptionOf('Traceback (most recent call last):\n  File "x.py", line 1\n    x = (\n        ^\nSyntaxError: \'(\' was never closed'),
    { type: 'SyntaxError', message: "'(' was never closed" }, 'source and caret lines are skipped')
  t.same(exceptionOf('no traceback here'), {})
  t.same(exceptionOf(frames), {}, 'cut before the exception line')
})

t.test('lines in no known format', async (t) => {
  for (const line of ['hello world', 'info: lowercase level', '[2024-01-05 12:00:00] something', '2024-01-05 12:00:00,000 nothing']) {
    const result = parsePython(line, UTC)
    t.match(result.error, /^LW_PARSE_PYTHON: /, line)
    t.same(result.fields, { message: line })
  }
})
