import t from 'tap'
import { Client } from '@elastic/elasticsearch'
import pino from 'pino'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setupTemplates } from '../transports/elasticsearch/template'
import { ElasticsearchSink, type OutDoc } from '../transports/elasticsearch/sink'
import { buildDocument, documentId } from '../transports/elasticsearch/document'
import { VERSION } from '../agent/version'
import { dropEs, es, esConfig, esUrl, refreshAndCount, uniqueName } from './support/elasticsearch'

interface FieldMapping { type?: string; index?: boolean; ignore_above?: number; fields?: Record<string, FieldMapping>; properties?: Record<string, FieldMapping> }

/** The mapping of a dotted field in a GET _mapping answer. */
function fieldAt(props: Record<string, FieldMapping> | undefined, path: string): FieldMapping | undefined {
  const [head, ...rest] = path.split('.')
  const node = props?.[head as string]
  return rest.length === 0 ? node : fieldAt(node?.properties, rest.join('.'))
}

async function mappingOf(url: string, index: string): Promise<Record<string, FieldMapping>> {
  const res = await es<Record<string, { mappings: { properties: Record<string, FieldMapping> } }>>(url, 'GET', `/${index}/_mapping`)
  const first = Object.values(res)[0]
  return first?.mappings.properties ?? {}
}

function oneDoc(timestamp: string, extra: Record<string, string | number> = {}): OutDoc {
  const fields = {
    '@timestamp': timestamp, message: 'GET /index.html', 'client.ip': '83.149.9.216', 'error.stack_trace': 'Error: x\n    at f (a.js:1:1)',
    'http.response.status_code': 200, 'user_agent.original': 'Mozilla/5.0', 'custom.thing': 'some string', ...extra
  }
  const body = buildDocument({ sourceId: 'tpl', offset: 0, end: 1, text: 'line', fields }, { 'log.offset': 0 })
  return { id: documentId('tpl', 0), timestamp, body, raw: 'line', sourceId: 'tpl', offset: 0, end: 1 }
}

async function shipOne(url: string, cfg: ReturnType<typeof esConfig>, doc: OutDoc, stateDir: string): Promise<number> {
  const client = new Client({ node: url })
  let acked = 0
  const sink = new ElasticsearchSink(cfg, { stateDir, client, logger: pino({ level: 'silent' }), events: { onAck: (d) => { acked += d.length } } })
  sink.push(doc)
  await sink.flush()
  await sink.close(Date.now() + 5000)
  await client.close()
  return acked
}

t.test('templates for dated indices: created, then unchanged, then updated', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const prefix = uniqueName('tpl')
  const cfg = esConfig(url, { index: `${prefix}-%{+yyyy.MM.dd}`, template_name: prefix, dead_letter_index: `${prefix}-dlq` })
  t.teardown(() => dropEs(url, `${prefix}*`, [prefix, `${prefix}-dlq`]))
  const client = new Client({ node: url })
  t.teardown(() => client.close())

  // The dead-letter template is named after its index, so agents sharing that index share it.
  t.same(await setupTemplates(client, cfg), [{ name: prefix, result: 'created' }, { name: `${prefix}-dlq`, result: 'created' }])
  t.same(await setupTemplates(client, cfg), [{ name: prefix, result: 'unchanged' }, { name: `${prefix}-dlq`, result: 'unchanged' }],
    'running it again changes nothing')
  const changed = { ...cfg, number_of_shards: 2 }
  t.same(await setupTemplates(client, changed), [{ name: prefix, result: 'updated' }, { name: `${prefix}-dlq`, result: 'unchanged' }])

  const stored = await es<{ index_templates: Array<{ index_template: { index_patterns: string[]; priority: number; _meta: Record<string, string>; template: { settings: { index: Record<string, unknown> } } } }> }>(
    url, 'GET', `/_index_template/${prefix}`)
  const tpl = stored.index_templates[0]?.index_template
  t.same(tpl?.index_patterns, [`${prefix}-*`])
  t.equal(tpl?._meta.logwarden_version, VERSION)
  t.equal(tpl?._meta.managed_by, 'logwarden')
  t.equal(tpl?.template.settings.index.number_of_shards, '2')

  // A document goes to the index of its own day, which gets the ECS mappings.
  const stateDir = mkdtempSync(join(tmpdir(), 'lw-tpl-'))
  t.equal(await shipOne(url, changed, oneDoc('2015-05-17T10:05:03Z'), stateDir), 1)
  const index = `${prefix}-2015.05.17`
  t.equal(await refreshAndCount(url, index), 1, 'the document is in the index of its own day')
  const props = await mappingOf(url, index)
  t.equal(fieldAt(props, '@timestamp')?.type, 'date')
  t.equal(fieldAt(props, 'message')?.type, 'text')
  t.equal(fieldAt(props, 'client.ip')?.type, 'ip')
  t.equal(fieldAt(props, 'error.stack_trace')?.type, 'text')
  t.equal(fieldAt(props, 'http.response.status_code')?.type, 'long')
  t.equal(fieldAt(props, 'log.offset')?.type, 'long')
  t.equal(fieldAt(props, 'user_agent.original')?.type, 'keyword')
  t.equal(fieldAt(props, 'user_agent.original')?.fields?.text?.type, 'text')
  t.same(fieldAt(props, 'custom.thing'), { type: 'keyword', ignore_above: 1024 }, 'other strings are keywords')
  const settings = await es<Record<string, { settings: { index: { number_of_shards: string } } }>>(url, 'GET', `/${index}/_settings`)
  t.equal(settings[index]?.settings.index.number_of_shards, '2')
})

t.test('a data stream gets the template, and a replayed document is not written twice', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const tag = uniqueName('ds').replace('lwtest-', '')
  const stream = `logs-lwtest-${tag}`
  const cfg = esConfig(url, { index: stream, data_stream: true, template_name: `lwtest-${tag}`, dead_letter_index: `lwtest-${tag}-dlq` })
  t.teardown(() => dropEs(url, `*${tag}*`, [`lwtest-${tag}`, `lwtest-${tag}-deadletter`]))
  const client = new Client({ node: url })
  t.teardown(() => client.close())
  t.same((await setupTemplates(client, cfg)).map((r) => r.result), ['created', 'created'])

  const stateDir = mkdtempSync(join(tmpdir(), 'lw-tpl-'))
  const doc = oneDoc(new Date().toISOString())
  t.equal(await shipOne(url, cfg, doc, stateDir), 1)
  t.equal(await shipOne(url, cfg, doc, stateDir), 1, 'the replay is acked too (409: already there)')
  // GET _data_stream is not in every distribution; _resolve is.
  const resolved = await es<{ data_streams: Array<{ name: string; backing_indices: string[] }> }>(url, 'GET', `/_resolve/index/${stream}`)
  t.equal(resolved.data_streams[0]?.name, stream, 'the index is a data stream')
  t.equal(await refreshAndCount(url, stream), 1, 'one document')
  const props = await mappingOf(url, `.ds-${stream}-*`)
  t.equal(fieldAt(props, 'client.ip')?.type, 'ip')
})

t.test('the dead-letter index stores the record and the document unindexed', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const prefix = uniqueName('tpldl')
  const cfg = esConfig(url, { index: `${prefix}-docs`, template_name: prefix, dead_letter_index: `${prefix}-dlq` })
  t.teardown(() => dropEs(url, `${prefix}*`, [prefix, `${prefix}-deadletter`]))
  const client = new Client({ node: url })
  t.teardown(() => client.close())
  await setupTemplates(client, cfg)
  await es(url, 'PUT', `/${prefix}-dlq`)
  const props = await mappingOf(url, `${prefix}-dlq`)
  t.same(fieldAt(props, 'raw'), { type: 'text', index: false })
  t.same(fieldAt(props, 'document'), { type: 'text', index: false })
  t.equal(fieldAt(props, 'error.type')?.type, 'keyword')
  t.equal(fieldAt(props, 'source.offset')?.type, 'long')
})

t.test('a data stream with a date pattern is refused before anything is installed', async (t) => {
  const client = new Client({ node: 'http://127.0.0.1:1' })
  t.teardown(() => client.close())
  const cfg = esConfig('http://127.0.0.1:1', { index: 'logs-%{+yyyy.MM.dd}', data_stream: true })
  await t.rejects(setupTemplates(client, cfg), { code: 'LW_CONFIG_CONFLICT' })
})
