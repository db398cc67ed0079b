/**
 * A bulk answer without failures is counted, not parsed item by item (BulkAwareSerializer); any
 * other answer is parsed and classified item by item as before. Checked on the real
 * Elasticsearch's bytes, so the shortcut is known to apply to what it really sends.
 */
import t from 'tap'
import { classifyBulkResponse } from '../transports/elasticsearch/bulk-response'
import { createClient } from '../transports/elasticsearch/client'
import { BulkAwareSerializer } from '../transports/elasticsearch/serializer'
import { dropEs, esConfig, esUrl, uniqueName } from './support/elasticsearch'

const FILTER_PATH = 'errors,items.*.status,items.*.error'

t.test('the shortcut and the full parse agree', async (t) => {
  const s = new BulkAwareSerializer()
  const ok = '{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}},{"index":{"status":200}}]}'
  t.same(s.deserialize(ok), { errors: false, created: 3 }, 'counted')
  t.same(classifyBulkResponse(s.deserialize(ok), 3).map((r) => r.outcome), ['created', 'created', 'created'])
  t.throws(() => classifyBulkResponse(s.deserialize(ok), 4), { code: 'LW_ES_BULK_RETRY' }, 'fewer items than sent is still caught')
  const mixed = '{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"x"}}}]}'
  t.same(s.deserialize(mixed), JSON.parse(mixed), 'an answer with failures is parsed whole')
  t.same(classifyBulkResponse(s.deserialize(mixed), 2).map((r) => r.outcome), ['created', 'duplicate'])
  t.same(s.deserialize('{"acknowledged":true}'), { acknowledged: true }, 'other answers as before')
})

t.test('on the real Elasticsearch: a clean bulk is counted, a failing one classified per item', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const cfg = esConfig(url, {})
  const client = createClient(cfg)
  t.teardown(() => client.close())
  const index = uniqueName('bulkanswer')
  t.teardown(() => dropEs(url, index))
  const bulk = (ids: string[]): string => ids.map((id) => `{"create":{"_index":"${index}","_id":"${id}"}}\n{"n":1}\n`).join('')

  const clean = await client.transport.request({ method: 'POST', path: '/_bulk', querystring: { filter_path: FILTER_PATH }, bulkBody: bulk(['a', 'b', 'c']) })
  t.same(clean, { errors: false, created: 3 }, 'what Elasticsearch sends for a clean bulk takes the shortcut')
  t.same(classifyBulkResponse(clean, 3).map((r) => r.outcome), ['created', 'created', 'created'])

  const again = await client.transport.request({ method: 'POST', path: '/_bulk', querystring: { filter_path: FILTER_PATH }, bulkBody: bulk(['c', 'd']) })
  t.same(classifyBulkResponse(again, 2).map((r) => r.outcome), ['duplicate', 'created'], 'a 409 among them: parsed and classified per item')
})
