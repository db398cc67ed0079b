/**
 * The alerts index (`logwarden-alerts` by default): every notification and each step of its
 * delivery — queued, each attempt's outcome (delivered, failed, blocked) with its error and
 * message ids, merged at a bound — as one document, for Kibana.
 *
 * It never stands in the way of alerts (design invariant 4): `write` only appends to a bounded
 * buffer and returns; documents go out in `_bulk` requests in the background, retried with
 * backoff while Elasticsearch is away, and past the bound the oldest are dropped with a warning
 * — a history of alerts is worth less than the alerts themselves and the memory they need.
 *
 * Ids are the outbox's report ids (record key, revision, attempt, step), written with `create`:
 * a report written twice (a retry after a lost answer, a replay after a restart) answers 409 and
 * stays one document.
 *
 * The index template is installed like the others (see template.ts: `_meta` hash, untouched when
 * it matches), once, before the first write, unless `setupTemplate` is false.
 */
import { createHash } from 'node:crypto'
import { errors, type Client, type estypes } from '@elastic/elasticsearch'
import type { Logger } from 'pino'
import type { ElasticsearchConfig } from '../../agent/config/types'
import { VERSION } from '../../agent/version'
import type { DeliveryReport } from '../../rules/alerts/outbox'
import { retryDelay } from './backoff'
import { classifyBulkResponse } from './bulk-response'
import { createClient } from './client'
import type { TemplateOutcome } from './template'

export const DEFAULT_ALERTS_INDEX = 'logwarden-alerts'

export interface AlertsIndexOptions {
  /** Hosts, credentials, timeouts and retry bounds; `template_name` and `number_of_replicas` for the template. */
  elasticsearch: ElasticsearchConfig
  /** Index name (default `logwarden-alerts`). */
  index?: string
  /** A client to use; by default one is made with createClient and closed with the index. */
  client?: Client
  logger: Logger
  /** Documents buffered while Elasticsearch is slow or away; past it the oldest are dropped (default 5,000). */
  maxBuffered?: number
  /** Documents per bulk request (default 500). */
  batchSize?: number
  /** How long a document may wait for its batch to fill (ms, default 1,000). */
  flushInterval?: number
  /** Install the index template before the first write (default true). */
  setupTemplate?: boolean
}

export interface AlertsIndexStats {
  /** Waiting to be written now. */
  buffered: number
  written: number
  /** Already there (written before: a replay or a retry). */
  duplicates: number
  /** Dropped past the buffer bound. */
  dropped: number
  /** Refused by Elasticsearch (a mapping conflict): dropped with a warning. */
  rejected: number
  /** Bulk requests sent again after a failure. */
  retries: number
}

type Property = estypes.MappingProperty
const keyword: Property = { type: 'keyword', ignore_above: 1024 }
const text: Property = { type: 'text' }
const date: Property = { type: 'date' }
const long: Property = { type: 'long' }
const bool: Property = { type: 'boolean' }
// Keys chosen by rule authors and log formats: one field each, whatever they are called.
const flattened: Property = { type: 'flattened', ignore_above: 1024 }
const object = (properties: Record<string, Property>): Property => ({ properties })

const ALERT_PROPERTIES: Record<string, Property> = {
  '@timestamp': date,
  message: text,
  alert: object({
    id: keyword,
    revision: long,
    rule: object({ id: keyword, name: { type: 'keyword', ignore_above: 1024, fields: { text: { type: 'text' } } } }),
    severity: keyword,
    state: keyword,
    fingerprint: keyword,
    group_key: flattened,
    count: long,
    more: long,
    first_seen: date,
    last_seen: date,
    event_id: keyword,
    event_time: date,
    labels: flattened,
    fields: flattened,
    ratio: object({ share: { type: 'double' }, base: long }),
    exception: object({
      fingerprint: keyword, type: keyword, message: text, frames: text, count: long, first_seen: date, last_seen: date, regression: bool
    })
  }),
  delivery: object({
    id: keyword,
    key: keyword,
    route: keyword,
    notifier: keyword,
    state: keyword,
    attempt: long,
    error: text,
    next_attempt_at: date,
    /** `chat:message id` per chat. */
    message_ids: keyword,
    edit: bool,
    merged_into: keyword
  })
}

/** The template for the alerts index. */
export function alertsTemplate(cfg: ElasticsearchConfig, index: string = DEFAULT_ALERTS_INDEX): estypes.IndicesPutIndexTemplateRequest {
  const body: Omit<estypes.IndicesPutIndexTemplateRequest, 'name'> = {
    index_patterns: [index],
    // Above the document (200) and dead-letter (201) templates, in case their patterns match it too.
    priority: 202,
    template: {
      settings: { number_of_shards: 1, number_of_replicas: cfg.number_of_replicas },
      // Only what is mapped here is indexed; the rest stays in _source.
      mappings: { dynamic: false, properties: ALERT_PROPERTIES }
    }
  }
  const configHash = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16)
  return { name: `${cfg.template_name}-alerts`, ...body, _meta: { managed_by: 'logwarden', logwarden_version: VERSION, config_hash: configHash } }
}

const iso = (ms: number): string => new Date(ms).toISOString()

/** The document for one delivery report. */
export function alertDocument(report: DeliveryReport): Record<string, unknown> {
  const n = report.notification
  const alert: Record<string, unknown> = {
    id: n.id, revision: report.revision, rule: { id: n.ruleId, name: n.ruleName }, severity: n.severity, state: n.state,
    fingerprint: n.fingerprint, group_key: n.event.groupKey, count: n.total, more: n.more, first_seen: iso(n.firstAt),
    last_seen: iso(n.lastAt), event_id: n.event.id, event_time: iso(n.event.at), labels: n.labels, fields: n.event.fields
  }
  if (n.event.ratio !== undefined) alert.ratio = n.event.ratio
  const ex = n.event.exception
  if (ex !== undefined) {
    alert.exception = {
      fingerprint: ex.fingerprint, type: ex.type, message: ex.message, frames: ex.frames, count: ex.count,
      first_seen: iso(ex.firstSeen), last_seen: iso(ex.lastSeen), regression: ex.regression
    }
  }
  const delivery: Record<string, unknown> = {
    id: report.id, key: report.key, route: report.route, notifier: report.notifier, state: report.state, attempt: report.attempts,
    message_ids: Object.entries(report.messageIds).map(([chat, id]) => `${chat}:${id}`), edit: report.edit
  }
  if (report.error !== undefined) delivery.error = report.error
  if (report.nextAttemptAt !== undefined) delivery.next_attempt_at = iso(report.nextAttemptAt)
  if (report.mergedInto !== undefined) delivery.merged_into = report.mergedInto
  return { '@timestamp': iso(report.at), message: n.event.summary, alert, delivery }
}

interface Pending {
  id: string
  json: string
}

const FILTER_PATH = 'errors,items.*.status,items.*.error'

export class AlertsIndex {
  readonly index: string
  private readonly cfg: ElasticsearchConfig
  private readonly client: Client
  private readonly ownsClient: boolean
  private readonly log: Logger
  private readonly maxBuffered: number
  private readonly batchSize: number
  private readonly flushInterval: number
  private needSetup: boolean
  private buffer: Pending[] = []
  private busy = false
  private timer: NodeJS.Timeout | undefined
  /** Nothing is sent before this (ms since epoch, real time: this is network I/O, not alert timing). */
  private resumeAt = 0
  private failures = 0
  /** Drops since the last warning about them. */
  private droppedUnreported = 0
  private waiters: Array<() => void> = []
  private closed = false
  private readonly counters: AlertsIndexStats = { buffered: 0, written: 0, duplicates: 0, dropped: 0, rejected: 0, retries: 0 }

  constructor(opts: AlertsIndexOptions) {
    this.cfg = opts.elasticsearch
    this.index = opts.index ?? DEFAULT_ALERTS_INDEX
    this.client = opts.client ?? createClient(opts.elasticsearch)
    this.ownsClient = opts.client === undefined
    this.log = opts.logger
    this.maxBuffered = Math.max(1, opts.maxBuffered ?? 5_000)
    this.batchSize = Math.max(1, opts.batchSize ?? 500)
    this.flushInterval = opts.flushInterval ?? 1_000
    this.needSetup = opts.setupTemplate ?? true
  }

  stats(): AlertsIndexStats {
    return { ...this.counters, buffered: this.buffer.length }
  }

  /** Installs (or updates) the alerts index template; idempotent. */
  async setup(): Promise<TemplateOutcome> {
    const wanted = alertsTemplate(this.cfg, this.index)
    const found = await this.client.indices.getIndexTemplate({ name: wanted.name }, { ignore: [404], maxRetries: 0 })
    const current = found.index_templates?.find((t) => t.name === wanted.name)?.index_template
    if (current !== undefined && current._meta?.config_hash === wanted._meta?.config_hash) {
      this.needSetup = false
      return { name: wanted.name, result: 'unchanged' }
    }
    await this.client.indices.putIndexTemplate(wanted, { maxRetries: 0 })
    this.needSetup = false
    return { name: wanted.name, result: current === undefined ? 'created' : 'updated' }
  }

  /** Buffers the report's document; returns at once. Use as the alert pipeline's `onDelivery`. */
  write(report: DeliveryReport): void {
    if (this.closed) return
    this.buffer.push({ id: report.id, json: JSON.stringify(alertDocument(report)) })
    if (this.buffer.length > this.maxBuffered) this.drop(this.buffer.length - this.maxBuffered)
    if (this.buffer.length >= this.batchSize) this.pump()
    else if (this.timer === undefined) this.arm(this.flushInterval)
  }

  /** Sends what is buffered; resolves once the buffer is empty (after retries, however long they take). */
  flush(): Promise<void> {
    if (this.buffer.length === 0 && !this.busy) return Promise.resolve()
    const done = new Promise<void>((resolve) => this.waiters.push(resolve))
    this.pump()
    return done
  }

  /**
   * Tries to write what is buffered until `deadlineMs` (ms since epoch); true when it all went.
   * Whatever is left then is dropped (and counted): alert delivery does not wait for history.
   */
  async close(deadlineMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadlineMs - Date.now())) })
    const ok = await Promise.race([this.flush().then(() => true), expired])
    clearTimeout(timer)
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    if (!ok) {
      this.counters.dropped += this.buffer.length
      this.log.warn({ index: this.index, dropped: this.buffer.length },
        'alert records not yet in the alerts index were dropped at shutdown (the alerts themselves were delivered or are kept in the outbox)')
      this.buffer = []
    }
    for (const resolve of this.waiters.splice(0)) resolve()
    if (this.ownsClient) await this.client.close()
    return ok
  }

  private arm(delay: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.timer = undefined; this.pump() }, delay)
    // History must not keep the process alive.
    this.timer.unref()
  }

  private pump(): void {
    if (this.busy || this.closed || this.buffer.length === 0) return
    const wait = this.resumeAt - Date.now()
    if (wait > 0) {
      this.arm(wait)
      return
    }
    clearTimeout(this.timer)
    this.timer = undefined
    void this.send(this.buffer.splice(0, this.batchSize))
  }

  private async send(batch: Pending[]): Promise<void> {
    this.busy = true
    let failedWhole: unknown
    let allTaken = false
    try {
      if (this.needSetup) await this.setupOnce()
      let body = ''
      const action = '{"create":{"_index":' + JSON.stringify(this.index) + ',"_id":'
      for (const doc of batch) body += action + JSON.stringify(doc.id) + '}}\n' + doc.json + '\n'
      const response = await this.client.transport.request(
        { method: 'POST', path: '/_bulk', querystring: { filter_path: FILTER_PATH }, bulkBody: body },
        { maxRetries: 0, requestTimeout: this.cfg.request_timeout })
      allTaken = this.settle(batch, classifyBulkResponse(response, batch.length))
    } catch (err) {
      failedWhole = err
    }
    this.busy = false
    if (failedWhole !== undefined) this.retryLater(batch, failedWhole)
    else if (allTaken) this.recovered()
    if (this.buffer.length > 0) {
      if (this.buffer.length >= this.batchSize || this.waiters.length > 0 || this.resumeAt > Date.now()) this.pump()
      else this.arm(this.flushInterval)
    } else if (!this.busy) {
      for (const resolve of this.waiters.splice(0)) resolve()
    }
  }

  /** Counts the outcome of each document; false when some are to be sent again. */
  private settle(batch: Pending[], results: ReturnType<typeof classifyBulkResponse>): boolean {
    const retry: Pending[] = []
    for (let i = 0; i < results.length; i++) {
      const result = results[i] as (typeof results)[number]
      switch (result.outcome) {
        case 'created': this.counters.written++; break
        case 'duplicate': this.counters.duplicates++; break
        case 'retry': retry.push(batch[i] as Pending); break
        case 'rejected':
          this.counters.rejected++
          this.log.warn({ index: this.index, id: batch[i]?.id, status: result.status, type: result.errorType, reason: result.reason },
            'LW_ES_DOC_REJECTED: Elasticsearch refused an alert record; it is not in the alerts index (the alert itself is not affected). Check the alerts index mapping (`logwarden setup`).')
          break
      }
    }
    if (retry.length === 0) return true
    this.retryLater(retry, undefined)
    return false
  }

  /** Back at the front of the buffer (oldest first), after a backoff shared by all. */
  private retryLater(docs: Pending[], err: unknown): void {
    if (this.closed) return
    this.counters.retries++
    this.failures++
    const delay = retryDelay(this.failures, this.cfg.retry_initial, this.cfg.retry_max, undefined)
    this.resumeAt = Date.now() + delay
    this.buffer = docs.concat(this.buffer)
    if (this.buffer.length > this.maxBuffered) this.drop(this.buffer.length - this.maxBuffered)
    if (err !== undefined && this.failures === 1) {
      this.log.warn({ index: this.index, err: describe(err), buffered: this.buffer.length, max: this.maxBuffered },
        `LW_ES_UNREACHABLE: the alerts index cannot be written now; alert records are kept (up to ${this.maxBuffered}) and sent again. Alerts are delivered regardless.`)
    }
    this.arm(delay)
  }

  private recovered(): void {
    if (this.failures === 0 && this.droppedUnreported === 0) return
    if (this.droppedUnreported > 0) {
      this.log.warn({ index: this.index, dropped: this.droppedUnreported }, 'the alerts index is written again; some alert records were dropped while it was not')
    }
    this.failures = 0
    this.droppedUnreported = 0
  }

  private drop(count: number): void {
    this.buffer.splice(0, count)
    this.counters.dropped += count
    if (this.droppedUnreported === 0) {
      this.log.warn({ index: this.index, max: this.maxBuffered },
        `the alerts index buffer is full (${this.maxBuffered} records): the oldest alert records are dropped until Elasticsearch takes them again. Alerts are delivered regardless.`)
    }
    this.droppedUnreported += count
  }

  /**
   * Before the first write: a template refused for lack of privileges is reported and not tried
   * again (the documents still go, with whatever mapping the index has); an unreachable cluster
   * fails the write, which is retried, setup included.
   */
  private async setupOnce(): Promise<void> {
    try {
      await this.setup()
    } catch (err) {
      const status = err instanceof errors.ResponseError ? err.statusCode : undefined
      if (status === 401 || status === 403) {
        this.needSetup = false
        this.log.warn({ index: this.index, err: describe(err) },
          'LW_ES_AUTH: the alerts index template cannot be installed with these credentials; run `logwarden setup` with a user allowed to manage index templates')
        return
      }
      throw err
    }
  }
}

/** An error in one line, without credentials. */
function describe(err: unknown): string {
  const message = err instanceof errors.ResponseError
    ? `HTTP ${err.statusCode ?? '?'}: ${JSON.stringify((err.body as { error?: unknown } | undefined)?.error ?? '').slice(0, 300)}`
    : err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  return message.replace(/\/\/[^/@\s]+@/g, '//***@')
}
