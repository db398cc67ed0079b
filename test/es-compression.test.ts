/**
 * `compression: auto` gzips bulk bodies unless every Elasticsearch host is this machine: checked
 * on the URL rules, then end to end through the fault proxy in front of the real Elasticsearch,
 * once on loopback and once on another address of this machine, which the agent must treat as a
 * network.
 */
import t, { type Test } from 'tap'
import pino from 'pino'
import { mkdtempSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ElasticsearchConfig } from '../agent/config/types'
import { createClient } from '../transports/elasticsearch/client'
import { gzipsBodies, isLoopbackUrl } from '../transports/elasticsearch/compression'
import { ElasticsearchSink } from '../transports/elasticsearch/sink'
import { FaultProxy } from './support/fault-proxy'
import { AckRecorder, corpusDocs, dropEs, esConfig, esUrl, refreshAndCount } from './support/elasticsearch'

const logger = pino({ level: 'silent' })

t.test('which hosts are this machine', async (t) => {
  const loopback = [
    'http://127.0.0.1:9200', 'http://127.3.2.1', 'https://[::1]:9200', 'http://[0:0:0:0:0:0:0:1]:9200',
    'http://[::ffff:127.0.0.1]:9200', 'http://localhost:9200', 'https://user:secret@LOCALHOST.:9243', 'http://es.localhost:9200',
  ]
  const remote = [
    'http://10.0.0.5:9200', 'http://192.0.2.2:9200', 'https://[2001:db8::1]:9200', 'http://[::ffff:10.0.0.1]:9200',
    'http://elasticsearch:9200', 'https://my-deployment.es.europe-west1.gcp.cloud.es.io', 'http://localhost.example.com:9200',
    'http://128.0.0.1:9200', 'not a url',
  ]
  for (const url of loopback) t.equal(isLoopbackUrl(url), true, `${url} is loopback`)
  for (const url of remote) t.equal(isLoopbackUrl(url), false, `${url} is not`)
})

t.test('auto gzips unless every host is loopback; true and false are as written', async (t) => {
  const on = (compression: ElasticsearchConfig['compression'], hosts: string[]): boolean => gzipsBodies({ compression, hosts })
  t.equal(on('auto', ['http://127.0.0.1:9200']), false)
  t.equal(on('auto', ['http://localhost:9200', 'http://[::1]:9201']), false)
  t.equal(on('auto', ['http://127.0.0.1:9200', 'http://10.1.2.3:9200']), true, 'one remote host is enough: a request may go to it')
  t.equal(on('auto', ['https://es.internal:9200']), true)
  t.equal(on(true, ['http://127.0.0.1:9200']), true)
  t.equal(on(false, ['https://es.internal:9200']), false)
})

/** This machine's first IPv4 address that is not loopback, if it has one. */
function otherAddress(): string | undefined {
  return Object.values(networkInterfaces()).flat().find((i) => i !== undefined && !i.internal && i.family === 'IPv4')?.address
}

async function shipThrough(t: Test, url: string, host: string, compression: ElasticsearchConfig['compression']): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(url, host)
  t.teardown(() => proxy.close())
  const cfg = esConfig(proxy.url, { compression, batch_max_docs: 40 })
  t.teardown(() => dropEs(url, cfg.index))
  const client = createClient(cfg)
  t.teardown(() => client.close())
  const docs = corpusDocs(200, `compression-${host}-${String(compression)}`)
  const acks = new AckRecorder()
  const sink = new ElasticsearchSink(cfg, { stateDir: mkdtempSync(join(tmpdir(), 'lw-gzip-')), client, logger, events: acks })
  for (const doc of docs) sink.push(doc)
  await sink.flush()
  t.ok(await sink.close(Date.now() + 5000))
  t.equal(acks.counts.size, docs.length, 'every document acked')
  t.equal(await refreshAndCount(url, cfg.index), docs.length, 'Elasticsearch took every document, compressed or not')
  t.ok(proxy.bulks().length >= 5, 'several bulk requests')
  return proxy
}

t.test('end to end against the real Elasticsearch', async (t) => {
  const url = esUrl(t)
  if (!url) return

  t.test('auto, on loopback: plain bodies', async (t) => {
    const proxy = await shipThrough(t, url, '127.0.0.1', 'auto')
    t.ok(proxy.bulks().every((r) => !r.gzip), 'no body was gzipped')
  })

  t.test('true, on loopback: gzipped bodies', async (t) => {
    const proxy = await shipThrough(t, url, '127.0.0.1', true)
    t.ok(proxy.bulks().every((r) => r.gzip), 'every body was gzipped')
  })

  const other = otherAddress()
  t.test(`auto, on another address of this machine (${other ?? 'none'}): gzipped bodies`, { skip: other === undefined ? 'this machine has no IPv4 address besides loopback' : false }, async (t) => {
    const proxy = await shipThrough(t, url, other!, 'auto')
    t.ok(proxy.bulks().every((r) => r.gzip), 'every body was gzipped')
  })
})
