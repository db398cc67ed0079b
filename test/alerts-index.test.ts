import t from 'tap'
import { Client } from '@elastic/elasticsearch'
import pino from 'pino'
import { AlertsIndex, alertsTemplate } from '../transports/elasticsearch/alerts-index'
import { AlertPipeline } from '../rules/alerts/pipeline'
import type { DeliveryReport } from '../rules/alerts/outbox'
import type { AlertEvent, DeliveryResult, Notification, Notifier, Rule } from '../rules/model'
import { FaultProxy } from './support/fault-proxy'
import { allDocs, dropEs, es, esConfig, esUrl, refreshAndCount, uniqueName } from './support/elasticsearch'

const T0 = Date.parse('2024-03-01T12:00:00Z')

/** A notifier of our own interface: fails the first `failFirst` attempts (retryably), then delivers. */
class Flaky implements Notifier {
  readonly name = 'telegram'
  private attempts = 0
  private nextId = 100
  constructor(private readonly failFirst: number) {}
  async send(n: Notification): Promise<DeliveryResult> {
    if (this.attempts++ < this.failFirst) return { ok: false, messageIds: {}, retryable: true, error: 'Telegram answered 429: retry after 2', retryAfter: 2000 }
    return { ok: true, messageIds: n.edit ? n.edit.messageIds : { '-1001': this.nextId++ } }
  }
}

const rule: Rule = {
  id: 'http-5xx', name: 'HTTP 5xx', type: 'match', severity: 'error', enabled: true, group_by: ['url.path'], labels: { team: 'web' }, route: 'ops',
  group_wait: 0, group_interval: 0, realert: 0, realert_backoff: 1, realert_max: 0, resolve: false, source: 'rules/http.yaml:3:5'
}

function event(n: number): AlertEvent {
  return {
    id: `http-5xx@f1:${n * 100}`, ruleId: rule.id, severity: 'error', state: 'firing', fingerprint: `http-5xx|/p${n}`, groupKey: { 'url.path': `/p${n}` },
    at: T0 + n, count: 1, fields: { 'url.path': `/p${n}`, 'http.response.status_code': 502, 'client.ip': '83.149.9.216' },
    summary: `GET /p${n} answered 502`
  }
}

/** Runs `count` alerts through a real pipeline (on a virtual clock) and returns its delivery reports. */
async function deliver(count: number, failFirst: number, onDelivery: (r: DeliveryReport) => void = () => undefined): Promise<DeliveryReport[]> {
  const reports: DeliveryReport[] = []
  let now = T0
  const pipeline = new AlertPipeline({
    rules: new Map([[rule.id, rule]]), notifiers: { ops: [new Flaky(failFirst)] }, clock: () => now, random: () => 0.5,
    limits: { per_rule_per_minute: 0 }, onDelivery: (r) => { reports.push(r); onDelivery(r) }
  })
  pipeline.push(Array.from({ length: count }, (_, i) => event(i)))
  await pipeline.settled()
  for (let s = 0; s < 120; s++) {
    now += 1000
    pipeline.tick()
    await pipeline.settled()
  }
  return reports
}

function quietLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = []
  return { logger: pino({ level: 'info' }, { write: (s: string) => { lines.push(s) } }), lines }
}

interface FieldMapping { type?: string; fields?: Record<string, FieldMapping>; properties?: Record<string, FieldMapping> }

function fieldAt(props: Record<string, FieldMapping> | undefined, path: string): FieldMapping | undefined {
  const [head, ...rest] = path.split('.')
  const node = props?.[head as string]
  return rest.length === 0 ? node : fieldAt(node?.properties, rest.join('.'))
}

t.test('every alert and each step of its delivery is a document with a deterministic id and proper mappings', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const index = uniqueName('alerts')
  const cfg = esConfig(url, { template_name: uniqueName('tpl') })
  t.teardown(() => dropEs(url, index, [`${cfg.template_name}-alerts`]))
  const client = new Client({ node: url })
  t.teardown(() => client.close())
  const { logger } = quietLogger()
  const idx = new AlertsIndex({ elasticsearch: cfg, index, client, logger, batchSize: 7, flushInterval: 10 })

  const reports = await deliver(5, 2, (r) => idx.write(r))
  await idx.flush()
  t.same(reports.map((r) => r.state).sort(), [...Array(5).fill('queued'), ...Array(5).fill('delivered'), 'failed', 'failed'].sort(),
    'five alerts: queued and delivered each, and two failed attempts')
  t.equal(await refreshAndCount(url, index), reports.length, 'one document per report')
  const docs = await allDocs<{ alert: Record<string, unknown>; delivery: Record<string, unknown>; message: string; '@timestamp': string }>(url, index)
  t.same(docs.map((d) => d._id).sort(), reports.map((r) => r.id).sort(), 'ids are the reports\' ids')

  const failed = docs.find((d) => d._source.delivery.state === 'failed')
  t.match(failed?._source.delivery, { route: 'ops', notifier: 'telegram', attempt: 1, error: 'Telegram answered 429: retry after 2', next_attempt_at: /^2024-03-01T12:00:0\d/ })
  const delivered = docs.filter((d) => d._source.delivery.state === 'delivered')
  t.equal(delivered.length, 5)
  t.match(delivered[0]?._source.delivery, { message_ids: [/^-1001:1\d\d$/], edit: false })
  t.match(delivered[0]?._source.alert, { rule: { id: 'http-5xx', name: 'HTTP 5xx' }, severity: 'error', state: 'firing', count: 1, labels: { team: 'web' },
    fields: { 'http.response.status_code': 502 }, first_seen: /^2024-03-01T12:00:00/ })
  t.match(delivered[0]?._source.message, /^GET \/p\d answered 502$/)

  const mapping = await es<Record<string, { mappings: { properties: Record<string, FieldMapping> } }>>(url, 'GET', `/${index}/_mapping`)
  const props = Object.values(mapping)[0]?.mappings.properties
  t.same(['@timestamp', 'alert.first_seen', 'alert.last_seen', 'delivery.next_attempt_at'].map((f) => fieldAt(props, f)?.type), ['date', 'date', 'date', 'date'])
  t.same(['alert.id', 'alert.fingerprint', 'alert.rule.id', 'delivery.id', 'delivery.state', 'delivery.message_ids'].map((f) => fieldAt(props, f)?.type),
    Array(6).fill('keyword'))
  t.same(['message', 'delivery.error'].map((f) => fieldAt(props, f)?.type), ['text', 'text'])
  t.equal(fieldAt(props, 'alert.fields')?.type, 'flattened', 'entry fields do not grow the mapping')
  t.equal(fieldAt(props, 'alert.count')?.type, 'long')

  // Kibana can search by state and by an entry field.
  const byState = await es<{ count: number }>(url, 'POST', `/${index}/_count`, { query: { term: { 'delivery.state': 'failed' } } })
  t.equal(byState.count, 2)
  const byField = await es<{ count: number }>(url, 'POST', `/${index}/_count`, { query: { term: { 'alert.fields.url.path': '/p3' } } })
  t.ok(byField.count >= 2, 'queued and delivered of /p3')

  t.same(await idx.setup(), { name: `${cfg.template_name}-alerts`, result: 'unchanged' }, 'the template was installed before the first write')
  t.ok(await idx.close(Date.now() + 5000))
})

t.test('a report written twice stays one document', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const index = uniqueName('alerts')
  const cfg = esConfig(url, { template_name: uniqueName('tpl') })
  t.teardown(() => dropEs(url, index, [`${cfg.template_name}-alerts`]))
  const { logger } = quietLogger()
  const reports = await deliver(3, 0)
  const first = new AlertsIndex({ elasticsearch: cfg, index, logger })
  for (const r of reports) first.write(r)
  t.ok(await first.close(Date.now() + 10_000))
  // A replay after a restart makes the same reports.
  const again = new AlertsIndex({ elasticsearch: cfg, index, logger })
  for (const r of reports) again.write(r)
  await again.flush()
  t.match(again.stats(), { written: 0, duplicates: reports.length, dropped: 0 })
  t.ok(await again.close(Date.now() + 10_000))
  t.equal(await refreshAndCount(url, index), reports.length)
})

t.test('while Elasticsearch fails, records are kept and sent again; all arrive once', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const proxy = await FaultProxy.start(url)
  t.teardown(() => proxy.close())
  const index = uniqueName('alerts')
  const cfg = esConfig(proxy.url, { template_name: uniqueName('tpl') })
  t.teardown(() => dropEs(url, index, [`${cfg.template_name}-alerts`]))
  const { logger, lines } = quietLogger()
  const client = new Client({ node: proxy.url })
  t.teardown(() => client.close())
  const idx = new AlertsIndex({ elasticsearch: cfg, index, client, logger, batchSize: 10, flushInterval: 5 })
  await idx.setup()
  proxy.inject({ kind: 'status', status: 503 }, { times: 3 })
  proxy.inject({ kind: 'drop-response' })
  proxy.inject({ kind: 'item-429', select: (pos) => pos % 2 === 0 })
  const reports = await deliver(20, 0)
  for (const r of reports) idx.write(r)
  await idx.flush()
  t.equal(await refreshAndCount(url, index), reports.length, 'every record is there')
  t.same((await allDocs(url, index)).map((d) => d._id).sort(), reports.map((r) => r.id).sort())
  const stats = idx.stats()
  t.ok(stats.retries >= 5, `retried (${stats.retries})`)
  t.equal(stats.dropped, 0)
  t.equal(stats.written + stats.duplicates, reports.length, 'the answer lost after Elasticsearch applied the bulk came back as "already there"')
  t.ok(lines.some((l) => l.includes('LW_ES_UNREACHABLE')), 'a warning says the alerts index cannot be written')
  t.ok(await idx.close(Date.now() + 5000))
})

t.test('with Elasticsearch away, alerts are delivered all the same and the index buffer stays bounded', async (t) => {
  const { logger, lines } = quietLogger()
  const cfg = esConfig('http://127.0.0.1:1', { request_timeout: 1000, retry_initial: 50, retry_max: 200 })
  const idx = new AlertsIndex({ elasticsearch: cfg, index: 'logwarden-alerts', logger, maxBuffered: 50, batchSize: 10, flushInterval: 5 })
  const reports = await deliver(100, 0, (r) => idx.write(r))
  t.equal(reports.filter((r) => r.state === 'delivered').length, 100, 'every alert delivered: the index did not hold them up')
  const stats = idx.stats()
  t.ok(stats.buffered <= 50, `buffered ${stats.buffered}`)
  // Of 200 records, 50 are buffered and a batch of 10 may be on its way: the rest were dropped.
  t.ok(stats.dropped >= reports.length - 50 - 10, `the oldest records dropped (${stats.dropped} of ${reports.length})`)
  t.ok(lines.some((l) => l.includes('the alerts index buffer is full (50 records)')), 'with a warning')
  t.equal(lines.filter((l) => l.includes('buffer is full')).length, 1, 'once, not once per record')
  const closedAt = Date.now()
  t.equal(await idx.close(closedAt + 300), false, 'close gives up at its deadline')
  t.match(idx.stats(), { buffered: 0 })
})

t.test('the template maps what Kibana searches and is named after the configured template', async (t) => {
  const cfg = esConfig('http://127.0.0.1:1', { template_name: 'logwarden', number_of_replicas: 1 })
  const tpl = alertsTemplate(cfg, 'ops-alerts')
  t.equal(tpl.name, 'logwarden-alerts')
  t.same(tpl.index_patterns, ['ops-alerts'])
  t.match(tpl.template, { settings: { number_of_replicas: 1 }, mappings: { dynamic: false } })
  t.not(alertsTemplate(cfg, 'ops-alerts')._meta?.config_hash, alertsTemplate(cfg, 'other')._meta?.config_hash, 'a different index changes the hash')
})
