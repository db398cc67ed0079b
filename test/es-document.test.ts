import t from 'tap'
import type { Entry, FieldValue } from '../agent/entry'
import { buildDocument, documentId, DocumentBuilder, FIELD_ROOTS } from '../transports/elasticsearch/document'
import { JsonWriter } from '../transports/elasticsearch/json-writer'
import { parseJson, plainRoots } from '../agent/parsers/json'

/** Keys of the top-level object of a JSON text, in order, duplicates kept (JSON.parse would merge them). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = []
  let depth = 0
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"') {
      let j = i + 1
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string)
      expectKey = false
      i = j
    } else if (c === '{' || c === '[') {
      depth++
      expectKey = c === '{' && depth === 1
    } else if (c === '}' || c === ']') {
      depth--
    } else if (c === ',' && depth === 1) {
      expectKey = true
    }
  }
  return keys
}

function jsonEntry(text: string, fields: Record<string, FieldValue> = {}): Entry {
  return { sourceId: 'src', offset: 0, end: text.length + 1, text, fields, object: JSON.parse(text) as Record<string, unknown> }
}

const added = { 'log.file.path': '/var/log/app.log', 'log.offset': 42, 'host.name': 'web-1', 'service.name': 'billing' }

t.test('a JSON entry keeps its original text and gets the derived fields in front', async (t) => {
  const text = '{"level":30,"time":1700000000000,"msg":"paid","amount":12.50,"nested":{"a":[1,2]}}'
  const doc = buildDocument(jsonEntry(text, { 'log.level': 'info', message: 'paid', '@timestamp': '2023-11-14T22:13:20.000Z' }), added)
  // The original members are carried byte for byte (12.50 was not re-serialised as 12.5).
  t.ok(doc.endsWith(text.slice(1)), 'original text after the derived fields')
  const parsed = JSON.parse(doc) as Record<string, unknown>
  t.same(parsed, {
    'log.file.path': '/var/log/app.log', 'log.offset': 42, 'host.name': 'web-1', 'service.name': 'billing',
    'log.level': 'info', message: 'paid', '@timestamp': '2023-11-14T22:13:20.000Z',
    level: 30, time: 1700000000000, msg: 'paid', amount: 12.5, nested: { a: [1, 2] }
  })
  const keys = topLevelKeys(doc)
  t.equal(new Set(keys).size, keys.length, 'no key twice')
})

t.test('a derived field the original object already has, in any spelling, is left out', async (t) => {
  const cases: Array<[string, string]> = [
    ['{"message":"mine"}', 'message'],
    ['{"log":{"level":"warn"}}', 'log.level'],
    ['{"log.level":"warn"}', 'log.level'],
    ['{"log":{"file.path":"/x"}}', 'log.file.path'],
    // something beneath the path: a value there would clash with the original's object
    ['{"error":{"type":{"code":1}}}', 'error.type'],
    ['{"error.type.code":1}', 'error.type']
  ]
  for (const [text, path] of cases) {
    const doc = buildDocument(jsonEntry(text, { [path]: 'derived' }), {})
    t.equal(doc, text, `${text} keeps ${path} as it is`)
  }
})

t.test('a plain value under a name the template maps as an object is moved to logwarden.<name>', async (t) => {
  // Elasticsearch would refuse these documents (object mapping vs. concrete value): structlog
  // writes "event": "...", python-json-logger "process": 311, Docker "log": "...".
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['{"host":"web-9"}', 'host.name', { 'host.name': 'derived', 'logwarden.host': 'web-9' }],
    ['{"service":["a"]}', 'service.name', { 'service.name': 'derived', 'logwarden.service': ['a'] }],
    ['{"log":null}', 'log.offset', { 'log.offset': 'derived', 'logwarden.log': null }],
    ['{"event":"user logged in","level":"info"}', 'message', { message: 'derived', 'logwarden.event': 'user logged in', level: 'info' }],
    // nested: http.response is mapped as an object too
    ['{"http":{"response":"n/a","x":1}}', 'http.response.status_code', { 'http.response.status_code': 'derived', http: { x: 1 }, 'logwarden.http.response': 'n/a' }],
  ]
  for (const [text, path, expected] of cases) {
    const doc = buildDocument(jsonEntry(text, { [path]: 'derived' }), {})
    t.same(JSON.parse(doc), expected, `${text}: moved aside, ${path} derived`)
  }
})

t.test('fields that do not clash are added next to nested originals', async (t) => {
  const text = '{"log":{"logger":"db"},"error":{"message":"boom"}}'
  const doc = buildDocument(jsonEntry(text, { 'error.type': 'Error', 'log.level': 'error' }), added)
  t.match(JSON.parse(doc), { 'error.type': 'Error', 'log.level': 'error', log: { logger: 'db' }, error: { message: 'boom' } })
  const keys = topLevelKeys(doc)
  t.equal(new Set(keys).size, keys.length, 'no key twice')
})

t.test('added wins over a parser field of the same name, and appears once', async (t) => {
  const doc = buildDocument(jsonEntry('{"a":1}', { 'service.name': 'from-parser' }), added)
  t.equal(topLevelKeys(doc).filter((k) => k === 'service.name').length, 1)
  t.equal((JSON.parse(doc) as Record<string, unknown>)['service.name'], 'billing')
})

t.test('edge shapes of JSON text stay valid single-line JSON', async (t) => {
  t.same(JSON.parse(buildDocument(jsonEntry('{}'), { 'log.offset': 1 })), { 'log.offset': 1 }, 'empty object')
  t.same(JSON.parse(buildDocument(jsonEntry('{ }'), { 'log.offset': 1 })), { 'log.offset': 1 }, 'empty object with a space')
  t.same(JSON.parse(buildDocument(jsonEntry('  {"a":1}'), { 'log.offset': 1 })), { 'log.offset': 1, a: 1 }, 'leading spaces')
  const pretty = '{\n  "a": 1,\r\n  "b": "x"\n}'
  const doc = buildDocument(jsonEntry(pretty), { 'log.offset': 1 })
  t.notOk(doc.includes('\n'), 'no newline: one document per bulk line')
  t.same(JSON.parse(doc), { 'log.offset': 1, a: 1, b: 'x' })
  t.equal(buildDocument(jsonEntry('{"a":1}'), {}), '{"a":1}', 'nothing to add: the text as it is')
})

t.test('a non-JSON entry is its flat dotted fields', async (t) => {
  const entry: Entry = {
    sourceId: 's', offset: 0, end: 10, text: '127.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 10',
    fields: { message: 'GET /', 'http.response.status_code': 200, 'log.flags': ['truncated'] }
  }
  const doc = buildDocument(entry, added)
  t.notOk(doc.includes('\n'))
  t.same(JSON.parse(doc), { message: 'GET /', 'http.response.status_code': 200, 'log.flags': ['truncated'], ...added })
})

t.test('document ids are deterministic, short and distinct per source and offset', async (t) => {
  t.equal(documentId('file-abc', 1234), documentId('file-abc', 1234))
  const ids = new Set<string>()
  for (const source of ['file-abc', 'file-abd', 'spool-1']) {
    for (const offset of [0, 1, 35, 36, 1234, 2 ** 40]) ids.add(documentId(source, offset))
  }
  t.equal(ids.size, 18, 'all distinct')
  for (const id of ids) {
    t.ok(id.length <= 28, `${id} is short`)
    t.match(id, /^[A-Za-z0-9_-]+$/, 'URL-safe characters only')
  }
  t.equal(documentId('x'.repeat(1000), 0).length, documentId('y', 0).length, 'a long source id does not make a long _id')
})

t.test('a head of derived fields followed by the line\'s own bytes is the same document as build makes', async (t) => {
  const builder = new DocumentBuilder({ 'service.name': 'billing', 'host.name': 'web-1', 'event.dataset': 'billing.json', 'log.file.path': '/var/log/app.log' })
  const ctx = { timezone: 'UTC' }
  const lines: Array<[string, boolean]> = [
    ['{"level":30,"time":1700000000000,"msg":"paid","req":{"method":"GET","url":"/a?b=1","headers":{"user-agent":"curl/8"}},"res":{"statusCode":502}}', true],
    ['{"level":50,"msg":"naïve ☕","err":{"type":"TypeError","message":"x \\"quoted\\"","stack":"TypeError: x\\n    at f (/a.js:1:2)"}}', true],
    ['{"log.level":"warn","message":"mine","service":{"name":"own"}}', true],
    ['{"log":{"level":"warn"},"host":{"name":"own"}}', true],
    ['{"a":1}', true],
    ['{}', false],
    ['  {"a":1}', false],
    ['{"host":"plain value moved aside","msg":"m"}', false],
  ]
  for (const [text, usesTail] of lines) {
    const res = parseJson(text, ctx)
    const entry: Entry = { sourceId: 's', offset: 7, end: 8, text, fields: res.fields, object: res.object }
    for (const perEntry of [undefined, { 'log.flags': ['truncated'] }]) {
      const w = new JsonWriter(16)
      const tail = builder.write(w, entry, 7, perEntry, true)
      t.equal(tail, usesTail, `${text}: ${usesTail ? 'head and tail' : 'whole document'}`)
      const doc = tail ? w.toString() + text.slice(1) : w.toString()
      t.equal(doc, builder.build(entry, 7, perEntry), `${text}: same document`)
      t.doesNotThrow(() => JSON.parse(doc), 'valid JSON')
    }
  }
})

t.test('a line the parser calls plain has nothing the builder must look out for', async (t) => {
  // The builder skips its own pass over the keys for plain lines: every name it treats apart
  // must be one the parser rules out.
  const roots = plainRoots()
  t.same([...FIELD_ROOTS].filter((name) => !roots.has(name)), [], 'every ECS root name the builder watches is ruled out by `plain`')
  const ctx = { timezone: 'UTC' }
  t.equal(parseJson('{"level":30,"msg":"hi","req":{"url":"/x"}}', ctx).plain, true)
  for (const line of ['{"service":"x","msg":"hi"}', '{"tags":["a"]}', '{"a.b":1}', '{"message":"hi"}', '{"event":"login"}']) {
    t.equal(parseJson(line, ctx).plain, false, line)
  }
  // Written both ways (as the pipeline writes: a head, then the line's own bytes), the same.
  const builder = new DocumentBuilder({ 'service.name': 'svc' })
  const head = (entry: Entry): string => {
    const w = new JsonWriter()
    const tail = builder.write(w, entry, 0, undefined, true)
    return `${w.buf.toString('utf8', 0, w.at)} tail=${String(tail)}`
  }
  for (const line of ['{"level":30,"msg":"hi","req":{"method":"GET","url":"/a?b=1"},"res":{"statusCode":500}}', '{}', '{"x":1}']) {
    const res = parseJson(line, ctx)
    const entry: Entry = { sourceId: 's', offset: 0, end: line.length + 1, text: line, fields: res.fields, object: res.object }
    t.equal(head({ ...entry, plain: res.plain }), head(entry), line)
  }
})

t.test('one builder writes each entry by its own fields, whatever fields the entry before had', async (t) => {
  // The builder remembers the last entry's field names by position; a fresh builder per entry
  // is the reference.
  const constant = { 'service.name': 'billing', 'host.name': 'web-1' }
  const shared = new DocumentBuilder(constant)
  const entries: Array<Record<string, FieldValue>> = [
    { '@timestamp': '2024-01-01T00:00:00.000Z', message: 'a', 'log.level': 'info' },
    { '@timestamp': '2024-01-01T00:00:00.000Z', message: 'b', 'log.level': 'info' },
    { '@timestamp': '2024-01-01T00:00:00.000Z', 'service.name': 'not mine', message: 'c' },
    { '@timestamp': '2024-01-01T00:00:00.000Z', message: 'd', 'log.level': 'info', 'http.response.status_code': 500 },
    { message: 'e' },
    { '@timestamp': '2024-01-01T00:00:00.000Z', message: 'f', 'log.level': 'info' },
    Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`labels.k${i}`, i])),
    { '@timestamp': '2024-01-01T00:00:00.000Z', message: 'g', 'log.level': 'info' },
  ]
  for (const fields of entries) {
    for (const text of ['{"x":1}', 'plain text']) {
      const res = text.startsWith('{') ? parseJson(text, { timezone: 'UTC' }) : undefined
      const entry: Entry = { sourceId: 's', offset: 3, end: 4, text, fields, object: res?.object, plain: res?.plain }
      t.equal(shared.build(entry, 3), new DocumentBuilder(constant).build(entry, 3), `${JSON.stringify(fields).slice(0, 60)} / ${text}`)
    }
  }
})
