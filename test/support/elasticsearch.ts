/**
 * The real Elasticsearch for tests: where it is, names no other test uses, a config for the
 * sink, and plain-HTTP queries (fetch, not the client under test) to check what arrived.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { ElasticsearchConfig } from '../../agent/config/types'
import { buildDocument, documentId } from '../../transports/elasticsearch/document'
import type { AckedDoc, OutDoc, SinkEvents, SinkStatus } from '../../transports/elasticsearch/sink'

/**
 * ES_URL, or undefined after marking the test: in CI a missing ES_URL is a failure (the
 * services must be started, silently skipping would hide every Elasticsearch test); elsewhere
 * the test is skipped with the reason.
 */
export function esUrl(t: Test): string | undefined {
  const url = process.env.ES_URL
  if (url) return url.replace(/\/+$/, '')
  if (process.env.CI) t.fail('ES_URL is not set: .ci/run must start Elasticsearch')
  else t.plan(0, 'ES_URL is not set: start Elasticsearch and set ES_URL (e.g. http://127.0.0.1:9200) to run this test')
  return undefined
}

let counter = 0

/** A lowercase index, data stream or template name no other test (or test run) uses. */
export function uniqueName(prefix: string): string {
  counter++
  return `lwtest-${prefix}-${process.pid}-${counter}-${randomBytes(3).toString('hex')}`
}

/** A sink configuration for tests: small batches and short backoffs so retries happen quickly. */
export function esConfig(url: string, over: Partial<ElasticsearchConfig> = {}): ElasticsearchConfig {
  const name = uniqueName('docs')
  return {
    hosts: [url], tls_verify: true, index: name, data_stream: false,
    batch_max_docs: 50, batch_max_bytes: 1024 * 1024, batch_interval: 20, concurrency: 2,
    compression: true, request_timeout: 10_000, retry_initial: 10, retry_max: 100,
    template_name: `${name}-template`, number_of_shards: 1, number_of_replicas: 0, setup_on_start: false,
    dead_letter_index: `${name}-deadletter`, ...over
  }
}

export class EsHttpError extends Error {
  constructor(readonly status: number, readonly body: unknown, what: string) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body)}`)
  }
}

/** One request to Elasticsearch; JSON in and out. `allow` lists statuses that are not errors. */
export async function es<T = Record<string, unknown>>(url: string, method: string, path: string, body?: unknown,
  allow: number[] = []): Promise<T> {
  const res = await fetch(url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': typeof body === 'string' ? 'application/x-ndjson' : 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
  })
  const text = await res.text()
  const parsed: unknown = text === '' ? {} : JSON.parse(text)
  if (res.status >= 300 && !allow.includes(res.status)) throw new EsHttpError(res.status, parsed, `${method} ${path}`)
  return parsed as T
}

/** Makes what was written searchable, then counts it. */
export async function refreshAndCount(url: string, target: string): Promise<number> {
  await es(url, 'POST', `/${target}/_refresh`)
  const res = await es<{ count: number }>(url, 'GET', `/${target}/_count`)
  return res.count
}

export interface Hit<S = Record<string, unknown>> {
  _id: string
  _index: string
  _source: S
}

/** Every document in `target` (refreshed first), with its source, via a scroll. */
export async function allDocs<S = Record<string, unknown>>(url: string, target: string): Promise<Array<Hit<S>>> {
  await es(url, 'POST', `/${target}/_refresh`)
  const out: Array<Hit<S>> = []
  let page = await es<{ _scroll_id: string; hits: { hits: Array<Hit<S>> } }>(url, 'POST', `/${target}/_search?scroll=1m`,
    { size: 1000, sort: ['_doc'], query: { match_all: {} } })
  while (page.hits.hits.length > 0) {
    out.push(...page.hits.hits)
    page = await es(url, 'POST', '/_search/scroll', { scroll: '1m', scroll_id: page._scroll_id })
  }
  await es(url, 'DELETE', '/_search/scroll', { scroll_id: page._scroll_id }, [404])
  return out
}

/** The `_id`s in `target`, sorted. */
export async function listIds(url: string, target: string): Promise<string[]> {
  return (await allDocs(url, target)).map((h) => h._id).sort()
}

/**
 * Deletes what matches `pattern` (data streams, then indices) and the named index templates.
 * Wildcard deletes are refused by default (`action.destructive_requires_name`), so names are
 * resolved first. Distributions without the data-stream management API (the integ-test zip
 * answers 405 to DELETE _data_stream) cannot delete a data stream, nor the template it uses:
 * those are left behind.
 */
export async function dropEs(url: string, pattern: string, templates: string[] = []): Promise<void> {
  const resolved = await es<{ indices?: Array<{ name: string; data_stream?: string }>; data_streams?: Array<{ name: string }> }>(
    url, 'GET', `/_resolve/index/${pattern}?expand_wildcards=all`, undefined, [404])
  for (const ds of resolved.data_streams ?? []) await es(url, 'DELETE', `/_data_stream/${ds.name}`, undefined, [404, 405])
  for (const index of resolved.indices ?? []) {
    if (index.data_stream === undefined) await es(url, 'DELETE', `/${index.name}`, undefined, [404])
  }
  // 400: still used by a data stream that could not be deleted.
  for (const name of templates) await es(url, 'DELETE', `/_index_template/${name}`, undefined, [400, 404])
}

/** Records what a sink reports: how many times each document was acked, and status changes. */
export class AckRecorder implements SinkEvents {
  readonly counts = new Map<string, number>()
  readonly statuses: SinkStatus[] = []

  /** Counted by document `_id` (acks carry the source and offset it is made of). */
  onAck = (docs: readonly AckedDoc[]): void => {
    for (const d of docs) {
      const id = documentId(d.sourceId, d.offset)
      this.counts.set(id, (this.counts.get(id) ?? 0) + 1)
    }
  }

  onStatus = (s: SinkStatus): void => {
    this.statuses.push(s)
  }

  /** Ids acked more than once. */
  twice(): string[] {
    return [...this.counts].filter(([, n]) => n > 1).map(([id]) => id)
  }

  ids(): string[] {
    return [...this.counts.keys()].sort()
  }
}

const CORPUS = join(__dirname, '..', '..', '..', 'shared', 'corpus', 'apache-combined-2015.log')

/**
 * `count` documents made from the real Apache corpus (the line as message and raw), each with
 * the id of its byte offset in `sourceId`. The timestamps are one second apart from
 * 2015-05-17T10:05:03Z, so they share a day.
 */
export function corpusDocs(count: number, sourceId: string): OutDoc[] {
  const lines = readFileSync(CORPUS, 'utf8').split('\n').filter((l) => l !== '')
  const docs: OutDoc[] = []
  let offset = 0
  const start = Date.parse('2015-05-17T10:05:03Z')
  for (let i = 0; i < count; i++) {
    const line = lines[i % lines.length] as string
    const timestamp = new Date(start + i * 1000).toISOString()
    const body = buildDocument({ sourceId, offset, end: offset + line.length + 1, text: line, fields: { '@timestamp': timestamp, message: line } },
      { 'log.offset': offset })
    docs.push({ id: documentId(sourceId, offset), timestamp, body, raw: line, sourceId, offset, end: offset + Buffer.byteLength(line) + 1 })
    offset += Buffer.byteLength(line) + 1
  }
  return docs
}

/** Polls `condition` every 20 ms until it holds; rejects after `waitMs` with `what` (a stuck test fails, it does not hang). */
export async function until(what: string, condition: () => boolean, waitMs = 30_000): Promise<void> {
  const deadline = Date.now() + waitMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
