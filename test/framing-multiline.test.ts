/**
 * Multiline joining: Python tracebacks join the record that reported them, Java and Node.js
 * stack traces stay whole, Filebeat-style patterns behave as in Filebeat, and groups are closed
 * by idleness and by the size limits without losing a line.
 */
import t from 'tap'
import type { MultilineConfig } from '../agent/config/types'
import type { RawRecord } from '../agent/entry'
import { LineSplitter } from '../agent/framing/lines'
import { Multiline } from '../agent/framing/multiline'

function config(over: Partial<MultilineConfig>): MultilineConfig {
  return { type: 'pattern', negate: false, match: 'after', timeout: 5000, max_lines: 500, max_bytes: 10 * 1024 * 1024, ...over }
}

function lines(text: string, maxLineBytes = 1024 * 1024): RawRecord[] {
  const s = new LineSplitter(0, maxLineBytes)
  const out: RawRecord[] = []
  s.push(Buffer.from(text), out)
  s.flushPartial(out)
  return out
}

/** Frames and joins `text` as the harvester does, flushing at the end of the source. */
function join(cfg: MultilineConfig, text: string): RawRecord[] {
  const m = new Multiline(cfg)
  const out: RawRecord[] = []
  for (const r of lines(text)) m.push(r, out, 0)
  m.flush(out)
  return out
}

/** The source bytes a record covers, without its final line break. */
function sourceOf(text: string, r: RawRecord): string {
  return Buffer.from(text).subarray(r.offset, r.end).toString().replace(/\r?\n$/, '')
}

const DJANGO = `INFO 2024-03-05 10:15:01,101 basehttp 17 140230 "GET /api/orders/ HTTP/1.1" 200 512
ERROR 2024-03-05 10:15:02,311 log 17 140230 Internal Server Error: /api/orders/42/
Traceback (most recent call last):
  File "/app/orders/views.py", line 27, in detail
    order = Order.objects.get(pk=pk)
            ^^^^^^^^^^^^^^^^^^^^^^^^
  File "/app/venv/lib/python3.11/site-packages/django/db/models/manager.py", line 87, in manager_method
    return getattr(self.get_queryset(), name)(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/app/venv/lib/python3.11/site-packages/django/db/models/query.py", line 637, in get
    raise self.model.DoesNotExist(
orders.models.Order.DoesNotExist: Order matching query does not exist.

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/orders/views.py", line 29, in detail
    raise OrderLookupError(pk) from exc
orders.errors.OrderLookupError: 42

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/venv/lib/python3.11/site-packages/django/core/handlers/exception.py", line 55, in inner
    response = get_response(request)
               ^^^^^^^^^^^^^^^^^^^^^
  File "/app/venv/lib/python3.11/site-packages/django/core/handlers/base.py", line 197, in _get_response
    response = wrapped_callback(request, *callback_args, **callback_kwargs)
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/app/orders/views.py", line 33, in detail
    return render(request, "orders/detail.html", {"order": order})
                                                           ^^^^^
UnboundLocalError: cannot access local variable 'order' where it is not associated with a value
WARNING 2024-03-05 10:15:03,002 log 17 140230 Not Found: /favicon.ico
INFO:root:plain basicConfig format
`

t.test('python: a Django traceback with chained exceptions joins the record that reported it', async (t) => {
  const out = join(config({ type: 'python' }), DJANGO)
  t.equal(out.length, 4)
  const [info, error, warning, plain] = out as [RawRecord, RawRecord, RawRecord, RawRecord]
  t.match(info.text, /^INFO .* 200 512$/)
  t.equal(info.flags, undefined)
  t.match(error.text, /^ERROR .*Internal Server Error: \/api\/orders\/42\/\nTraceback/)
  t.match(error.text, /\nUnboundLocalError: cannot access local variable 'order' where it is not associated with a value$/, 'ends with the last exception line')
  t.equal(error.text, sourceOf(DJANGO, error), 'the text is the source, blank lines between the tracebacks included')
  t.strictSame(error.flags, ['multiline'])
  t.equal(error.offset, info.end)
  t.equal(error.end, warning.offset)
  t.match(warning.text, /^WARNING .*favicon/)
  t.equal(warning.flags, undefined, 'the next record stands alone')
  t.equal(plain.text, 'INFO:root:plain basicConfig format', '"INFO:root:" is not mistaken for an exception line')
})

t.test('python: an exception group (3.11) belongs to its record', async (t) => {
  const text = `ERROR 2024-03-05 10:15:02,294 tasks group failed
  + Exception Group Traceback (most recent call last):
  |   File "/app/tasks.py", line 22, in <module>
  |     raise ExceptionGroup('eg', [ValueError(1), TypeError(2)])
  | ExceptionGroup: eg (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: 1
    +---------------- 2 ----------------
    | TypeError: 2
    +------------------------------------
INFO 2024-03-05 10:15:02,295 tasks after
`
  const out = join(config({ type: 'python' }), text)
  t.equal(out.length, 2)
  t.equal(out[0]!.text, sourceOf(text, out[0]!))
  t.match(out[0]!.text, /\+-{36}$/)
  t.equal(out[1]!.text, 'INFO 2024-03-05 10:15:02,295 tasks after')
})

t.test('python: where a traceback ends', async (t) => {
  const text = `ERROR 2024-03-05 10:00:00,000 app first
Traceback (most recent call last):
  File "/app/a.py", line 1, in <module>
ValueError: bad value
second line of the message
ERROR 2024-03-05 10:00:01,000 app second
Traceback (most recent call last):
  File "/app/b.py", line 3, in <module>
ERROR 2024-03-05 10:00:02,000 app third, written while the traceback above was cut off
KeyboardInterrupt
`
  const out = join(config({ type: 'python' }), text)
  t.strictSame(out.map((r) => r.text.split('\n').length), [4, 1, 3, 1, 1])
  t.match(out[0]!.text, /ValueError: bad value$/, 'the exception line is the last line of the traceback')
  t.equal(out[1]!.text, 'second line of the message', 'an unindented line after it cannot be told from a new record')
  t.match(out[2]!.text, /^ERROR .* second\n.*\n  File "\/app\/b.py"/)
  t.match(out[3]!.text, /^ERROR .* third/, 'a log line where the exception line should be starts a new record')
  t.equal(out[4]!.text, 'KeyboardInterrupt', 'outside a traceback an exception-like line is a record of its own')
})

t.test('python: a traceback with nothing before it is a record flagged multiline', async (t) => {
  const out = join(config({ type: 'python' }), 'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\nNameError: name \'y\' is not defined\n')
  t.equal(out.length, 1)
  t.strictSame(out[0]!.flags, ['multiline'])
  t.equal(out[0]!.text.split('\n').length, 3)
})

const JAVA = `2024-03-05 10:15:02.311 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet] : Servlet.service() threw exception
java.lang.IllegalStateException: Failed to load order 42
\tat com.example.orders.OrderService.load(OrderService.java:88)
\tat com.example.orders.OrderController.detail(OrderController.java:41)
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tSuppressed: java.lang.RuntimeException: close failed
\t\tat com.example.orders.Db.close(Db.java:12)
\t\t... 2 more
Caused by: java.sql.SQLException: Connection refused
\tat org.postgresql.Driver.connect(Driver.java:285)
\tat com.example.orders.OrderService.load(OrderService.java:80)
\t... 12 more
Caused by: java.net.ConnectException: Connection refused (Connection refused)
\tat java.base/sun.nio.ch.Net.connect0(Native Method)
\t... 3 common frames omitted
2024-03-05 10:15:03.000  INFO 1 --- [           main] c.e.App                                  : next
`

t.test('java: a stack trace with Suppressed, Caused by and "... N more" stays whole', async (t) => {
  const out = join(config({ type: 'java' }), JAVA)
  t.equal(out.length, 3)
  t.match(out[0]!.text, /Servlet\.service\(\) threw exception$/)
  t.equal(out[0]!.flags, undefined)
  t.match(out[1]!.text, /^java\.lang\.IllegalStateException: Failed to load order 42\n\tat /)
  t.match(out[1]!.text, /\n\t\.\.\. 3 common frames omitted$/)
  t.equal(out[1]!.text.split('\n').length, 14)
  t.equal(out[1]!.text, sourceOf(JAVA, out[1]!))
  t.strictSame(out[1]!.flags, ['multiline'])
  t.match(out[2]!.text, /INFO .* next$/)
})

// As Node.js 20 prints them (console.error(err), util.inspect).
const NODE = `Error: ENOENT: no such file or directory, open '/nope'
    at Object.openSync (node:fs:573:18)
    at Object.readFileSync (node:fs:452:35)
    at node:internal/main/eval_string:51:3 {
  errno: -2,
  code: 'ENOENT',
  syscall: 'open',
  path: '/nope'
}
Error: outer
    at [eval]:3:11
    ... 4 lines matching cause stack trace ...
    at node:internal/main/eval_string:51:3 {
  [cause]: TypeError: inner
      at [eval]:3:39
      at node:internal/main/eval_string:51:3
}
TypeError: Cannot read properties of undefined (reading 'id')
    at handler (/app/src/routes/orders.js:12:22)
    at async Promise.all (index 0)
server listening on :3000
`

t.test('java type, Node.js stacks: frames, elided frames and the error\'s properties stay with the error line', async (t) => {
  const out = join(config({ type: 'java' }), NODE)
  t.strictSame(out.map((r) => r.text.split('\n')[0]), [
    "Error: ENOENT: no such file or directory, open '/nope'",
    'Error: outer',
    "TypeError: Cannot read properties of undefined (reading 'id')",
    'server listening on :3000',
  ])
  t.strictSame(out.map((r) => r.text.split('\n').length), [9, 8, 3, 1])
  for (const r of out.slice(0, 3)) t.equal(r.text, sourceOf(NODE, r))
  t.equal(out[3]!.flags, undefined)
})

t.test('pattern: the four negate/match combinations behave as Filebeat documents them', async (t) => {
  const cases: Array<[boolean, 'after' | 'before', string, string[]]> = [
    [false, 'after', 'a b1 b2 c b3 b4', ['a b1 b2', 'c b3 b4']],
    [false, 'before', 'b1 b2 a b3 b4 c', ['b1 b2 a', 'b3 b4 c']],
    [true, 'after', 'b1 a c b2 d e', ['b1 a c', 'b2 d e']],
    [true, 'before', 'a c b1 d e b2', ['a c b1', 'd e b2']],
  ]
  for (const [negate, match, input, want] of cases) {
    const out = join(config({ pattern: '^b', negate, match }), input.split(' ').join('\n') + '\n')
    t.strictSame(out.map((r) => r.text.split('\n').join(' ')), want, `negate ${negate}, match ${match}`)
    t.ok(out.every((r) => r.flags?.includes('multiline')), 'joined records are flagged')
  }
})

t.test('pattern, match before: a record is emitted as soon as its last line arrives', async (t) => {
  const m = new Multiline(config({ pattern: '\\\\$', match: 'before' }))
  const out: RawRecord[] = []
  const recs = lines('SELECT *\\\nFROM t\\\nWHERE x\nsingle\n')
  m.push(recs[0]!, out, 0)
  m.push(recs[1]!, out, 0)
  t.equal(out.length, 0, 'lines that lead on are held')
  t.equal(m.pendingOffset, 0)
  m.push(recs[2]!, out, 0)
  t.equal(out.length, 1, 'the line that does not lead on completes the record at once')
  t.equal(out[0]!.text, 'SELECT *\\\nFROM t\\\nWHERE x')
  t.equal(m.pending, 0)
  m.push(recs[3]!, out, 0)
  t.equal(out[1], recs[3], 'a record of one line is passed on as it is')
  t.equal(m.pendingOffset, undefined)
})

t.test('pattern: Filebeat examples with POSIX classes and negation', async (t) => {
  const java = join(config({ pattern: '^[[:space:]]+(at|\\.{3})[[:space:]]+\\b|^Caused by:' }), JAVA)
  t.strictSame(java.map((r) => r.text.split('\n').length), [1, 4, 10, 1], 'Filebeat\'s Java pattern leaves Suppressed: lines on their own')
  const brackets = join(config({ pattern: '^\\[', negate: true }), '[2024-03-05 10:00:00] one\ncontinued\n  more\n[2024-03-05 10:00:01] two\n')
  t.strictSame(brackets.map((r) => r.text), ['[2024-03-05 10:00:00] one\ncontinued\n  more', '[2024-03-05 10:00:01] two'])
  const digits = join(config({ pattern: '^[[:digit:]]{4}-', negate: true }), '2024-03-05 one\nx\n2024-03-05 two\n')
  t.strictSame(digits.map((r) => r.text), ['2024-03-05 one\nx', '2024-03-05 two'])
})

t.test('pattern: a missing or broken pattern is a configuration error', async (t) => {
  t.throws(() => new Multiline(config({})), { code: 'LW_CONFIG_MISSING_KEY' })
  t.throws(() => new Multiline(config({ pattern: '^(at' })), { code: 'LW_CONFIG_REGEX', message: /multiline\.pattern/ })
})

t.test('timeout: an idle group is flushed only when the caller\'s clock says so', async (t) => {
  const m = new Multiline(config({ type: 'python', timeout: 5000 }))
  const out: RawRecord[] = []
  const recs = lines('ERROR boom\nTraceback (most recent call last):\n  File "a.py", line 1, in <module>\n  File "b.py", line 2, in f\nValueError: x\n')
  m.push(recs[0]!, out, 1000)
  m.push(recs[1]!, out, 1010)
  m.push(recs[2]!, out, 1020)
  t.equal(m.pendingOffset, 0)
  t.equal(m.pending, recs[2]!.end, 'pending counts the bytes held')
  m.flushIfIdle(6019, out)
  t.equal(out.length, 0, 'not yet idle for the timeout')
  m.flushIfIdle(6020, out)
  t.equal(out.length, 1, 'idle for the timeout: flushed')
  t.equal(out[0]!.text.split('\n').length, 3)
  t.strictSame([m.pending, m.pendingOffset], [0, undefined])
  m.flushIfIdle(99999, out)
  t.equal(out.length, 1, 'nothing held, nothing flushed')

  // The rest of the traceback arrives late: it is still a traceback, marked as a part of one.
  m.push(recs[3]!, out, 20000)
  m.push(recs[4]!, out, 20001)
  m.flush(out)
  t.equal(out.length, 2)
  t.equal(out[1]!.text, '  File "b.py", line 2, in f\nValueError: x')
  t.strictSame(out[1]!.flags, ['multiline'])
  t.strictSame([out[1]!.offset, out[1]!.end], [recs[3]!.offset, recs[4]!.end])
})

t.test('max_lines and max_bytes: a long group is emitted in parts, none lost, all flagged', async (t) => {
  const trace = 'java.lang.StackOverflowError\n' + Array.from({ length: 9 }, (_, i) => `\tat com.example.Deep.f${i}(Deep.java:${i})`).join('\n') + '\nnext record\n'
  const byLines = join(config({ type: 'java', max_lines: 4 }), trace)
  t.strictSame(byLines.map((r) => r.text.split('\n').length), [4, 4, 2, 1])
  const byBytes = join(config({ type: 'java', max_bytes: 100 }), trace)
  t.ok(byBytes.length > 3, `${byBytes.length} parts`)
  for (const [name, out] of [['max_lines', byLines], ['max_bytes', byBytes]] as const) {
    const parts = out.slice(0, -1)
    t.ok(parts.every((r) => r.flags?.includes('multiline')), `${name}: every part is flagged`)
    t.equal(parts.map((r) => r.text).join('\n'), trace.split('\nnext record')[0], `${name}: the parts make up the whole`)
    t.ok(out.every((r, i) => i === 0 || r.offset === out[i - 1]!.end), `${name}: the parts tile the source`)
    t.equal(out[out.length - 1]!.text, 'next record')
    t.equal(out[out.length - 1]!.flags, undefined)
  }
  t.ok(byBytes.slice(0, -1).every((r) => r.end - r.offset <= 100 || r.text.split('\n').length === 1), 'a part exceeds max_bytes only when one line does')
})

t.test('flags of the joined lines are kept, and a cut line gives the group its source length', async (t) => {
  const m = new Multiline(config({ type: 'java' }))
  const out: RawRecord[] = []
  const text = 'Error: x\n    at ' + 'f'.repeat(100) + '\n    at g (\u0000.js:1:1)\n'
  const s = new LineSplitter(0, 40)
  const recs: RawRecord[] = []
  s.push(Buffer.from(text), recs)
  for (const r of recs) m.push(r, out, 0)
  m.flush(out)
  t.equal(out.length, 1)
  t.strictSame(out[0]!.flags, ['truncated', 'binary', 'multiline'])
  t.equal(out[0]!.originalBytes, Buffer.byteLength(text))
  t.strictSame([out[0]!.offset, out[0]!.end], [0, Buffer.byteLength(text)])
})
