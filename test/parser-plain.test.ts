/**
 * The plain parser: the record is the message; a joined Node, Java or Python stack becomes
 * error.* as well.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parsePlain, stackHeadOf } from '../agent/parsers/plain'

const FIXTURES = join(__dirname, 'fixtures', 'parsers')
const UTC = { timezone: 'UTC' }

function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8').trimEnd()
}

t.test('a line is its own message, never an error', async (t) => {
  for (const text of ['hello world', '', '{"looks":"like json"}', 'Error: but a single line']) {
    t.same(parsePlain(text, UTC), { fields: { message: text } }, JSON.stringify(text))
  }
})

t.test('a Node stack', async (t) => {
  const text = fixture('node-stack.log')
  t.same(parsePlain(text, UTC).fields, {
    message: text,
    'error.stack_trace': text,
    'error.type': 'TypeError',
    'error.message': "Cannot read properties of undefined (reading 'id')",
  })
})

t.test('a Java stack with its thread prefix and a cause', async (t) => {
  const text = fixture('java-stack.log')
  const result = parsePlain(text, UTC)
  t.equal(result.error, undefined)
  t.equal(result.fields['message'], text)
  t.equal(result.fields['error.stack_trace'], text)
  t.equal(result.fields['error.type'], 'java.lang.IllegalStateException', 'the exception thrown, not its cause')
  t.equal(result.fields['error.message'], 'Queue full')
})

t.test('a Python traceback in a plain input', async (t) => {
  const text = 'job 17 failed\nTraceback (most recent call last):\n  File "job.py", line 3, in <module>\nOSError: [Errno 28] No space left on device'
  const fields = parsePlain(text, UTC).fields
  t.equal(fields['message'], text)
  t.equal(fields['error.type'], 'OSError')
  t.equal(fields['error.message'], '[Errno 28] No space left on device')
  t.equal(fields['error.stack_trace'], text.slice(text.indexOf('Traceback')))
})

t.test('multiline text that is no stack stays a message', async (t) => {
  const text = 'first line\nsecond line\n  indented but not a frame'
  t.same(parsePlain(text, UTC).fields, { message: text })
})

t.test('a stack under a log prefix keeps its trace, guesses no type', async (t) => {
  const text = '2024-01-05 12:00:00 ERROR request failed: boom\n    at handler (/srv/a.js:1:1)'
  t.same(parsePlain(text, UTC).fields, { message: text, 'error.stack_trace': text })
})

t.test('stackHeadOf', async (t) => {
  t.same(stackHeadOf('RangeError: Invalid array length\n    at x'), { type: 'RangeError', message: 'Invalid array length' })
  t.same(stackHeadOf('com.example.Outer$Inner: msg: with colon'), { type: 'com.example.Outer$Inner', message: 'msg: with colon' })
  t.same(stackHeadOf('java.lang.NullPointerException\n\tat A.b(A.java:1)'), { type: 'java.lang.NullPointerException' })
  t.same(stackHeadOf('something went wrong: x'), {})
})
