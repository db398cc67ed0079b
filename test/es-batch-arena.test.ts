/**
 * The sink writes documents into arenas fitted to the batches it sees. Whatever the documents'
 * size, once the arenas are fitted every batch is as full as `batch.max_docs` /
 * `batch.max_bytes` allow (the arena never cuts one short), and every document arrives once.
 */
import t, { type Test } from 'tap'
import pino from 'pino'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '../transports/elasticsearch/client'
import { ElasticsearchSink } from '../transports/elasticsearch/sink'
import { buildDocument, documentId, type OutDoc } from '../transports/elasticsearch/document'
import { FaultProxy } from './support/fault-proxy'
import { AckRecorder, dropEs, esConfig, esUrl, listIds } from './support/elasticsearch'

const logger = pino({ level: 'silent' })

/** `count` documents of about `bytes` bytes each. */
function docsOf(count: number, bytes: number, sourceId: string): OutDoc[] {
  const docs: OutDoc[] = []
  const timestamp = '2024-05-17T10:05:03.000Z'
  for (let i = 0; i < count; i++) {
    const line = `line ${i} ` + 'x'.repeat(bytes)
    const offset = i * (line.length + 1)
    const body = buildDocument({ sourceId, offset, end: offset + line.length + 1, text: line, fields: { '@timestamp': timestamp, message: line } }, { 'log.offset': offset })
    docs.push({ id: documentId(sourceId, offset), timestamp, body, raw: line, sourceId, offset, end: offset + line.length + 1 })
  }
  return docs
}

async function shipThrough(t: Test, docs: OutDoc[], maxDocs: number, maxBytes: number): Promise<{ sizes: number[]; url: string; index: string } | undefined> {
  const url = esUrl(t)
  if (!url) return undefined
  const proxy = await FaultProxy.start(url)
  t.teardown(() => proxy.close())
  const cfg = esConfig(proxy.url, { batch_max_docs: maxDocs, batch_max_bytes: maxBytes, concurrency: 2 })
  t.teardown(() => dropEs(url, `${cfg.index}*`))
  const client = createClient(cfg)
  t.teardown(() => client.close())
  const acks = new AckRecorder()
  const sink = new ElasticsearchSink(cfg, { stateDir: mkdtempSync(join(tmpdir(), 'lw-arena-')), client, logger, events: acks })
  for (const doc of docs) sink.push(doc)
  await sink.flush()
  t.ok(await sink.close(Date.now() + 10_000), 'everything acknowledged')
  t.same(acks.twice(), [], 'nothing acknowledged twice')
  t.same(await listIds(url, cfg.index), docs.map((d) => d.id).sort(), 'every document arrived, once')
  // Batches as first sent: a request of documents sent before is a retry (Elasticsearch, busy
  // with other tests, may refuse some items with 429), not a batch.
  const seen = new Set<string>()
  const sizes: number[] = []
  for (const r of proxy.bulks()) {
    if (r.ids.some((id) => seen.has(id))) continue
    for (const id of r.ids) seen.add(id)
    sizes.push(r.ids.length)
  }
  return { sizes, url, index: cfg.index }
}

t.test('documents larger than the first arena: after the arenas grow, every batch is full by max_docs', async (t) => {
  // 8 KB documents, 300 per batch: 2.4 MB batches, more than twice the first 1 MiB arena.
  const sizes = (await shipThrough(t, docsOf(3000, 8000, 'arena-grow'), 300, 64 * 1024 * 1024))?.sizes
  if (!sizes) return
  // Requests go two at a time, so they may arrive in either order: counted, not placed.
  const short = sizes.filter((n) => n !== 300)
  t.ok(short.length <= 3, `besides the last, at most the first two batches are short, while the arenas grow (batches: ${sizes.join(' ')})`)
  t.equal(sizes.reduce((a, b) => a + b, 0), 3000)
})

t.test('small documents: batches are full by max_docs from the first', async (t) => {
  const sizes = (await shipThrough(t, docsOf(5000, 300, 'arena-small'), 1000, 5 * 1024 * 1024))?.sizes
  if (!sizes) return
  t.same(sizes, [1000, 1000, 1000, 1000, 1000])
})

t.test('batches limited by max_bytes stay full by max_bytes', async (t) => {
  // 4 KB documents with a 1 MiB byte limit: about 250 per batch, never the 10,000 of max_docs.
  const sizes = (await shipThrough(t, docsOf(2000, 4000, 'arena-bytes'), 10_000, 1024 * 1024))?.sizes
  if (!sizes) return
  // The first may end with the first arena, before the arenas are fitted, and the last holds what
  // is left; requests arrive two at a time, in either order.
  const full = [...sizes].sort((a, b) => b - a).slice(0, -2)
  t.ok(full.length >= 6, `several batches (${sizes.join(' ')})`)
  const spread = Math.max(...full) - Math.min(...full)
  t.ok(spread <= 1, `each full batch holds the same number of documents, give or take one (${sizes.join(' ')})`)
})

t.test('documents larger than any arena go alone, whole, between batches of small ones', async (t) => {
  // max_bytes 1 MiB: arenas of at most 1.25 MiB; every third document is 2 MB.
  const small = docsOf(30, 200, 'arena-huge')
  const big = docsOf(10, 2_000_000, 'arena-huge-big').map((d, i) => ({ ...d, id: `${d.id}-${i}` }))
  const docs = small.flatMap((d, i) => (i % 3 === 2 ? [d, big[i / 3 | 0]!] : [d]))
  const shipped = await shipThrough(t, docs, 1000, 1024 * 1024)
  if (!shipped) return
  const { sizes, url, index } = shipped
  t.equal(sizes.filter((n) => n === 1).length, 10, `each large document in a request of its own (${sizes.join(' ')})`)
  await fetch(`${url}/${index}*/_refresh`, { method: 'POST' })
  const r = await fetch(`${url}/${index}*/_search?size=1&q=_id:${encodeURIComponent(big[3]!.id)}`)
  const hit = ((await r.json()) as { hits: { hits: Array<{ _source: { message: string } }> } }).hits.hits[0]
  t.equal(hit?._source.message.length, big[3]!.raw!.length, 'its text arrived whole')
})
