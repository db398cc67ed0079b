/**
 * The Elasticsearch sink: batches documents into `_bulk` requests of `create` actions and
 * reports each document once it is durable. This is where "nothing lost, nothing duplicated"
 * is kept:
 *
 * - Nothing duplicated: every document has a deterministic `_id` and is sent with `create`, so
 *   sending it again (after a timeout, a reset, a lost response) answers 409, counted as success.
 * - Nothing lost: a document is acked only when Elasticsearch created it, already had it, or it
 *   was written and fsynced to the local dead letters. Everything else is retried, forever: the
 *   failed items only, or the whole batch when the whole request failed. While it cannot ship,
 *   `pendingBytes` stays high and the reader waits on `waitBelow`.
 *
 * Bulk bodies are NDJSON strings built here from the documents' own text, so the client never
 * serialises a document; the client gzips the body when `compression` is on.
 */
import { errors, type Client } from '@elastic/elasticsearch'
import type { Logger } from 'pino'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzip as zlibGzip } from 'node:zlib'
import type { ElasticsearchConfig } from '../../agent/config/types'
import { LwError } from '../../agent/errors'
import { retryAfterMs, retryDelay } from './backoff'
import { classifyBulkResponse, type ItemResult } from './bulk-response'
import { createClient } from './client'
import { DeadLetterFile, deadLetterBulk, deadLetterOf, type DeadLetter } from './dead-letter'
import type { OutDoc } from './document'
import { checkIndexConfig, compileIndexName, type IndexNamer } from './index-name'

export type { OutDoc } from './document'

export interface SinkStatus {
  reachable: boolean
  /** Why it is unreachable (no credentials in it). */
  error?: string
}

export interface SinkEvents {
  /** These documents are durable: created, already there (409), or dead-lettered and fsynced. Called once per document. */
  onAck(docs: OutDoc[]): void
  /** Edge-triggered: called when whole requests start failing, and again when one succeeds. */
  onStatus?(status: SinkStatus): void
}

export interface SinkOptions {
  /** `<stateDir>/deadletter.ndjson` holds the dead letters. */
  stateDir: string
  /**
   * A client to use (tests, or a client shared with setup); by default one is built from the
   * config and closed with the sink. It must not compress on its own (createClient's never do):
   * the sink gzips bulk bodies itself.
   */
  client?: Client
  events: SinkEvents
  logger: Logger
}

export interface SinkStats {
  /** Documents put in bulk requests, counting each sending again. */
  sent: number
  created: number
  /** 409s: documents already there from an earlier attempt. */
  duplicates: number
  deadLettered: number
  /** Bulk requests that were retries (of failed items or of a whole failed request). */
  retries: number
  /** Bulk requests made for documents (dead-letter copies not counted). */
  requests: number
}

/** One document with its place in the bulk body. */
interface Item {
  doc: OutDoc
  index: string
  /** The action line (without newline). */
  action: string
  /** Bytes in the bulk body: action, document and two newlines. */
  bytes: number
  /** What it weighs in `pendingBytes`: its bulk bytes and its raw text. */
  cost: number
  /** The flush generation it was pushed in. */
  gen: number
}

interface Batch {
  items: Item[]
  /** 0 for the first send; each retry of these items adds one. */
  attempt: number
}

const gzip = promisify(zlibGzip)
const GZIP_HEADERS = { 'content-encoding': 'gzip' }

/** Only what we read from the answer: small responses even for large batches. */
const FILTER_PATH = 'errors,items.*.status,items.*.error'

export class ElasticsearchSink {
  private readonly cfg: ElasticsearchConfig
  private readonly client: Client
  private readonly ownsClient: boolean
  private readonly events: SinkEvents
  private readonly log: Logger
  private readonly deadLetters: DeadLetterFile
  private readonly indexFor: IndexNamer
  private readonly abort = new AbortController()

  /** Documents waiting for the batch to fill or the timer to fire. */
  private queue: Item[] = []
  private queueBytes = 0
  private batchTimer: NodeJS.Timeout | undefined
  /** Batches ready to send (retries first). */
  private readonly ready: Batch[] = []
  private inFlight = 0
  /** Item retries waiting out their backoff. */
  private readonly delayed = new Set<NodeJS.Timeout>()
  /** After a whole-request failure nothing is sent before this time (ms since epoch). */
  private resumeAt = 0
  private wakeTimer: NodeJS.Timeout | undefined
  private consecutiveFailures = 0
  private reachable = true

  private pending = 0
  private gen = 0
  /** Unacked documents per flush generation, oldest generation first. */
  private readonly outstanding = new Map<number, number>()
  private readonly flushWaiters: Array<{ gen: number; resolve: () => void; reject: (err: Error) => void }> = []
  private readonly belowWaiters: Array<{ bytes: number; resolve: () => void }> = []
  private closing = false
  private stopped = false

  /** Memo of the last index's action-line prefix: consecutive documents nearly always share it. */
  private lastIndex = ''
  private lastPrefix = ''

  private readonly counters: SinkStats = { sent: 0, created: 0, duplicates: 0, deadLettered: 0, retries: 0, requests: 0 }

  constructor(cfg: ElasticsearchConfig, opts: SinkOptions) {
    checkIndexConfig(cfg)
    this.cfg = cfg
    this.client = opts.client ?? createClient(cfg)
    this.ownsClient = opts.client === undefined
    this.events = opts.events
    this.log = opts.logger
    this.deadLetters = new DeadLetterFile(join(opts.stateDir, 'deadletter.ndjson'))
    this.indexFor = compileIndexName(cfg.index)
  }

  /** Bytes pushed but not yet acked (queued, waiting to retry, or in flight). */
  get pendingBytes(): number {
    return this.pending
  }

  stats(): SinkStats {
    return { ...this.counters }
  }

  push(doc: OutDoc): void {
    if (this.closing) {
      // A caller bug, not a runtime condition: there is no LW_ code for it.
      throw new Error('a document was pushed to the Elasticsearch sink after close(); stop reading before closing the sink')
    }
    const index = this.indexFor(doc.timestamp)
    if (index !== this.lastIndex) {
      this.lastIndex = index
      this.lastPrefix = '{"create":{"_index":' + JSON.stringify(index) + ',"_id":'
    }
    const action = this.lastPrefix + JSON.stringify(doc.id) + '}}'
    const bytes = Buffer.byteLength(action) + Buffer.byteLength(doc.body) + 2
    const item: Item = { doc, index, action, bytes, cost: bytes + Buffer.byteLength(doc.raw), gen: this.gen }

    // Cut before adding when this document would take the batch past its byte limit, so a
    // batch exceeds batch_max_bytes only when one document alone does.
    if (this.queue.length > 0 && this.queueBytes + bytes > this.cfg.batch_max_bytes) this.cut()
    this.queue.push(item)
    this.queueBytes += bytes
    this.pending += item.cost
    this.outstanding.set(item.gen, (this.outstanding.get(item.gen) ?? 0) + 1)

    if (this.queue.length >= this.cfg.batch_max_docs || this.queueBytes >= this.cfg.batch_max_bytes) this.cut()
    else if (this.batchTimer === undefined) this.batchTimer = setTimeout(() => this.cut(), this.cfg.batch_interval)
  }

  /** Resolves when `pendingBytes` is below `bytes` (at once if it already is, or once the sink is closed). */
  waitBelow(bytes: number): Promise<void> {
    if (this.pending < bytes || this.stopped) return Promise.resolve()
    return new Promise((resolve) => this.belowWaiters.push({ bytes, resolve }))
  }

  /**
   * Sends what is buffered now; resolves when every document pushed before the call is acked.
   * Rejects (LW_SHUTDOWN_TIMEOUT) if the sink is closed before that.
   */
  flush(): Promise<void> {
    this.cut()
    if (this.outstanding.size === 0) return Promise.resolve()
    const gen = this.gen++
    return new Promise((resolve, reject) => this.flushWaiters.push({ gen, resolve, reject }))
  }

  /**
   * Stops taking documents and waits until `deadlineMs` (ms since epoch) for everything pushed to
   * be acked. True when it all was; false when the time ran out, in which case the requests still
   * out are abandoned (their documents are not acked, so they are read again next start and
   * answered 409 if they had arrived).
   */
  async close(deadlineMs: number): Promise<boolean> {
    this.closing = true
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadlineMs - Date.now())) })
    const ok = await Promise.race([this.flush().then(() => true, () => false), expired])
    clearTimeout(timer)
    this.stop()
    await this.deadLetters.close()
    if (this.ownsClient) await this.client.close()
    return ok
  }

  private stop(): void {
    this.stopped = true
    clearTimeout(this.batchTimer)
    clearTimeout(this.wakeTimer)
    for (const timer of this.delayed) clearTimeout(timer)
    this.delayed.clear()
    this.abort.abort()
    for (const waiter of this.belowWaiters.splice(0)) waiter.resolve()
    for (const waiter of this.flushWaiters.splice(0)) {
      waiter.reject(new LwError('LW_SHUTDOWN_TIMEOUT', 'the Elasticsearch sink was closed before the flushed documents were acknowledged',
        { hint: 'They were not acknowledged, so they are read again at the next start.' }))
    }
  }

  /** Moves the queue into a batch and sends it when a slot is free. */
  private cut(): void {
    clearTimeout(this.batchTimer)
    this.batchTimer = undefined
    if (this.queue.length === 0) return
    this.ready.push({ items: this.queue, attempt: 0 })
    this.queue = []
    this.queueBytes = 0
    this.pump()
  }

  private pump(): void {
    if (this.stopped) return
    const wait = this.resumeAt - Date.now()
    if (wait > 0) {
      if (this.wakeTimer === undefined) {
        this.wakeTimer = setTimeout(() => { this.wakeTimer = undefined; this.pump() }, wait)
      }
      return
    }
    // While Elasticsearch is failing whole requests, one batch probes at a time; the rest wait.
    const limit = this.reachable ? this.cfg.concurrency : 1
    while (this.inFlight < limit && this.ready.length > 0) {
      void this.send(this.ready.shift() as Batch)
    }
  }

  private async send(batch: Batch): Promise<void> {
    this.inFlight++
    this.counters.requests++
    this.counters.sent += batch.items.length
    if (batch.attempt > 0) this.counters.retries++
    let results: ItemResult[]
    try {
      let body = ''
      for (const item of batch.items) body += item.action + '\n' + item.doc.body + '\n'
      // Compressed here rather than by the client: level 1 costs a third of the default level's
      // CPU for nearly the same ratio on log text, and runs on the libuv pool, off this thread.
      const payload = this.cfg.compression ? await gzip(body, { level: 1 }) : body
      const response = await this.client.transport.request(
        { method: 'POST', path: '/_bulk', querystring: { filter_path: FILTER_PATH }, bulkBody: payload },
        { maxRetries: 0, requestTimeout: this.cfg.request_timeout, signal: this.abort.signal, headers: this.cfg.compression ? GZIP_HEADERS : undefined })
      results = classifyBulkResponse(response, batch.items.length)
    } catch (err) {
      this.inFlight--
      this.wholeFailure(batch, err)
      this.pump()
      return
    }
    this.inFlight--
    this.markReachable()
    this.pump()
    await this.settle(batch, results)
  }

  /** Acks what is durable, schedules the retryable items, dead-letters the refused ones. */
  private async settle(batch: Batch, results: ItemResult[]): Promise<void> {
    const durable: Item[] = []
    const retry: Item[] = []
    const refused: Array<{ item: Item; result: ItemResult }> = []
    for (let i = 0; i < results.length; i++) {
      const item = batch.items[i] as Item
      const result = results[i] as ItemResult
      switch (result.outcome) {
        case 'created': this.counters.created++; durable.push(item); break
        case 'duplicate': this.counters.duplicates++; durable.push(item); break
        case 'retry': retry.push(item); break
        case 'rejected': refused.push({ item, result }); break
      }
    }
    if (retry.length > 0) {
      const first = results.find((r) => r.outcome === 'retry')
      this.log.debug({ count: retry.length, status: first?.status, type: first?.errorType }, 'LW_ES_BULK_RETRY: Elasticsearch could not take some documents now; retrying them')
      this.later({ items: retry, attempt: batch.attempt + 1 })
    }
    if (durable.length > 0) this.ack(durable)
    if (refused.length > 0) await this.deadLetter(refused, batch.attempt)
  }

  /**
   * A whole request failed: nothing in the answer says what was applied, so the whole batch is
   * sent again (`create` with the same ids makes that harmless), after a backoff shared by all
   * batches so a dead cluster is probed, not hammered.
   */
  private wholeFailure(batch: Batch, err: unknown): void {
    if (this.stopped) return
    const status = err instanceof errors.ResponseError ? err.statusCode : undefined
    if (status === 413) {
      this.tooLarge(batch)
      return
    }
    const retryAfter = err instanceof errors.ResponseError ? retryAfterMs(err.headers?.['retry-after']) : undefined
    this.consecutiveFailures++
    const delay = retryDelay(this.consecutiveFailures, this.cfg.retry_initial, this.cfg.retry_max, retryAfter)
    this.resumeAt = Math.max(this.resumeAt, Date.now() + delay)
    batch.attempt++
    this.ready.unshift(batch)
    const reason = describeError(err)
    this.log.debug({ err: reason, docs: batch.items.length, retryInMs: delay }, 'LW_ES_BULK_RETRY: a bulk request failed; the batch will be sent again')
    this.markUnreachable(reason)
  }

  /**
   * 413: the request is larger than something in front of Elasticsearch accepts (a proxy's body
   * limit is often 1 MiB). Halves go out separately; a single document that is still too large
   * can never be taken and goes to the dead letters.
   */
  private tooLarge(batch: Batch): void {
    const { items, attempt } = batch
    if (items.length === 1) {
      const item = items[0] as Item
      void this.deadLetter([{ item, result: { outcome: 'rejected', status: 413, errorType: 'request_entity_too_large', reason: `a bulk request with this document alone (${item.bytes} bytes) was refused as too large` } }], attempt)
      return
    }
    const half = Math.ceil(items.length / 2)
    this.log.debug({ docs: items.length }, 'bulk request too large (413); sending it in halves')
    this.ready.unshift({ items: items.slice(0, half), attempt: attempt + 1 }, { items: items.slice(half), attempt: attempt + 1 })
  }

  /** Puts items back after their backoff (retries go before new batches: older offsets first). */
  private later(batch: Batch): void {
    if (this.stopped) return
    const delay = retryDelay(batch.attempt, this.cfg.retry_initial, this.cfg.retry_max, undefined)
    const timer = setTimeout(() => {
      this.delayed.delete(timer)
      this.ready.unshift(batch)
      this.pump()
    }, delay)
    this.delayed.add(timer)
  }

  /**
   * Writes refused documents to the local dead-letter file (fsynced), then copies them into the
   * dead-letter index, then acks them. If the file cannot be written they are not acked: they go
   * round again (Elasticsearch refuses them again) until the disk takes them.
   */
  private async deadLetter(refused: Array<{ item: Item; result: ItemResult }>, attempt: number): Promise<void> {
    const letters: DeadLetter[] = refused.map(({ item, result }) => deadLetterOf(item.doc, item.index, result))
    const items = refused.map((r) => r.item)
    try {
      await this.deadLetters.append(letters)
    } catch (err) {
      this.log.error({ err: (err as Error).message, file: this.deadLetters.path, count: items.length },
        'LW_ES_DEAD_LETTER: refused documents could not be written to the dead-letter file; they stay unacknowledged and are retried. Free disk space or fix the permissions of state_dir.')
      this.later({ items, attempt: attempt + 1 })
      return
    }
    this.counters.deadLettered += items.length
    const first = letters[0] as DeadLetter
    this.log.warn({ count: items.length, index: first.index, status: first.status, type: first.error.type, reason: first.error.reason, file: this.deadLetters.path },
      'LW_ES_DOC_REJECTED: Elasticsearch refused documents; they were written to the dead letters')
    await this.copyToDeadLetterIndex(letters)
    this.ack(items)
  }

  /** Best effort: the local file is the record, the index is for searching. */
  private async copyToDeadLetterIndex(letters: DeadLetter[]): Promise<void> {
    try {
      const response = await this.client.transport.request(
        { method: 'POST', path: '/_bulk', querystring: { filter_path: FILTER_PATH }, bulkBody: deadLetterBulk(this.cfg.dead_letter_index, letters) },
        { maxRetries: 0, requestTimeout: this.cfg.request_timeout, signal: this.abort.signal })
      const failed = classifyBulkResponse(response, letters.length).filter((r) => r.outcome !== 'created' && r.outcome !== 'duplicate')
      if (failed.length > 0) {
        this.log.warn({ count: failed.length, index: this.cfg.dead_letter_index, type: failed[0]?.errorType, reason: failed[0]?.reason },
          'dead letters could not be copied to the dead-letter index; they are in the dead-letter file')
      }
    } catch (err) {
      this.log.warn({ err: describeError(err), index: this.cfg.dead_letter_index },
        'dead letters could not be copied to the dead-letter index; they are in the dead-letter file')
    }
  }

  private ack(items: Item[]): void {
    if (this.stopped) return
    const docs: OutDoc[] = new Array(items.length)
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item
      docs[i] = item.doc
      this.pending -= item.cost
      const left = (this.outstanding.get(item.gen) ?? 1) - 1
      if (left === 0) this.outstanding.delete(item.gen)
      else this.outstanding.set(item.gen, left)
    }
    try {
      this.events.onAck(docs)
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'the onAck handler threw; the sink goes on')
    }
    this.wakeWaiters()
  }

  private wakeWaiters(): void {
    if (this.flushWaiters.length > 0) {
      // Generations only grow and are deleted when done, so the Map's first key is the oldest left.
      const oldest = this.outstanding.keys().next()
      const oldestGen = oldest.done === true ? Infinity : oldest.value
      for (let i = this.flushWaiters.length - 1; i >= 0; i--) {
        const waiter = this.flushWaiters[i] as { gen: number; resolve: () => void }
        if (waiter.gen < oldestGen) {
          this.flushWaiters.splice(i, 1)
          waiter.resolve()
        }
      }
    }
    for (let i = this.belowWaiters.length - 1; i >= 0; i--) {
      const waiter = this.belowWaiters[i] as { bytes: number; resolve: () => void }
      if (this.pending < waiter.bytes) {
        this.belowWaiters.splice(i, 1)
        waiter.resolve()
      }
    }
  }

  private markReachable(): void {
    this.consecutiveFailures = 0
    if (this.reachable) return
    this.reachable = true
    if (this.events.onStatus) this.events.onStatus({ reachable: true })
    else this.log.info('Elasticsearch is reachable again')
  }

  private markUnreachable(error: string): void {
    if (!this.reachable) return
    this.reachable = false
    if (this.events.onStatus) this.events.onStatus({ reachable: false, error })
    else this.log.warn({ err: error }, 'LW_ES_UNREACHABLE: Elasticsearch unreachable; documents wait and are retried')
  }
}

/** A one-line reason for a failed request, with any credentials in a URL masked. */
function describeError(err: unknown): string {
  let message: string
  if (err instanceof errors.ResponseError) {
    const body = err.body as { error?: { type?: string; reason?: string } | string } | undefined
    const error = body?.error
    const detail = typeof error === 'string' ? error : error?.reason ?? error?.type ?? ''
    message = `HTTP ${err.statusCode ?? '?'}${detail ? ': ' + detail : ''}`
  } else {
    message = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  }
  return message.replace(/\/\/[^/@\s]+@/g, '//***@')
}
