/**
 * The fault-injecting proxy does what it claims (part 1), and under each fault it injects the
 * sink loses nothing and writes nothing twice (part 2): Elasticsearch ends up with exactly the
 * documents pushed, each acked exactly once.
 */
import { createClient } from '../transports/elasticsearch/client'
import t, { type Test } from 'tap'
import pino from 'pino'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { ElasticsearchSink } from '../transports/elasticsearch/sink'
import { FaultProxy, type Fault } from './support/fault-proxy'
import { AckRecorder, corpusDocs, dropEs, es, esConfig, esUrl, listIds, refreshAndCount, uniqueName } from './support/elasticsearch'

const logger = pino({ level: 'silent' })

async function startProxy(t: Test, url: string): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(url)
  t.teardown(() => proxy.close())
  return proxy
}

function bulkOf(index: string, ids: string[]): string {
  return ids.map((id) => `{"create":{"_index":"${index}","_id":"${id}"}}\n{"message":"doc ${id}"}\n`).join('')
}

interface BulkAnswer { errors: boolean; items: Array<{ create: { status: number; error?: { type: string } } }> }

t.test('the proxy itself', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const index = uniqueName('proxy')
  t.teardown(() => dropEs(url, index))
  await es(url, 'PUT', `/${index}`, { settings: { number_of_replicas: 0 } })
  const proxy = await startProxy(t, url)
  const post = (ids: string[], init: RequestInit = {}): Promise<Response> =>
    fetch(`${proxy.url}/_bulk?refresh=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: bulkOf(index, ids), ...init })

  t.test('passes requests through, with the product header the client checks', async (t) => {
    const res = await post(['p1', 'p2'])
    t.equal(res.status, 200)
    t.equal(res.headers.get('x-elastic-product'), 'Elasticsearch')
    const body = await res.json() as BulkAnswer
    t.same(body.items.map((i) => i.create.status), [201, 201])
    t.same(proxy.seen.at(-1)?.forwarded, ['p1', 'p2'])
  })

  t.test('per-item 429 on a gzip body: the chosen items never reach Elasticsearch and answer 429 in place', async (t) => {
    proxy.inject({ kind: 'item-429', select: (i) => i === 1 || i === 3 })
    const res = await post(['g0', 'g1', 'g2', 'g3'], { body: gzipSync(bulkOf(index, ['g0', 'g1', 'g2', 'g3'])), headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' } })
    const body = await res.json() as BulkAnswer
    t.equal(body.errors, true)
    t.same(body.items.map((i) => i.create.status), [201, 429, 201, 429])
    t.equal(body.items[1]?.create.error?.type, 'es_rejected_execution_exception')
    const seen = proxy.seen.at(-1)
    t.match(seen, { gzip: true, fault: 'item-429', ids: ['g0', 'g1', 'g2', 'g3'], forwarded: ['g0', 'g2'] })
    t.same((await listIds(url, index)).filter((id) => id.startsWith('g')), ['g0', 'g2'])
  })

  t.test('whole-request status with Retry-After, not forwarded', async (t) => {
    proxy.inject({ kind: 'status', status: 429, retryAfter: 7 })
    const res = await post(['s1'])
    t.equal(res.status, 429)
    t.equal(res.headers.get('retry-after'), '7')
    t.notOk((await listIds(url, index)).includes('s1'))
  })

  t.test('reset before forwarding: the request fails and nothing was applied', async (t) => {
    proxy.inject({ kind: 'reset' })
    await t.rejects(post(['r1']))
    t.notOk((await listIds(url, index)).includes('r1'))
  })

  t.test('dropped response: the request fails but Elasticsearch applied it', async (t) => {
    proxy.inject({ kind: 'drop-response' })
    await t.rejects(post(['d1']))
    t.ok((await listIds(url, index)).includes('d1'))
  })

  t.test('hung request: no answer, applied only when forwarded', async (t) => {
    proxy.inject({ kind: 'hang' })
    await t.rejects(post(['h1'], { signal: AbortSignal.timeout(300) }))
    proxy.inject({ kind: 'hang', forward: true })
    await t.rejects(post(['h2'], { signal: AbortSignal.timeout(300) }))
    const ids = await listIds(url, index)
    t.notOk(ids.includes('h1'))
    t.ok(ids.includes('h2'))
  })

  t.test('faults are armed for N matching requests only', async (t) => {
    proxy.inject({ kind: 'status', status: 503 }, { times: 2, when: (r) => r.path.startsWith('/_cluster/health') })
    t.equal((await post(['n1'])).status, 200, 'a bulk does not match the predicate')
    t.equal((await fetch(`${proxy.url}/_cluster/health`)).status, 503)
    t.equal((await fetch(`${proxy.url}/_cluster/health`)).status, 503)
    t.equal((await fetch(`${proxy.url}/_cluster/health`)).status, 200, 'spent after two')
  })
})

interface Scenario {
  name: string
  faults: Array<{ fault: Fault; times: number }>
  /** Per-request timeout for the sink, when a fault needs one to end. */
  requestTimeout?: number
  check?: (t: Test, ctx: { sink: ElasticsearchSink; proxy: FaultProxy; acks: AckRecorder; total: number }) => void
}

const everyThird = (i: number): boolean => i % 3 === 0

const scenarios: Scenario[] = [
  {
    name: 'whole-request 429 with Retry-After',
    faults: [{ fault: { kind: 'status', status: 429, retryAfter: 1 }, times: 2 }],
    check: (t, { acks }) => t.same(acks.statuses.map((s) => s.reachable), [false, true], 'one outage reported, one recovery')
  },
  {
    name: 'whole-request 503',
    faults: [{ fault: { kind: 'status', status: 503 }, times: 3 }],
    check: (t, { acks }) => t.same(acks.statuses.map((s) => s.reachable), [false, true], 'one outage reported, one recovery')
  },
  {
    name: 'per-item 429',
    faults: [{ fault: { kind: 'item-429', select: everyThird }, times: 4 }],
    check: (t, { sink, proxy, total }) => {
      const rejected = proxy.bulks().filter((r) => r.fault === 'item-429').reduce((n, r) => n + r.ids.length - r.forwarded.length, 0)
      t.ok(rejected > 0)
      t.equal(sink.stats().duplicates, 0, 'only the failed items were sent again (a whole resend would have met 409s)')
      t.equal(sink.stats().sent, total + rejected, 'sent = every document once + each rejected item once more')
      t.same(sink.stats().created, total)
      t.ok(proxy.bulks().every((r) => r.gzip), 'bodies are gzipped (compression: true)')
      t.ok(proxy.bulks().every((r) => r.path.includes('filter_path=')), 'answers are filtered to what the sink reads')
    }
  },
  {
    name: 'connection reset before forwarding',
    faults: [{ fault: { kind: 'reset' }, times: 3 }],
    check: (t, { sink }) => t.equal(sink.stats().duplicates, 0, 'nothing had been applied, so nothing was already there')
  },
  {
    name: 'response dropped after Elasticsearch applied the bulk',
    faults: [{ fault: { kind: 'drop-response' }, times: 3 }],
    check: (t, { sink, proxy }) => {
      // A batch may be dropped twice; its documents were applied the first time.
      const applied = new Set(proxy.bulks().filter((r) => r.fault === 'drop-response').flatMap((r) => r.forwarded))
      t.equal(sink.stats().duplicates, applied.size, 'the replayed documents met 409 (already there) and were not written twice')
    }
  },
  {
    name: 'hung request (applied, never answered)',
    faults: [{ fault: { kind: 'hang', forward: true }, times: 1 }],
    requestTimeout: 1000,
    check: (t, { sink }) => t.ok(sink.stats().duplicates > 0, 'the replay after the timeout met 409s')
  },
  {
    name: 'hung request (never reached Elasticsearch)',
    faults: [{ fault: { kind: 'hang' }, times: 1 }],
    requestTimeout: 1000
  },
  {
    name: 'every fault at once',
    faults: [
      { fault: { kind: 'item-429', select: everyThird }, times: 2 },
      { fault: { kind: 'reset' }, times: 1 },
      { fault: { kind: 'status', status: 503 }, times: 1 },
      { fault: { kind: 'drop-response' }, times: 2 },
      { fault: { kind: 'hang', forward: true }, times: 1 },
      { fault: { kind: 'status', status: 429 }, times: 1 }
    ],
    requestTimeout: 1000
  }
]

for (const scenario of scenarios) {
  t.test(`no loss, no duplicates: ${scenario.name}`, async (t) => {
    const url = esUrl(t)
    if (!url) return
    const proxy = await startProxy(t, url)
    const cfg = esConfig(proxy.url, { batch_max_docs: 30, concurrency: 2, request_timeout: scenario.requestTimeout ?? 10_000 })
    t.teardown(() => dropEs(url, cfg.index))
    const client = createClient({ ...esConfig(proxy.url), compression: true })
    t.teardown(() => client.close())
    for (const { fault, times } of scenario.faults) proxy.inject(fault, { times })

    const total = 300
    const docs = corpusDocs(total, `fault-${scenario.name}`)
    const acks = new AckRecorder()
    const sink = new ElasticsearchSink(cfg, { stateDir: mkdtempSync(join(tmpdir(), 'lw-fault-')), client, logger, events: acks })
    for (const doc of docs) sink.push(doc)
    await sink.flush()
    t.ok(await sink.close(Date.now() + 5000))

    const expected = docs.map((d) => d.id).sort()
    t.equal(acks.counts.size, total, 'every document acked')
    t.same(acks.twice(), [], 'no document acked twice')
    t.same(acks.ids(), expected)
    t.same(await listIds(url, cfg.index), expected, 'Elasticsearch has exactly the documents pushed')
    t.equal(await refreshAndCount(url, cfg.index), total)
    const armed = scenario.faults.reduce((n, f) => n + f.times, 0)
    t.equal(proxy.bulks().filter((r) => r.fault !== undefined).length, armed, 'every armed fault was met')
    const stats = sink.stats()
    t.ok(stats.retries > 0, 'retries were needed and counted')
    t.equal(stats.created + stats.duplicates, total)
    t.equal(stats.deadLettered, 0)
    scenario.check?.(t, { sink, proxy, acks, total })
  })
}
