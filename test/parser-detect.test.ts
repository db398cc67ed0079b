/**
 * Format detection for `format: auto`: a vote of a file's first lines, in which stack and
 * traceback lines do not count.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { detectFormat } from '../agent/parsers/detect'

const FIXTURES = join(__dirname, 'fixtures', 'parsers')
const CORPUS = join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log')

function lines(path: string, count = 50): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, count)
}

t.test('each fixture is detected as its format', async (t) => {
  const expected: Array<[string, string]> = [
    ['pino.ndjson', 'json'],
    ['pino-http.ndjson', 'json'],
    ['structlog.ndjson', 'json'],
    ['python-json-logger.ndjson', 'json'],
    ['ecs-logging.ndjson', 'json'],
    ['generic.ndjson', 'json'],
    ['nginx-access.log', 'access'],
    ['apache-access.log', 'access'],
    ['django.log', 'python'],
    ['logging-default.log', 'python'],
    ['django-verbose.log', 'python'],
    ['basic-config.log', 'python'],
    ['gunicorn.log', 'python'],
    ['uvicorn.log', 'python'],
    ['celery.log', 'python'],
    ['node-stack.log', 'plain'],
    ['java-stack.log', 'plain'],
  ]
  for (const [file, format] of expected) t.equal(detectFormat(lines(join(FIXTURES, file))), format, file)
})

t.test('the Apache corpus is access', async (t) => {
  t.equal(detectFormat(lines(CORPUS, 100)), 'access')
})

t.test('tracebacks do not outvote the records they belong to', async (t) => {
  // django.log: three records, 25 traceback lines.
  const sample = lines(join(FIXTURES, 'django.log'))
  t.ok(sample.length > 20)
  t.equal(detectFormat(sample), 'python')
})

t.test('a few banner lines do not hide a JSON file', async (t) => {
  const sample = ['Starting billing-api v2.3.1', 'listening on :3000', ...lines(join(FIXTURES, 'pino.ndjson'), 2)]
  t.equal(detectFormat(sample), 'json')
})

t.test('mostly free text with a stray match stays plain', async (t) => {
  const sample = ['server started', 'accepting connections', 'worker 1 ready', 'worker 2 ready', 'ERROR:root:one-off', 'shutting down', 'bye']
  t.equal(detectFormat(sample), 'plain')
})

t.test('nothing to go on: plain', async (t) => {
  t.equal(detectFormat([]), 'plain')
  t.equal(detectFormat(['', '   ', '\tat x']), 'plain')
})

t.test('broken JSON lines are votes for plain, not json', async (t) => {
  t.equal(detectFormat(['{not json', '{also not', '{nope', '{"a":1}']), 'plain', 'one in four')
  t.equal(detectFormat(['{not json', '{"a":1}', '{"a":2}']), 'json', 'two in three')
})
