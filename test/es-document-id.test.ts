/**
 * The pipeline starts each document with its source's hash and its offset, and the sink writes
 * the `_id` from them as bytes. Those ids must be documentId's, character for character: a
 * replay, or a restart of an older version, must meet the documents already there (409).
 */
import t from 'tap'
import pino from 'pino'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '../transports/elasticsearch/client'
import { ElasticsearchSink } from '../transports/elasticsearch/sink'
import { documentId, sourceHash } from '../transports/elasticsearch/document'
import { AckRecorder, dropEs, esConfig, esUrl, listIds } from './support/elasticsearch'

t.test('documents begun with a source hash and an offset get documentId\'s _id in Elasticsearch', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const cfg = esConfig(url)
  t.teardown(() => dropEs(url, `${cfg.index}*`))
  const client = createClient(cfg)
  t.teardown(() => client.close())
  const acks = new AckRecorder()
  const sink = new ElasticsearchSink(cfg, { stateDir: mkdtempSync(join(tmpdir(), 'lw-docid-')), client, logger: pino({ level: 'silent' }), events: acks })
  const sourceId = 'dev:ino:fingerprint-of-app.log'
  const offsets = [0, 1, 35, 36, 1295, 1296, 2 ** 31 + 3, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]
  const timestamp = '2024-05-17T10:05:03.000Z'
  for (const offset of offsets) {
    const w = sink.begin(sourceHash(sourceId), timestamp, offset)
    w.text(`{"@timestamp":"${timestamp}","message":"at ${offset}"}`)
    sink.finish({ id: '', timestamp, body: '', raw: `at ${offset}`, sourceId, offset, end: offset + 1 })
  }
  await sink.flush()
  t.ok(await sink.close(Date.now() + 10_000), 'everything acknowledged')
  t.same(await listIds(url, cfg.index), offsets.map((o) => documentId(sourceId, o)).sort())
  t.same([...acks.counts.keys()].sort(), offsets.map((o) => documentId(sourceId, o)).sort(), 'each acknowledged once, by the same id')
})
