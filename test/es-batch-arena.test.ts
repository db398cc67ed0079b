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

async function shipThrough(t: Test, docs: OutDoc[], maxDocs: number, maxBytes: number): Promise<number[] | undefined> {
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
  return proxy.bulks().map((r) => r.ids.length)
}

t.test('documents larger than the first arena: after the arenas grow, every batch is full by max_docs', async (t) => {
  // 8 KB documents, 300 per batch: 2.4 MB batches, more than twice the first 1 MiB arena.
  const sizes = await shipThrough(t, docsOf(3000, 8000, 'arena-grow'), 300, 64 * 1024 * 1024)
  if (!sizes) return
  const firstFull = sizes.indexOf(300)
  t.ok(firstFull >= 0 && firstFull <= 3, `the arenas fit within a few batches (batches: ${sizes.join(' ')})`)
  t.same(sizes.slice(firstFull, -1).filter((n) => n !== 300), [], 'from then on no batch is cut short')
})

t.test('small documents: batches are full by max_docs from the first', async (t) => {
  const sizes = await shipThrough(t, docsOf(5000, 300, 'arena-small'), 1000, 5 * 1024 * 1024)
  if (!sizes) return
  t.same(sizes, [1000, 1000, 1000, 1000, 1000])
})

t.test('batches limited by max_bytes stay full by max_bytes', async (t) => {
  // 4 KB documents with a 1 MiB byte limit: about 250 per batch, never the 10,000 of max_docs.
  const sizes = await shipThrough(t, docsOf(2000, 4000, 'arena-bytes'), 10_000, 1024 * 1024)
  if (!sizes) return
  // The first may end with the first arena, before the arenas are fitted.
  const full = sizes.slice(1, -1)
  t.ok(full.length >= 6, `several batches (${sizes.join(' ')})`)
  const spread = Math.max(...full) - Math.min(...full)
  t.ok(spread <= 1, `each full batch holds the same number of documents, give or take one (${full.join(' ')})`)
})
