/**
 * Exception fingerprints: the same bug with other ids, numbers, line numbers, deploy paths and
 * library frames groups together; another type or another place in the code does not; a
 * fingerprint that comes back after a quiet period is a regression.
 */
import t from 'tap'
import { parseJson } from '../agent/parsers/json'
import { parsePython } from '../agent/parsers/python'
import { ExceptionHistory, fingerprintError, normalizeMessage, topFrames } from '../rules/fingerprint'

const UTC = { timezone: 'UTC' }

function pythonRecord(opts: { release: string; line: number; id: number; type?: string }): string {
  return [
    `2024-01-05 12:00:00,123 ERROR Internal Server Error: /api/orders/${opts.id}`,
    'Traceback (most recent call last):',
    '  File "/usr/lib/python3.11/site-packages/django/core/handlers/exception.py", line 55, in inner',
    '    response = get_response(request)',
    `  File "/srv/releases/${opts.release}/shop/orders/views.py", line ${opts.line}, in detail`,
    '    order = load_order(order_id)',
    `  File "/srv/releases/${opts.release}/shop/orders/models.py", line ${opts.line + 30}, in load_order`,
    '    return Order.objects.get(pk=order_id)',
    '  File "<frozen importlib._bootstrap>", line 1, in _call_with_frames_removed',
    `${opts.type ?? 'orders.models.Order.DoesNotExist'}: Order ${opts.id} for user ${opts.id * 7}@example.com not found (request 3f2a0c1e-9b7d-4c1a-8e2f-0a1b2c3d4e5f from 10.0.${opts.id % 255}.4)`,
  ].join('\n')
}

function fromPython(text: string): ReturnType<typeof fingerprintError> {
  const f = parsePython(text, UTC).fields
  return fingerprintError({ type: f['error.type'] as string, message: f['error.message'] as string, stack: f['error.stack_trace'] as string })
}

t.test('Python: the same exception with other ids, numbers, lines and release paths has one fingerprint', async (t) => {
  const a = fromPython(pythonRecord({ release: '2024-01-01', line: 42, id: 17 }))!
  const b = fromPython(pythonRecord({ release: '2024-02-09', line: 57, id: 90211 }))!
  t.equal(a.fingerprint, b.fingerprint)
  t.equal(a.type, 'orders.models.Order.DoesNotExist')
  t.same(a.frames, ['orders/models.py in load_order', 'orders/views.py in detail'],
    'in-app frames only, innermost first, no line numbers; site-packages and <frozen> left out')
  const other = fromPython(pythonRecord({ release: '2024-01-01', line: 42, id: 17, type: 'orders.models.PaymentError' }))!
  t.not(other.fingerprint, a.fingerprint, 'another exception type, another fingerprint')
})

t.test('Python: a chained traceback is fingerprinted by the exception finally raised', async (t) => {
  const chained = (inner: string): string => [
    'Traceback (most recent call last):',
    '  File "/app/billing/charge.py", line 10, in charge',
    `    ${inner}`,
    'KeyError: \'card\'',
    '',
    'During handling of the above exception, another exception occurred:',
    '',
    'Traceback (most recent call last):',
    '  File "/app/billing/api.py", line 99, in post',
    '    charge(order)',
    'billing.errors.ChargeFailed: could not charge order 1234',
  ].join('\n')
  const a = fingerprintError({ stack: chained('x = payload["card"]'), type: 'billing.errors.ChargeFailed', message: 'could not charge order 1234' })!
  t.same(a.frames, ['billing/api.py in post'])
  const b = fingerprintError({ stack: chained('y = other'), type: 'billing.errors.ChargeFailed', message: 'could not charge order 98' })!
  t.equal(a.fingerprint, b.fingerprint)
})

const nodeStack = (line: number, lib: string, msg = "Cannot read properties of undefined (reading 'id')"): string => [
  `TypeError: ${msg}`,
  `    at getUser (/home/deploy/app-v${line}/src/users/service.js:${line}:17)`,
  `    at async Router.handle (/home/deploy/app-v${line}/src/http/router.js:${line * 2}:9)`,
  `    at Layer.handle [as handle_request] (/home/deploy/app-v${line}/node_modules/express/lib/router/${lib}.js:95:5)`,
  '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
].join('\n')

t.test('Node.js: line, column, deploy path and library frames do not change the fingerprint', async (t) => {
  const a = fingerprintError({ stack: nodeStack(10, 'layer') })!
  const b = fingerprintError({ stack: nodeStack(31, 'route') })!
  t.equal(a.type, 'TypeError', 'the type is read from the stack when not given')
  t.same(a.frames, ['users/service.js in getUser', 'http/router.js in Router.handle'])
  t.equal(a.fingerprint, b.fingerprint)
  const elsewhere = fingerprintError({ stack: nodeStack(10, 'layer').replace('getUser', 'getOrder') })!
  t.not(elsewhere.fingerprint, a.fingerprint, 'another function: another bug')
  t.same(topFrames(nodeStack(10, 'layer'), 3), [
    'at getUser (/home/deploy/app-v10/src/users/service.js:10:17)',
    'at async Router.handle (/home/deploy/app-v10/src/http/router.js:20:9)',
  ], 'frames for people keep their line numbers')
})

t.test('pino err.stack in a JSON line is fingerprinted like the same stack elsewhere', async (t) => {
  const line = (reqId: string, line: number): string => JSON.stringify({
    level: 50, time: 1704456000000, pid: 1, hostname: 'api-1', reqId,
    err: { type: 'TypeError', message: "Cannot read properties of undefined (reading 'id')", stack: nodeStack(line, 'layer') },
    msg: 'request failed',
  })
  const parsed = (text: string): ReturnType<typeof fingerprintError> => {
    const { fields } = parseJson(text, UTC)
    return fingerprintError({ type: fields['error.type'] as string, message: fields['error.message'] as string, stack: fields['error.stack_trace'] as string })
  }
  const a = parsed(line('req-1', 10))!
  const b = parsed(line('req-2', 77))!
  t.equal(a.fingerprint, b.fingerprint)
  t.equal(a.fingerprint, fingerprintError({ type: 'TypeError', message: "Cannot read properties of undefined (reading 'id')", stack: nodeStack(1, 'x') })!.fingerprint)
})

t.test('Java: the top exception before Caused by, JDK frames and generated class names left out', async (t) => {
  const java = (line: number, lambda: string, cause: string): string => [
    'java.lang.IllegalStateException: Order 4711 is locked',
    `\tat com.shop.orders.OrderService.lock(OrderService.java:${line})`,
    `\tat com.shop.orders.OrderService$$Lambda$${lambda}.apply(Unknown Source)`,
    '\tat java.base/java.util.concurrent.FutureTask.run(FutureTask.java:264)',
    `\tat app//com.shop.web.OrderController.post(OrderController.java:${line + 5})`,
    `Caused by: java.sql.SQLException: ${cause}`,
    '\tat com.shop.db.Pool.get(Pool.java:10)',
  ].join('\n')
  const a = fingerprintError({ stack: java(10, '14/0x0000000800c1a2b8', 'timeout') })!
  const b = fingerprintError({ stack: java(22, '99/0x0000000800ffee00', 'deadlock') })!
  t.equal(a.type, 'java.lang.IllegalStateException')
  t.same(a.frames, ['com.shop.orders.OrderService.lock', 'com.shop.orders.OrderService$$.apply', 'com.shop.web.OrderController.post'])
  t.equal(a.fingerprint, b.fingerprint)
})

t.test('recursion folds to one frame; without in-app frames all frames count', async (t) => {
  const deep = (n: number): string => ['RangeError: Maximum call stack size exceeded',
    ...Array.from({ length: n }, () => '    at walk (/app/src/tree.js:5:3)')].join('\n')
  t.equal(fingerprintError({ stack: deep(3) })!.fingerprint, fingerprintError({ stack: deep(40) })!.fingerprint)
  const libOnly = (lib: string): string => `Error: x\n    at f (/app/node_modules/${lib}/index.js:1:1)`
  t.not(fingerprintError({ stack: libOnly('pg') })!.fingerprint, fingerprintError({ stack: libOnly('redis') })!.fingerprint)
  t.same(fingerprintError({ stack: libOnly('pg') })!.frames, ['pg/index.js in f'])
})

t.test('message normalisation: variable parts become placeholders, words stay', async (t) => {
  t.equal(normalizeMessage('user 42 (ann.lee+x@mail.example.org) from 192.168.0.12:5432 and fe80::1 failed'),
    'user <num> (<email>) from <ip> and <ip> failed')
  t.equal(normalizeMessage('object 0x7f3a2b1c and commit 9f86d081884c7d65 at req 123e4567-e89b-12d3-a456-426614174000'),
    'object <hex> and commit <hex> at req <uuid>')
  t.equal(normalizeMessage(`relation "orders_2024" does not exist; can't parse 'abc' in user's name`),
    "relation <str> does not exist; can't parse <str> in user's name")
  t.equal(normalizeMessage('Foo::bar failed in std::io  after   3.5s'), 'Foo::bar failed in std::io after <num>s')
  t.equal(normalizeMessage('v2 api user42'), 'v2 api user42', 'digits inside words are part of the word')
})

t.test('no error information: no fingerprint', async (t) => {
  t.equal(fingerprintError({}), undefined)
  t.ok(fingerprintError({ message: 'boom' }), 'a message alone is enough')
})

t.test('history: count, first and last seen; a return after the quiet period is a regression', async (t) => {
  const h = new ExceptionHistory({ regressionAfter: 24 * 3600_000 })
  const sig = fingerprintError({ type: 'TypeError', message: 'x is not a function' })!
  const first = h.record(sig, 1000)
  t.match(first, { fingerprint: sig.fingerprint, type: 'TypeError', count: 1, firstSeen: 1000, lastSeen: 1000, regression: false })
  t.match(h.record(sig, 5000), { count: 2, firstSeen: 1000, lastSeen: 5000, regression: false })
  const back = h.record(sig, 5000 + 25 * 3600_000)
  t.match(back, { count: 3, firstSeen: 1000, regression: true }, 'quiet for 25 hours: regression')
  t.match(h.record(sig, 6000 + 25 * 3600_000), { regression: false }, 'and the next one is not')

  const restored = new ExceptionHistory()
  restored.import(JSON.parse(JSON.stringify(h.export())))
  t.match(restored.record(sig, 7000 + 25 * 3600_000), { count: 5, firstSeen: 1000 }, 'the history survives export/import')
})

t.test('history is bounded', async (t) => {
  const h = new ExceptionHistory({ maxSize: 10 })
  for (let i = 0; i < 100; i++) h.record(fingerprintError({ type: `E${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + Math.floor(i / 26))}` })!, i)
  t.equal(h.size, 10)
})

t.test('exception info redacts secrets from the message', async (t) => {
  const h = new ExceptionHistory()
  const info = h.record(fingerprintError({ type: 'OperationalError', message: 'could not connect to postgres://app:s3cret@db:5432/shop' })!, 0)
  t.equal(info.message, 'could not connect to postgres://app:[REDACTED]@db:5432/shop')
})
