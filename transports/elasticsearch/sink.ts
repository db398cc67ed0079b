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
 * serialises a document; bodies are gzipped here when `compression` says so (see compression.ts).
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
import { gzipsBodies } from './compression'
import { DeadLetterFile, deadLetterBulk, deadLetterOf, type DeadLetter, type RefusedDoc } from './dead-letter'
import type { OutDoc } from './document'
import { JsonWriter, stringBytesMax, writeBase36, writeString } from './json-writer'
import { checkIndexConfig, compileIndexName, type IndexNamer } from './index-name'

export type { OutDoc } from './document'

export interface SinkStatus {
  reachable: boolean
  /** Why it is unreachable (no credentials in it). */
  error?: string
}

/** What an acknowledgement says of a document. */
export type AckedDoc = Pick<OutDoc, 'sourceId' | 'offset' | 'end'>

export interface SinkEvents {
  /** These documents are durable: created, already there (409), or dead-lettered and fsynced. Called once per document. */
  onAck(docs: readonly AckedDoc[]): void
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
  /** Nothing is sent before this resolves (the agent installs the index template first); pushes are buffered meanwhile. */
  ready?: Promise<void>
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

/**
 * One document waiting for its acknowledgement. Its bytes (action line, document, raw text) are
 * encoded into Buffers as soon as it is pushed, so what the sink holds is off the JS heap and
 * counted exactly: the strings die young, and memory is bounded by `limits.memory_buffer`.
 */
interface Item {
  sourceId: string
  offset: number
  end: number
  index: string
  /** The bytes of `action\ndocument\n` in `buf`. */
  buf: Buffer
  start: number
  stop: number
  /**
   * The raw text's bytes: `raw[rawStart, rawStop)` in a slab of raw texts, or, when `raw` is
   * undefined, `{` followed by `buf[rawStart, rawStop)` (the document ends with the record's bytes).
   */
  raw: Buffer | undefined
  rawStart: number
  rawStop: number
  /** What it weighs in `pendingBytes`: its bytes plus a fixed allowance for the object itself. */
  cost: number
  /** The flush generation it was pushed in. */
  gen: number
}

interface Batch {
  items: Item[]
  /** The bulk body: the items' bytes, in order. */
  body: Buffer
  /** 0 for the first send; each retry of these items adds one. */
  attempt: number
}

function newItem(): Item {
  return { sourceId: '', offset: 0, end: 0, index: '', buf: EMPTY, start: 0, stop: 0, raw: undefined, rawStart: 0, rawStop: 0, cost: 0, gen: 0 }
}

const EMPTY = Buffer.alloc(0)
/** Spare items kept at most: enough for a full memory buffer of small documents. */
const MAX_SPARE = 65_536

/** Heap allowance per queued document (the Item object). */
const ITEM_OVERHEAD = 160

/** Bytes a string may take in UTF-8, at most. */
function maxBytes(s: string): number {
  return s.length * 3
}

/**
 * Buffers handed out again once every document written into them is acknowledged, so the
 * steady state reuses a few arenas instead of leaving a trail of dead buffers for the GC to find
 * (external memory is only reclaimed when V8 gets round to it, which inflates RSS).
 */
class BufferPool {
  private readonly free: Buffer[] = []
  private readonly users = new Map<Buffer, number>()
  constructor(private size_: number, private readonly keep: number) {}

  get size(): number {
    return this.size_
  }

  /** Hands out buffers of `size` from now on; those of the old size are dropped as they come back. */
  resize(size: number): void {
    this.size_ = size
    this.free.length = 0
  }

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size)
  }

  /** `count` more documents live in `buf`. */
  use(buf: Buffer, count: number): void {
    this.users.set(buf, (this.users.get(buf) ?? 0) + count)
  }

  /** `count` documents in `buf` are done with it. */
  release(buf: Buffer, count = 1): void {
    const left = (this.users.get(buf) ?? count) - count
    if (left > 0) {
      this.users.set(buf, left)
      return
    }
    this.users.delete(buf)
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf)
  }
}

/** A batch of items with their bytes copied into one body (for retries of some items, or halves). */
function batchOf(items: Item[], attempt: number, pool: BufferPool): Batch {
  let size = 0
  for (const item of items) size += item.stop - item.start
  const body = Buffer.allocUnsafe(size)
  pool.use(body, items.length)
  let at = 0
  for (const item of items) {
    const len = item.stop - item.start
    item.buf.copy(body, at, item.start, item.stop)
    pool.release(item.buf)
    if (item.raw === undefined) {
      item.rawStart = at + (item.rawStart - item.start)
      item.rawStop = at + (item.rawStop - item.start)
    }
    item.start = at
    item.stop = at + len
    item.buf = body
    at += len
  }
  return { items, body, attempt }
}

/**
 * Arenas start at this size and are then fitted to hold one full batch: with batches of 2,000
 * lines of 400 bytes, about 2 MiB, not the 6 MiB a `batch.max_bytes` of 5 MiB would ask for. An
 * arena is resident memory until every document in it is acknowledged, and one is in use per
 * batch in flight plus the one filling.
 */
const FIRST_ARENA = 1024 * 1024
/** Room a document starts with before it moves to a fresh arena; it can grow past it. */
const HEAD_ROOM = 1024
const MIN_ARENA = 64 * 1024

/** Raw texts are written into slabs of this size; a slab is freed when its last document is acked. */
const RAW_SLAB = 1024 * 1024

const gzip = promisify(zlibGzip)
const GZIP_HEADERS = { 'content-encoding': 'gzip' }
/**
 * Level 3: with the zlib Node ships (Chromium's), levels 2 and 3 compress bulk bodies of log
 * documents faster than level 1 does (about 630 against 550 MB/s, measured on the benchmark's
 * bodies) and smaller (16.8:1 against 12.5:1); from level 4 on, the cost doubles. Large output
 * chunks mean few round trips between the zlib thread and this one.
 */
const GZIP_OPTIONS = { level: 3, chunkSize: 256 * 1024 }

/** Only what we read from the answer: small responses even for large batches. */
const FILTER_PATH = 'errors,items.*.status,items.*.error'

export class ElasticsearchSink {
  private readonly cfg: ElasticsearchConfig
  /** Whether bulk bodies are gzipped (`compression` resolved for the hosts). */
  readonly gzip: boolean
  private readonly client: Client
  private readonly ownsClient: boolean
  private readonly events: SinkEvents
  private readonly log: Logger
  private readonly deadLetters: DeadLetterFile
  private readonly indexFor: IndexNamer
  private readonly abort = new AbortController()

  /** Documents waiting for the batch to fill or the timer to fire; their bytes are in `arena`. */
  private queue: Item[] = []
  /** Where the open batch starts in `arena`, and where the next document goes. */
  private queueStart = 0
  private arenaAt = 0
  /** Where documents are written as they are pushed; each batch's body is a stretch of it. */
  private arena: Buffer
  private readonly arenas: BufferPool
  /** Writes documents in place, into the arena (see begin). */
  private readonly writer = new JsonWriter(0)
  /** Where the document being written starts (its action line) in `writer.buf`, and its index. */
  private docStart = 0
  private docIndex = ''
  /** Room for the largest batch `batch.max_bytes` allows, with a margin for the document that crosses it. */
  private readonly maxArena: number
  /** Raw texts, for dead letters only; they stay in the slab they were written to until acked. */
  private rawSlab: Buffer
  private rawUsed = 0
  private readonly slabs = new BufferPool(RAW_SLAB, 8)
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
  /** The producer said nothing more is coming for now, and has not pushed since. */
  private producerIdle = false
  private isReady = true

  /** Memo of the last index's action-line prefix: consecutive documents nearly always share it. */
  private lastIndex = ''
  private lastPrefix = Buffer.alloc(0)

  /**
   * Items of acknowledged documents, for reuse: each lives tens of milliseconds, long enough to
   * be promoted out of the young generation, and a fresh one per line would leave the old
   * generation full of them between major collections.
   */
  private readonly spare: Item[] = []

  private readonly counters: SinkStats = { sent: 0, created: 0, duplicates: 0, deadLettered: 0, retries: 0, requests: 0 }

  constructor(cfg: ElasticsearchConfig, opts: SinkOptions) {
    checkIndexConfig(cfg)
    this.cfg = cfg
    this.gzip = gzipsBodies(cfg)
    this.client = opts.client ?? createClient(cfg)
    this.ownsClient = opts.client === undefined
    this.events = opts.events
    this.log = opts.logger
    this.deadLetters = new DeadLetterFile(join(opts.stateDir, 'deadletter.ndjson'))
    this.indexFor = compileIndexName(cfg.index)
    if (opts.ready) {
      this.isReady = false
      void opts.ready.then(() => { this.isReady = true; this.pump() })
    }
    this.maxArena = Math.max(MIN_ARENA, cfg.batch_max_bytes + (cfg.batch_max_bytes >> 2))
    this.arenas = new BufferPool(Math.min(FIRST_ARENA, this.maxArena), cfg.concurrency + 2)
    this.arena = this.arenas.take()
    this.arenas.use(this.arena, 1)
    this.writer.spill = (n) => this.spill(n)
    this.rawSlab = this.slabs.take()
  }

  /** Bytes pushed but not yet acked (queued, waiting to retry, or in flight). */
  get pendingBytes(): number {
    return this.pending
  }

  stats(): SinkStats {
    return { ...this.counters }
  }

  /** Takes a finished document (its text or bytes); the caller may reuse `doc` afterwards. */
  push(doc: OutDoc): void {
    const w = this.begin(doc.id, doc.timestamp)
    if (doc.bytes !== undefined) w.copy(doc.bytes, 0, doc.bytesLen as number)
    else w.text(doc.body)
    this.finish(doc)
  }

  /**
   * Starts a document: writes its action line into the arena and returns the writer positioned
   * for the document's JSON, which is then written in place (no copy of it is made). Write the
   * document, then call finish(doc); nothing else goes to the sink in between.
   *
   * With an `offset`, the `_id` is documentId's: `id` (the source's hash), `-`, and the offset in
   * base 36, written as bytes without making the string.
   */
  begin(id: string, timestamp: string, offset = -1): JsonWriter {
    this.producerIdle = false
    if (this.closing) {
      // A caller bug, not a runtime condition: there is no LW_ code for it.
      throw new Error('a document was pushed to the Elasticsearch sink after close(); stop reading before closing the sink')
    }
    const index = this.indexFor(timestamp)
    if (index !== this.lastIndex) {
      this.lastIndex = index
      this.lastPrefix = Buffer.from('{"create":{"_index":' + JSON.stringify(index) + ',"_id":', 'utf8')
    }
    const need = this.lastPrefix.length + stringBytesMax(id) + 12 + 3 + HEAD_ROOM
    if (this.arenaAt + need > this.arena.length) {
      this.cutBeforeLeaving()
      this.freshArena()
    }
    const buf = this.arena
    const start = this.arenaAt
    let at = start + this.lastPrefix.copy(buf, start)
    at = writeString(buf, at, id)
    if (offset >= 0) {
      buf[at - 1] = 45 // - over the closing quote
      at = writeBase36(buf, at, offset)
      buf[at++] = 34
    }
    buf[at++] = 125 // }
    buf[at++] = 125
    buf[at++] = 10
    this.docStart = start
    this.docIndex = index
    const w = this.writer
    w.buf = buf
    w.at = at
    return w
  }

  /**
   * The writer needs `n` more bytes than the arena has left: the document so far moves to a
   * fresh arena (what came before it is cut into a batch), or, larger than an arena, to a buffer
   * of its own, in which it is sent alone.
   */
  private spill(n: number): void {
    const w = this.writer
    const old = w.buf
    const len = w.at - this.docStart
    const need = len + n + 1
    let buf: Buffer
    if (old === this.arena && need <= this.arenas.size) {
      this.cutBeforeLeaving()
      buf = this.arenas.take()
      this.arenas.use(buf, 1)
      old.copy(buf, 0, this.docStart, w.at)
      this.arenas.release(old)
      this.arena = buf
      this.arenaAt = 0
      this.queueStart = 0
    } else {
      // The arena (if that is where it was) stays as it is: nothing of this document was committed there.
      buf = Buffer.allocUnsafe(Math.max(2 * need, MIN_ARENA))
      old.copy(buf, 0, this.docStart, w.at)
    }
    this.docStart = 0
    w.buf = buf
    w.at = len
  }

  /**
   * Ends the document begun with begin(): appends the tail (the record's own bytes) when `doc`
   * has one, keeps its raw text for the dead letters, and queues it. `doc` gives the tail, the
   * raw text and the position; its `id` (begin wrote it), `body` and `bytes` are not read.
   */
  finish(doc: OutDoc): void {
    const w = this.writer
    const tail = doc.tail
    const tailLen = tail === undefined ? 0 : (doc.tailEnd as number) - (doc.tailStart as number)
    w.room(tailLen + 1)
    const buf = w.buf
    const start = this.docStart
    const index = this.docIndex
    let at = w.at
    let raw: Buffer | undefined
    let rawStart = 0
    let rawStop = 0
    let rawBytes = 0
    if (tail !== undefined) {
      rawStart = at
      const text = doc.tailText
      if (text !== undefined) {
        // The whole text, its brace over the byte before the tail (a comma or the document's
        // own brace), which is put back.
        const before = buf[at - 1]!
        buf.write(text, at - 1, 'latin1')
        buf[at - 1] = before
        at += tailLen
      } else {
        at += tail.copy(buf, at, doc.tailStart, doc.tailEnd)
      }
      rawStop = at
    }
    if (tail === undefined || doc.raw !== undefined || doc.rawBytes !== undefined) {
      const text = doc.raw
      const rawNeed = text !== undefined ? maxBytes(text) : doc.rawBytes !== undefined ? (doc.rawEnd as number) - (doc.rawStart as number) : 0
      if (this.rawUsed + rawNeed > this.rawSlab.length) {
        this.rawSlab = rawNeed > RAW_SLAB ? Buffer.allocUnsafe(rawNeed) : this.slabs.take()
        this.rawUsed = 0
      }
      this.slabs.use(this.rawSlab, 1)
      raw = this.rawSlab
      rawStart = this.rawUsed
      if (text !== undefined) this.rawUsed += this.rawSlab.write(text, rawStart)
      else if (doc.rawBytes !== undefined) this.rawUsed += doc.rawBytes.copy(this.rawSlab, rawStart, doc.rawStart, doc.rawEnd)
      rawStop = this.rawUsed
      rawBytes = rawStop - rawStart
    }
    buf[at++] = 10
    const bytesUsed = at - start

    const item = this.spare.pop() ?? newItem()
    item.sourceId = doc.sourceId
    item.offset = doc.offset
    item.end = doc.end
    item.index = index
    item.buf = buf
    item.start = start
    item.stop = at
    item.raw = raw
    item.rawStart = rawStart
    item.rawStop = rawStop
    item.cost = bytesUsed + rawBytes + ITEM_OVERHEAD
    item.gen = this.gen
    this.queue.push(item)
    this.pending += item.cost
    this.outstanding.set(item.gen, (this.outstanding.get(item.gen) ?? 0) + 1)
    if (buf !== this.arena) {
      this.arenas.use(buf, 1)
      this.ready.push({ items: this.queue.splice(this.queue.length - 1, 1), body: buf.subarray(0, at), attempt: 0 })
      this.cut()
      return
    }
    this.arenaAt = at
    if (this.queue.length >= this.cfg.batch_max_docs || at - this.queueStart >= this.cfg.batch_max_bytes) {
      const batchBytes = at - this.queueStart
      this.fitArenas(batchBytes)
      this.cut()
      // The next batch starts in a fresh arena unless it fits in what is left of this one: a
      // batch cut short by the end of an arena would only make one more request.
      if (this.arena.length - this.arenaAt < batchBytes) this.freshArena()
    } else if (this.batchTimer === undefined) this.batchTimer = setTimeout(() => this.cut(), this.cfg.batch_interval)
  }

  /**
   * The producer has nothing more for now (its files are read to the end). Waiting for the batch
   * to fill would only delay what is queued: it goes out now if a request slot is free, or when
   * one frees up. While the producer keeps pushing, batches fill as usual — small batches when
   * the logs are quiet, full ones when they are busy, with no timer in the way of either.
   */
  idle(): void {
    this.producerIdle = true
    if (this.queue.length > 0 && this.inFlight < this.slots()) this.cut()
  }

  /** Requests that may be out at once: one probes at a time while Elasticsearch is failing. */
  private slots(): number {
    return this.reachable ? this.cfg.concurrency : 1
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
    if (this.queue.length === 0) {
      this.pump()
      return
    }
    // The batch's body is its stretch of the arena; the next batch goes on after it, and the
    // arena returns to the pool once every document in it is acknowledged.
    this.arenas.use(this.arena, this.queue.length)
    this.ready.push({ items: this.queue, body: this.arena.subarray(this.queueStart, this.arenaAt), attempt: 0 })
    this.queueStart = this.arenaAt
    this.queue = []
    this.pump()
  }

  /**
   * Sizes new arenas for batches of `batchBytes`, with a quarter more for the variation between
   * batches, within bounds. Only a clear change replaces the pool: a batch that would not fit with
   * a tenth to spare, or arenas more than twice the size wanted.
   */
  private fitArenas(batchBytes: number): void {
    const size = this.arenas.size
    const want = Math.min(this.maxArena, Math.max(MIN_ARENA, Math.ceil(batchBytes * 1.25)))
    if ((batchBytes * 1.1 > size && want > size) || want < size / 2) this.arenas.resize(want)
  }

  /**
   * The arena is left for a fresh one: what is queued in it goes out as a batch. A batch that took
   * the whole arena was cut by the arena, not by the batch limits: the arenas are too small for
   * these documents, and grow.
   */
  private cutBeforeLeaving(): void {
    if (this.queueStart === 0 && this.queue.length > 0) this.fitArenas(2 * this.arena.length)
    if (this.queue.length > 0) this.cut()
  }

  /** Starts writing into a new arena; the one left returns to the pool when its documents are acknowledged. */
  private freshArena(): void {
    this.arenas.release(this.arena)
    this.arena = this.arenas.take()
    this.arenas.use(this.arena, 1)
    this.arenaAt = 0
    this.queueStart = 0
  }

  private pump(): void {
    if (this.stopped || !this.isReady) return
    const wait = this.resumeAt - Date.now()
    if (wait > 0) {
      if (this.wakeTimer === undefined) {
        this.wakeTimer = setTimeout(() => { this.wakeTimer = undefined; this.pump() }, wait)
      }
      return
    }
    // While Elasticsearch is failing whole requests, one batch probes at a time; the rest wait.
    const limit = this.slots()
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
      // Compressed here rather than by the client: level 3 costs 40% of the default level's CPU
      // (see GZIP_OPTIONS), and runs on the libuv pool, off this thread.
      const payload = this.gzip ? await gzip(batch.body, GZIP_OPTIONS) : batch.body
      const response = await this.client.transport.request(
        { method: 'POST', path: '/_bulk', querystring: { filter_path: FILTER_PATH }, bulkBody: payload },
        { maxRetries: 0, requestTimeout: this.cfg.request_timeout, signal: this.abort.signal, headers: this.gzip ? GZIP_HEADERS : undefined })
      results = classifyBulkResponse(response, batch.items.length)
    } catch (err) {
      this.inFlight--
      this.wholeFailure(batch, err)
      this.pump()
      return
    }
    this.inFlight--
    this.markReachable()
    if (this.producerIdle && this.queue.length > 0) this.cut()
    else this.pump()
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
      this.later(retry, batch.attempt + 1)
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
      void this.deadLetter([{ item, result: { outcome: 'rejected', status: 413, errorType: 'request_entity_too_large', reason: `a bulk request with this document alone (${item.stop - item.start} bytes) was refused as too large` } }], attempt)
      return
    }
    const half = Math.ceil(items.length / 2)
    this.log.debug({ docs: items.length }, 'bulk request too large (413); sending it in halves')
    this.ready.unshift(batchOf(items.slice(0, half), attempt + 1, this.arenas), batchOf(items.slice(half), attempt + 1, this.arenas))
  }

  /** Puts items back after their backoff (retries go before new batches: older offsets first). */
  private later(items: Item[], attempt: number): void {
    if (this.stopped) return
    const delay = retryDelay(attempt, this.cfg.retry_initial, this.cfg.retry_max, undefined)
    const timer = setTimeout(() => {
      this.delayed.delete(timer)
      this.ready.unshift(batchOf(items, attempt, this.arenas))
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
    const letters: DeadLetter[] = refused.map(({ item, result }) => deadLetterOf(refusedDocOf(item), item.index, result))
    const items = refused.map((r) => r.item)
    try {
      await this.deadLetters.append(letters)
    } catch (err) {
      this.log.error({ err: (err as Error).message, file: this.deadLetters.path, count: items.length },
        'LW_ES_DEAD_LETTER: refused documents could not be written to the dead-letter file; they stay unacknowledged and are retried. Free disk space or fix the permissions of state_dir.')
      this.later(items, attempt + 1)
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
    // Neighbours share their buffers: release them a run at a time.
    let run = 0
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item
      run++
      if (i + 1 === items.length || items[i + 1]!.buf !== item.buf) {
        this.arenas.release(item.buf, run)
        run = 0
      }
      if (item.raw !== undefined) this.slabs.release(item.raw)
      this.pending -= item.cost
      const left = (this.outstanding.get(item.gen) ?? 1) - 1
      if (left === 0) this.outstanding.delete(item.gen)
      else this.outstanding.set(item.gen, left)
    }
    try {
      this.events.onAck(items)
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'the onAck handler threw; the sink goes on')
    }
    // Nothing refers to them any more: the handler has had them, their batch is settled.
    for (let i = 0; i < items.length && this.spare.length < MAX_SPARE; i++) {
      const item = items[i] as Item
      item.buf = EMPTY
      item.raw = undefined
      this.spare.push(item)
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

/** The document and its raw text as they were pushed, decoded back from the bytes (dead letters only). */
function refusedDocOf(item: Item): RefusedDoc {
  // The action line is JSON, which never holds a raw newline: the document starts after the first.
  const body = item.buf.indexOf(10, item.start) + 1
  // Items do not keep their `_id` (a string per line); the action line has it.
  const action = JSON.parse(item.buf.toString('utf8', item.start, body - 1)) as { create: { _id: string } }
  return {
    id: action.create._id, sourceId: item.sourceId, offset: item.offset,
    body: item.buf.toString('utf8', body, item.stop - 1),
    raw: item.raw === undefined ? '{' + item.buf.toString('utf8', item.rawStart, item.rawStop) : item.raw.toString('utf8', item.rawStart, item.rawStop),
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
