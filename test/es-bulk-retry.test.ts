/**
 * How the sink retries: the backoff and Retry-After arithmetic, what each bulk item status
 * means, and against the real Elasticsearch (through the fault proxy): only failed items are
 * sent again, a too-large request is split, reading waits while nothing can be shipped, and
 * close() tells whether everything was acked.
 */
import { createClient } from '../transports/elasticsearch/client'
import t, { type Test } from 'tap'
import pino from 'pino'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { backoffDelay, retryAfterMs, retryDelay, RETRY_AFTER_LIMIT_MS } from '../transports/elasticsearch/backoff'
import { classifyBulkResponse, classifyItem } from '../transports/elasticsearch/bulk-response'
import { ElasticsearchSink } from '../transports/elasticsearch/sink'
import { DocumentBuilder, documentId } from '../transports/elasticsearch/document'
import { JsonWriter } from '../transports/elasticsearch/json-writer'
import { parseJson } from '../agent/parsers/json'
import type { ElasticsearchConfig } from '../agent/config/types'
import { FaultProxy } from './support/fault-proxy'
import { AckRecorder, corpusDocs, dropEs, esConfig, esUrl, listIds, until } from './support/elasticsearch'

const logger = pino({ level: 'silent' })

t.test('backoff grows exponentially up to the cap, with jitter in the upper half', async (t) => {
  const low = (): number => 0
  const high = (): number => 1
  t.same([1, 2, 3, 4, 5].map((a) => backoffDelay(a, 100, 1000, high)), [100, 200, 400, 800, 1000])
  t.same([1, 2, 3, 4, 5].map((a) => backoffDelay(a, 100, 1000, low)), [50, 100, 200, 400, 500])
  t.equal(backoffDelay(10_000, 100, 30_000, high), 30_000, 'a huge attempt number stays at the cap')
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(3, 100, 1000)
    t.ok(d >= 200 && d <= 400, `${d} within [200, 400]`)
  }
})

t.test('Retry-After: seconds or an HTTP date, bounded, and only ever lengthens the wait', async (t) => {
  const now = Date.parse('2024-01-01T00:00:00Z')
  t.equal(retryAfterMs('3', now), 3000)
  t.equal(retryAfterMs(['2'], now), 2000)
  t.equal(retryAfterMs('Mon, 01 Jan 2024 00:00:10 GMT', now), 10_000)
  t.equal(retryAfterMs('Sun, 31 Dec 2023 23:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(retryAfterMs('86400', now), RETRY_AFTER_LIMIT_MS, 'bounded')
  t.equal(retryAfterMs(undefined, now), undefined)
  t.equal(retryAfterMs('soon', now), undefined)
  t.equal(retryDelay(1, 100, 1000, 5000, () => 1), 5000, 'the server asked for longer')
  t.equal(retryDelay(4, 100, 1000, 10, () => 1), 800, 'the backoff is longer than what the server asked')
  t.equal(retryDelay(1, 100, 1000, undefined, () => 1), 100)
})

t.test('what each bulk item status means', async (t) => {
  t.equal(classifyItem(201, undefined), 'created')
  t.equal(classifyItem(200, undefined), 'created')
  t.equal(classifyItem(409, 'version_conflict_engine_exception'), 'duplicate')
  for (const status of [429, 500, 502, 503, 504, 408, 401, 403]) t.equal(classifyItem(status, undefined), 'retry', `${status}`)
  t.equal(classifyItem(400, 'es_rejected_execution_exception'), 'retry', 'a thread-pool rejection whatever its status')
  t.equal(classifyItem(400, 'cluster_block_exception'), 'retry', 'a write block lifts')
  for (const status of [400, 404, 413]) t.equal(classifyItem(status, 'document_parsing_exception'), 'rejected', `${status}`)
  t.equal(classifyItem(400, 'illegal_argument_exception'), 'rejected')

  const results = classifyBulkResponse({
    errors: true,
    items: [
      { create: { status: 201 } },
      { create: { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'already exists' } } },
      { create: { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } } },
      { create: { status: 400, error: { type: 'document_parsing_exception', reason: 'failed to parse field [n]', caused_by: { type: 'illegal_argument_exception', reason: 'For input string: "x"' } } } }
    ]
  }, 4)
  t.same(results.map((r) => r.outcome), ['created', 'duplicate', 'retry', 'rejected'])
  t.equal(results[3]?.reason, 'failed to parse field [n]: For input string: "x"', 'the cause is kept with the reason')
  t.throws(() => classifyBulkResponse({ items: [{ create: { status: 201 } }] }, 2), { code: 'LW_ES_BULK_RETRY' }, 'fewer items than sent')
  t.throws(() => classifyBulkResponse('<html>', 1), { code: 'LW_ES_BULK_RETRY' }, 'not a bulk answer')
  t.throws(() => classifyBulkResponse({ items: [{ create: {} }] }, 1), { code: 'LW_ES_BULK_RETRY' }, 'an item without status')
})

interface Harness {
  url: string
  proxy: FaultProxy
  cfg: ElasticsearchConfig
  sink: ElasticsearchSink
  acks: AckRecorder
  stateDir: string
}

async function harness(t: Test, over: Partial<ElasticsearchConfig> = {}): Promise<Harness | undefined> {
  const url = esUrl(t)
  if (!url) return undefined
  const proxy = await FaultProxy.start(url)
  t.teardown(() => proxy.close())
  const cfg = esConfig(proxy.url, over)
  t.teardown(() => dropEs(url, `${cfg.index}*`))
  const client = createClient(cfg)
  t.teardown(() => client.close())
  const acks = new AckRecorder()
  const stateDir = mkdtempSync(join(tmpdir(), 'lw-retry-'))
  const sink = new ElasticsearchSink(cfg, { stateDir, client, logger, events: acks })
  return { url, proxy, cfg, sink, acks, stateDir }
}

t.test('a document refused again and again is retried alone until it goes in', async (t) => {
  const h = await harness(t, { batch_max_docs: 20 })
  if (!h) return
  const docs = corpusDocs(20, 'retry-one')
  const target = docs[7]?.id as string
  h.proxy.inject({ kind: 'item-429', select: (_i, _n, id) => id === target }, { times: 3, when: (r) => r.ids.includes(target) })
  for (const doc of docs) h.sink.push(doc)
  await h.sink.flush()
  t.ok(await h.sink.close(Date.now() + 5000))

  const withTarget = h.proxy.bulks().filter((r) => r.ids.includes(target))
  t.equal(withTarget.length, 4, 'three refusals, then it went in')
  t.same(withTarget.slice(1).map((r) => r.ids), [[target], [target], [target]], 'each retry carried only the refused document')
  t.match(h.sink.stats(), { created: 20, duplicates: 0, retries: 3, sent: 23, requests: 4 })
  t.same(await listIds(h.url, h.cfg.index), docs.map((d) => d.id).sort())
  t.same(h.acks.twice(), [])
})

t.test('the wait after a whole-request 429 honours Retry-After', async (t) => {
  const h = await harness(t, { retry_initial: 10, retry_max: 50 })
  if (!h) return
  h.proxy.inject({ kind: 'status', status: 429, retryAfter: 1 })
  for (const doc of corpusDocs(5, 'retry-after')) h.sink.push(doc)
  await h.sink.flush()
  t.ok(await h.sink.close(Date.now() + 5000))
  const [refused, accepted] = h.proxy.bulks()
  t.equal(refused?.fault, 'status')
  t.ok((accepted?.at ?? 0) - (refused?.at ?? 0) >= 1000, 'the retry came no sooner than the server asked (1 s), although retry_max is 50 ms')
  t.equal(h.sink.stats().created, 5)
})

t.test('a request too large for the server (413) is split; a single document too large is dead-lettered', async (t) => {
  const h = await harness(t, { batch_max_docs: 20 })
  if (!h) return
  h.proxy.inject({ kind: 'status', status: 413 })
  const docs = corpusDocs(20, 'too-large')
  for (const doc of docs) h.sink.push(doc)
  await h.sink.flush()
  const [whole, first, second] = h.proxy.bulks()
  t.equal(whole?.ids.length, 20)
  t.same([first?.ids.length, second?.ids.length], [10, 10], 'sent again in halves')
  t.same(await listIds(h.url, h.cfg.index), docs.map((d) => d.id).sort())

  // Two documents: the pair is too large, then each one alone.
  h.proxy.inject({ kind: 'status', status: 413 }, { times: 3 })
  const big = corpusDocs(22, 'too-large-2').slice(20)
  for (const doc of big) h.sink.push(doc)
  await h.sink.flush()
  t.ok(await h.sink.close(Date.now() + 5000))
  const letters = readFileSync(join(h.stateDir, 'deadletter.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { _id: string; status: number })
  t.same(letters.map((l) => l._id).sort(), big.map((d) => d.id).sort())
  t.same(letters.map((l) => l.status), [413, 413])
  t.equal(h.acks.counts.size, 22, 'all acked: 20 created, 2 dead-lettered')
  t.same(h.acks.twice(), [])
})

t.test('while Elasticsearch fails, documents stay pending and reading waits; they ship when it recovers', async (t) => {
  const h = await harness(t, { batch_max_docs: 25, retry_initial: 10, retry_max: 50 })
  if (!h) return
  h.proxy.inject({ kind: 'status', status: 503 }, { times: Infinity })
  const docs = corpusDocs(100, 'outage')
  for (const doc of docs) h.sink.push(doc)
  let released = false
  const waiting = h.sink.waitBelow(1).then(() => { released = true })
  await until('several refused attempts', () => h.proxy.bulks().length >= 5)

  t.equal(h.acks.counts.size, 0, 'nothing acked while every request fails')
  t.ok(h.sink.pendingBytes > 0, 'the documents are still pending')
  t.notOk(released, 'a reader waiting for room is still waiting')
  t.same(h.acks.statuses.map((s) => s.reachable), [false], 'the outage reported once, not once per retry')
  t.match(h.acks.statuses[0]?.error, /503/)
  const probes = h.proxy.bulks().slice(4)
  t.ok(probes.every((r) => r.ids.length === 25), 'whole batches are resent')

  h.proxy.clear()
  await h.sink.flush()
  await waiting
  t.ok(released)
  t.equal(h.sink.pendingBytes, 0)
  t.same(h.acks.statuses.map((s) => s.reachable), [false, true], 'and the recovery once')
  t.same(h.acks.ids(), docs.map((d) => d.id).sort())
  t.same(await listIds(h.url, h.cfg.index), docs.map((d) => d.id).sort())
  t.ok(await h.sink.close(Date.now() + 5000))
})

t.test('close() gives up at the deadline and says so; nothing unshipped is acked', async (t) => {
  const h = await harness(t)
  if (!h) return
  h.proxy.inject({ kind: 'status', status: 503 }, { times: Infinity })
  for (const doc of corpusDocs(10, 'deadline')) h.sink.push(doc)
  const flushed = t.rejects(h.sink.flush(), { code: 'LW_SHUTDOWN_TIMEOUT' }, 'a flush still waiting at close is told it did not complete')
  t.notOk(await h.sink.close(Date.now() + 300))
  await flushed
  t.equal(h.acks.counts.size, 0)
  t.throws(() => h.sink.push(corpusDocs(1, 'late')[0]!), /after close/, 'no document is taken after close')
  await t.resolves(h.sink.waitBelow(1), 'a waiting reader is released at close')
})

t.test('documents made of a head and the line\'s own bytes: split on 413, dead-lettered with their line and document as sent', async (t) => {
  const h = await harness(t, { batch_max_docs: 20 })
  if (!h) return
  // As the pipeline hands them over: the derived fields as bytes, then the line's bytes after
  // its brace, read from a buffer that is overwritten once push returns.
  const builder = new DocumentBuilder({ 'service.name': 'retry', 'log.file.path': '/var/log/app.log' })
  const lines = [
    '{"level":30,"time":1700000000000,"msg":"first ☕","req":{"method":"GET","url":"/a"},"res":{"statusCode":200}}',
    '{"level":50,"time":1700000000001,"msg":"second \\"quoted\\"","err":{"type":"Error","message":"x"}}',
  ]
  const expected: Array<{ id: string; raw: string; document: string }> = []
  const chunk = Buffer.alloc(4096)
  let offset = 0
  for (const line of lines) {
    const len = chunk.write(line, 0)
    const parsed = parseJson(line, { timezone: 'UTC' })
    const entry = { sourceId: 'bytes', offset, end: offset + len + 1, text: line, fields: parsed.fields, object: parsed.object }
    const w = new JsonWriter(64)
    t.ok(builder.write(w, entry, offset, undefined, true), 'written as head and tail')
    const id = documentId('bytes', offset)
    h.sink.push({ id, timestamp: '2023-11-14T22:13:20.000Z', body: '', bytes: w.buf, bytesLen: w.at, tail: chunk, tailStart: 1, tailEnd: len, sourceId: 'bytes', offset, end: offset + len + 1 })
    chunk.fill(0x78) // what the reader does with its buffer next
    expected.push({ id, raw: line, document: builder.build(entry, offset) })
    offset += len + 1
  }
  // The pair is too large, then each one alone: both end in the dead letters.
  h.proxy.inject({ kind: 'status', status: 413 }, { times: 3 })
  await h.sink.flush()
  t.ok(await h.sink.close(Date.now() + 5000))
  const letters = readFileSync(join(h.stateDir, 'deadletter.ndjson'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as { _id: string; raw: string; document: string })
  t.same(letters.map(({ _id, raw, document }) => ({ id: _id, raw, document })).sort((a, b) => a.id.localeCompare(b.id)),
    expected.sort((a, b) => a.id.localeCompare(b.id)), 'each with its original line and its document, byte for byte')
  t.same(h.acks.twice(), [])
})
