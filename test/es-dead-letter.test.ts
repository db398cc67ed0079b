import t, { type Test } from 'tap'
import { Client } from '@elastic/elasticsearch'
import pino from 'pino'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ElasticsearchSink, type OutDoc } from '../transports/elasticsearch/sink'
import { buildDocument, documentId } from '../transports/elasticsearch/document'
import { setupTemplates } from '../transports/elasticsearch/template'
import type { DeadLetter } from '../transports/elasticsearch/dead-letter'
import { AckRecorder, allDocs, dropEs, es, esConfig, esUrl, listIds, uniqueName } from './support/elasticsearch'

const logger = pino({ level: 'silent' })

/** JSON lines with a numeric `n`; every fifth has a word there instead, which a `long` field refuses. */
function jsonDocs(count: number, sourceId: string): { docs: OutDoc[]; bad: Set<string> } {
  const docs: OutDoc[] = []
  const bad = new Set<string>()
  let offset = 0
  for (let i = 0; i < count; i++) {
    const wrong = i % 5 === 0
    const text = wrong ? `{"n":"not a number ${i}","msg":"line ${i}"}` : `{"n":${i},"msg":"line ${i}"}`
    const id = documentId(sourceId, offset)
    if (wrong) bad.add(id)
    const body = buildDocument({ sourceId, offset, end: offset + text.length + 1, text, fields: {}, object: JSON.parse(text) as Record<string, unknown> },
      { '@timestamp': '2015-05-17T10:05:03Z', 'log.offset': offset })
    docs.push({ id, timestamp: '2015-05-17T10:05:03Z', body, raw: text, sourceId, offset, end: offset + text.length + 1 })
    offset += text.length + 1
  }
  return { docs, bad }
}

async function prepare(url: string, t: Test): Promise<{ cfg: ReturnType<typeof esConfig>; client: Client; index: string }> {
  const prefix = uniqueName('dl')
  const index = `${prefix}-docs`
  const cfg = esConfig(url, { index, dead_letter_index: `${prefix}-dlq`, template_name: prefix })
  t.teardown(() => dropEs(url, `${prefix}*`, [prefix, `${prefix}-deadletter`]))
  const client = new Client({ node: url })
  t.teardown(() => client.close())
  await setupTemplates(client, cfg)
  await es(url, 'PUT', `/${index}`, { mappings: { properties: { n: { type: 'long' } } } })
  return { cfg, client, index }
}

t.test('refused documents go to the dead-letter file and index, with their reason; the rest ship', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const { cfg, client, index } = await prepare(url, t)
  const { docs, bad } = jsonDocs(40, 'dl-source')
  const stateDir = mkdtempSync(join(tmpdir(), 'lw-dl-'))
  const acks = new AckRecorder()
  const sink = new ElasticsearchSink(cfg, { stateDir, client, logger, events: acks })
  for (const doc of docs) sink.push(doc)
  await sink.flush()
  t.ok(await sink.close(Date.now() + 10_000), 'everything acked before close')

  t.equal(acks.counts.size, 40, 'every document acked')
  t.same(acks.twice(), [], 'none acked twice')
  t.match(sink.stats(), { created: 32, deadLettered: 8, duplicates: 0 })

  const good = docs.filter((d) => !bad.has(d.id)).map((d) => d.id).sort()
  t.same(await listIds(url, index), good, 'the good documents are in the index')

  const lines = readFileSync(join(stateDir, 'deadletter.ndjson'), 'utf8').split('\n').filter((l) => l !== '')
  t.equal(lines.length, 8, 'one dead letter per refused document')
  const letters = lines.map((l) => JSON.parse(l) as DeadLetter)
  t.same(letters.map((l) => l._id).sort(), [...bad].sort())
  const byId = new Map(docs.map((d) => [d.id, d]))
  for (const letter of letters) {
    const doc = byId.get(letter._id) as OutDoc
    t.equal(letter.index, index)
    t.equal(letter.status, 400)
    t.equal(letter.error.type, 'document_parsing_exception')
    t.match(letter.error.reason, /\[n\].*long/, 'the reason names the field and its type')
    t.equal(letter.raw, doc.raw, 'the original text is kept')
    t.equal(letter.document, doc.body, 'the document as sent is kept')
    t.same(letter.source, { id: 'dl-source', offset: doc.offset })
    t.ok(!Number.isNaN(Date.parse(letter.time)))
  }

  const copies = await allDocs<{ raw: string; document: string; status: number; error: { type: string; reason: string }; index: string }>(url, cfg.dead_letter_index)
  t.same(copies.map((c) => c._id).sort(), [...bad].sort(), 'the dead-letter index has the same documents under the same ids')
  for (const copy of copies) {
    t.equal(copy._source.raw, byId.get(copy._id)?.raw)
    t.equal(copy._source.status, 400)
    t.match(copy._source.error.reason, /\[n\]/)
    t.equal(copy._source.index, index)
  }
})

t.test('when the dead-letter file cannot be written, refused documents are not acked', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const { cfg, client, index } = await prepare(url, t)
  const { docs, bad } = jsonDocs(10, 'dl-nodisk')
  // A state_dir below a regular file: mkdir fails (ENOTDIR), even for root.
  const blocker = join(mkdtempSync(join(tmpdir(), 'lw-dl-')), 'file')
  writeFileSync(blocker, '')
  const acks = new AckRecorder()
  const sink = new ElasticsearchSink(cfg, { stateDir: join(blocker, 'state'), client, logger, events: acks })
  for (const doc of docs) sink.push(doc)
  t.notOk(await sink.close(Date.now() + 1500), 'close reports that not everything was acked')
  t.same(acks.ids(), docs.filter((d) => !bad.has(d.id)).map((d) => d.id).sort(), 'only the written documents are acked')
  t.equal(sink.stats().deadLettered, 0)
  t.ok(sink.stats().retries > 0, 'the refused documents were tried again')
  t.equal((await listIds(url, index)).length, 8)
})
