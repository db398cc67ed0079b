import { open, readdir, stat, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { FileInputConfig } from '../../config/types'
import type { RawRecord } from '../../entry'
import { LineSplitter } from '../../framing/lines'
import { Multiline } from '../../framing/multiline'
import type { Logger } from '../../logger'
import { AckTracker } from './ack-tracker'
import { HEAD_BYTES, headHash, headIn, headOf, sourceIdOf, type FileIdentity } from './identity'
import { copyBytes, copyKind } from './rotated-copy'
import type { Semaphore } from './semaphore'

/** Where a harvester's records go: the pipeline (parse, rules, documents). */
export interface RecordConsumer {
  /** Takes records of one source; every record must be tracked with `tracker.add(record.offset)` before it is handed on. */
  accept(records: RawRecord[], source: HarvestedSource): void
  /** Resolves when there is room in the bounded buffer for more (backpressure, invariant 3). */
  room(): Promise<void>
  /** Whether there is room now. */
  hasRoom(): boolean
  /**
   * When the buffer is full, keep reading for the rules only (invariant 4: alerts do not wait for
   * Elasticsearch) and come back later to ship what was read meanwhile. False without rules.
   */
  readonly readAhead: boolean
  /** A source has read all there is for now: what waits for a batch to fill need not wait. */
  caughtUp(source: HarvestedSource): void
  /** A source starts or stops producing: the consumer routes acknowledgements by sourceId. */
  attach(source: HarvestedSource): void
  detach(source: HarvestedSource): void
}

/** What the consumer needs to know about the source of a batch of records. */
export interface HarvestedSource {
  readonly sourceId: string
  readonly path: string
  readonly input: FileInputConfig
  readonly tracker: AckTracker
  /** false while reading ahead for the rules only: records are evaluated, not shipped. */
  readonly shipping: boolean
  /** Records starting before this offset were already evaluated by the rules (before a restart, or while reading ahead). */
  readonly rulesFrom: number
  /** Just past the last record the rules evaluated; the consumer advances it. */
  rulesPos: number
}

export interface HarvesterOptions {
  path: string
  identity: FileIdentity
  generation: number
  startOffset: number
  /** Records before this offset were evaluated by the rules before (the checkpoint's rules offset). */
  rulesFrom?: number
  input: FileInputConfig
  consumer: RecordConsumer
  slots: Semaphore
  log: Logger
  /** true for `logwarden ship`: read to the end, emit a last line without newline, and finish. */
  oneShot: boolean
  /** Called when the path no longer leads to this file (renamed or deleted), so the input looks at it again. */
  onMoved?(path: string): void
  /**
   * The file was emptied or replaced while the agent was away: read only what was left unread,
   * from the copy copytruncate made or the file itself renamed beside it (whichever holds these
   * last bytes read, see findCopy), and finish. `tail` are the bytes before `end` as the
   * checkpoint kept them (Harvester.tail).
   */
  fromCopy?: { tail: Buffer; end: number }
}

/** Read size per call: large enough that syscalls are rare, small enough that many files can be active. */
const CHUNK = 64 * 1024
/** While at the end of a file, how often to look for rotation and truncation if no change event comes. */
const IDLE_CHECK_MS = 1000
/** A file renamed or deleted under us is read until it has been quiet this long (apps reopen their log promptly). */
const MOVED_GRACE_MS = 5000
/** Bytes kept of the end of what was read, to tell the copy copytruncate made from older rotations (see findCopy). */
const SAMPLE_BYTES = 64

/**
 * Reads one file from an offset to its end and keeps following it (Filebeat calls this a
 * harvester). It survives rename rotation by reading through its open descriptor, notices
 * in-place truncation (size below the read position) and restarts with a new generation so
 * offsets restarting at 0 get fresh document ids, and hands records to the consumer only when the
 * consumer has room.
 */
export class Harvester implements HarvestedSource {
  path: string
  readonly identity: FileIdentity
  readonly input: FileInputConfig
  generation: number
  sourceId: string
  tracker = new AckTracker()
  shipping = true
  rulesFrom: number
  rulesPos: number
  /** While reading ahead: where shipping resumes (the first record not handed to the sink). */
  private shipResume = 0
  /** Bytes read so far (the next read starts here). */
  private readPos: number
  private splitter: LineSplitter
  private multiline: Multiline | undefined
  private fh: FileHandle | undefined
  /** The read of the next chunk, started while the last one was being handled. */
  private prefetch: { pos: number; buf: Buffer; read: Promise<{ bytesRead: number }> } | undefined
  private stopped = false
  private finished = false
  private wakeResolve: (() => void) | undefined
  private lastData = Date.now()
  private movedAt = 0
  /** The file's bytes [sampleEnd - sampleLen, sampleEnd), as last read. */
  private readonly sample = Buffer.alloc(SAMPLE_BYTES)
  private sampleLen = 0
  private sampleEnd = 0
  /** Resolves when the harvester has stopped reading and closed its file. */
  readonly done: Promise<void>

  constructor(private readonly opts: HarvesterOptions) {
    this.path = opts.path
    this.identity = opts.identity
    this.input = opts.input
    this.generation = opts.generation
    this.sourceId = sourceIdOf(opts.identity.id, opts.generation)
    this.readPos = opts.startOffset
    this.rulesFrom = Math.max(opts.rulesFrom ?? opts.startOffset, opts.startOffset)
    this.rulesPos = this.rulesFrom
    this.splitter = new LineSplitter(opts.startOffset, opts.input.max_line_bytes)
    this.multiline = opts.input.multiline ? new Multiline(opts.input.multiline) : undefined
    this.done = this.run()
  }

  /** Offset before which everything of this file is durable: the value the checkpoint records. */
  committedOffset(): number {
    const unacked = this.tracker.firstUnacked()
    if (unacked !== undefined) return unacked
    if (!this.shipping) return this.shipResume
    return this.multiline?.pendingOffset ?? this.splitter.position
  }

  get isFinished(): boolean {
    return this.finished
  }

  /** Bytes read so far, for progress reporting. */
  get position(): number {
    return this.readPos
  }

  /** The file changed (a watcher event): stop waiting at the end of the file. */
  wake(): void {
    const r = this.wakeResolve
    this.wakeResolve = undefined
    if (r) r()
  }

  /** Stop reading (shutdown). Records already handed on stay tracked; pending multiline groups are re-read after a restart. */
  stop(): void {
    this.stopped = true
    this.wake()
  }

  /** Made to read the rest of a file emptied or replaced while the agent was away (HarvesterOptions.fromCopy). */
  get fromCopy(): boolean {
    return this.opts.fromCopy !== undefined
  }

  /** The last bytes read and the offset they end at, for the checkpoint (see HarvesterOptions.fromCopy); undefined before any. */
  get tail(): { tail: Buffer; end: number } | undefined {
    return this.sampleLen === 0 ? undefined : { tail: this.sample.subarray(0, this.sampleLen), end: this.sampleEnd }
  }

  private async run(): Promise<void> {
    const { consumer, slots, log } = this.opts
    await slots.acquire()
    try {
      const fromCopy = this.opts.fromCopy
      if (fromCopy !== undefined) {
        this.sampleLen = Math.min(fromCopy.tail.length, SAMPLE_BYTES)
        fromCopy.tail.copy(this.sample, 0, fromCopy.tail.length - this.sampleLen)
        this.sampleEnd = fromCopy.end
        consumer.attach(this)
        const from = this.readPos
        await this.readFromCopy()
        this.finish([])
        if (this.readPos === from) {
          log.warn({ path: this.path, offset: from },
            'LW_INPUT_TRUNCATED: the file was emptied or replaced while the agent was away, and nothing beside it (a copy or the renamed file, as it is or gzipped) holds more of its old content; anything written to it past this offset before then was not read')
        }
        return
      }
      this.fh = await open(this.path, 'r')
      const st = await this.fh.stat()
      // The path may already lead to another file than the one identified; only read ours.
      if (st.ino !== this.identity.ino || st.dev !== this.identity.dev) {
        this.opts.onMoved?.(this.path)
        return
      }
      consumer.attach(this)
      // Two buffers: while one chunk is framed and shipped, the next is already being read into
      // the other (a read waits its turn on the thread pool, behind compression).
      const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)] as const
      let buf: Buffer = bufs[0]
      const out: RawRecord[] = []
      while (!this.stopped) {
        if (!consumer.hasRoom()) {
          if (!consumer.readAhead || this.opts.oneShot) await consumer.room()
          else if (this.shipping) this.startReadAhead()
        } else if (!this.shipping) {
          this.stopReadAhead()
        }
        if (this.stopped) break
        let bytesRead: number
        const ahead = this.prefetch
        this.prefetch = undefined
        if (ahead !== undefined && ahead.pos === this.readPos) {
          buf = ahead.buf
          bytesRead = (await ahead.read).bytesRead
        } else {
          // Reading moved (read-ahead ended, truncation): what was fetched is not needed.
          if (ahead !== undefined) await ahead.read.catch(() => undefined)
          bytesRead = (await this.fh.read(buf, 0, CHUNK, this.readPos)).bytesRead
        }
        if (bytesRead > 0) {
          this.advance(buf, bytesRead)
          this.lastData = Date.now()
          if (bytesRead === CHUNK && !this.stopped) {
            // A full chunk: there is likely more; fetch it while this one is handled.
            const next = buf === bufs[0] ? bufs[1] : bufs[0]
            this.prefetch = { pos: this.readPos, buf: next, read: this.fh.read(next, 0, CHUNK, this.readPos) }
          }
          this.splitter.push(buf.subarray(0, bytesRead), out)
          this.emit(out)
          continue
        }
        consumer.caughtUp(this)
        if (this.opts.oneShot) {
          this.finish(out)
          break
        }
        if (await this.atEnd(out)) break
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        log.debug({ path: this.path }, 'file vanished before it could be opened')
      } else {
        log.error({ path: this.path, err: (err as Error).message }, 'LW_INPUT_READ: reading the file failed; it will be retried at the next scan')
      }
    } finally {
      this.finished = true
      // The descriptor is closed only once no read is using it.
      await this.prefetch?.read.catch(() => undefined)
      this.prefetch = undefined
      await this.fh?.close().catch(() => undefined)
      this.fh = undefined
      slots.release()
    }
  }

  /** Hands framed lines on through multiline joining; empties `out` for reuse. */
  private emit(out: RawRecord[]): void {
    if (out.length === 0) return
    if (this.multiline) {
      const joined: RawRecord[] = []
      for (const r of out) this.multiline.push(r, joined)
      this.handOn(joined)
    } else {
      this.handOn(out)
    }
    out.length = 0
  }

  /**
   * Hands finished records on, tracking each before it leaves. Records a multiline group
   * released (flush, timeout) come here directly: sent through `emit` they would be taken as a
   * new line and held again, so the last group of a file would never leave.
   */
  private handOn(records: RawRecord[]): void {
    if (records.length === 0) return
    for (const r of records) this.tracker.add(r.offset)
    this.opts.consumer.accept(records, this)
  }

  /** Nothing more will be appended to what was read: its last line, even without a newline, and any pending group are complete. */
  private finish(out: RawRecord[]): void {
    this.splitter.flushPartial(out)
    this.emit(out)
    if (this.multiline) {
      const rest: RawRecord[] = []
      this.multiline.flush(rest)
      this.handOn(rest)
    }
  }

  /**
   * Elasticsearch cannot take more now: go on reading for the rules only, remembering where
   * shipping stopped. Nothing is held meanwhile, so memory stays bounded however long it lasts.
   */
  private startReadAhead(): void {
    this.shipping = false
    this.shipResume = this.multiline?.pendingOffset ?? this.splitter.position
    this.opts.log.debug({ path: this.path, from: this.shipResume }, 'the Elasticsearch buffer is full: reading ahead for the rules only')
    void this.opts.consumer.room().then(() => this.wake())
  }

  /** Room again: go back to where shipping stopped; the rules skip what they have already seen. */
  private stopReadAhead(): void {
    this.shipping = true
    this.rulesFrom = this.rulesPos
    this.readPos = this.shipResume
    this.splitter = new LineSplitter(this.shipResume, this.input.max_line_bytes)
    this.multiline = this.input.multiline ? new Multiline(this.input.multiline) : undefined
  }

  /**
   * At the end of the file: flush an idle multiline group, look for truncation and rotation, and
   * wait for more. Returns true when the harvester should finish.
   */
  private async atEnd(out: RawRecord[]): Promise<boolean> {
    const now = Date.now()
    if (this.multiline) {
      const idle: RawRecord[] = []
      this.multiline.flushIfIdle(now, idle)
      this.handOn(idle)
    }
    const fst = await this.fh!.stat()
    if (fst.size < this.readPos) {
      await this.restartTruncated(fst.size)
      return false
    }
    let moved = false
    try {
      const pst = await stat(this.path)
      moved = pst.ino !== this.identity.ino || pst.dev !== this.identity.dev
    } catch {
      moved = true
    }
    if (moved) {
      if (this.movedAt === 0) {
        this.movedAt = now
        this.opts.log.info({ path: this.path }, 'file was renamed or deleted; reading it to its end')
        this.opts.onMoved?.(this.path)
      }
      if (this.shipping && now - this.lastData >= Math.min(MOVED_GRACE_MS, this.input.close_inactive)) {
        // Nobody will write to it again.
        this.finish(out)
        return true
      }
    } else if (this.shipping && now - this.lastData >= this.input.close_inactive) {
      // Quiet for long: free the descriptor. A later change rediscovers the file and resumes at the checkpoint.
      return true
    }
    const waitMs = this.multiline?.pendingOffset !== undefined
      ? Math.min(IDLE_CHECK_MS, this.input.multiline!.timeout)
      : IDLE_CHECK_MS
    await this.waitForChange(waitMs)
    return false
  }

  /**
   * The file was truncated in place (copytruncate, `> file`). Bytes past the new size are gone;
   * what we read of them is already tracked. Wait until everything of the old generation is
   * acknowledged — the checkpoint cannot describe two generations of one file — then start over
   * at offset 0 under a new generation.
   */
  private async restartTruncated(size: number): Promise<void> {
    await this.readFromCopy()
    if (this.stopped) return
    this.finish([])
    this.opts.log.info({ path: this.path, size, position: this.readPos }, 'file was truncated; reading it again from the start')
    while (this.tracker.outstanding > 0 && !this.stopped) await this.waitForChange(50)
    if (this.stopped) return
    this.opts.consumer.detach(this)
    this.generation++
    this.sampleLen = 0
    this.sampleEnd = 0
    this.sourceId = sourceIdOf(this.identity.id, this.generation)
    this.tracker = new AckTracker()
    this.readPos = 0
    // What was read ahead and not shipped is gone with the truncation; a new generation starts.
    this.shipping = true
    this.rulesFrom = 0
    this.rulesPos = 0
    this.splitter = new LineSplitter(0, this.input.max_line_bytes)
    this.multiline = this.input.multiline ? new Multiline(this.input.multiline) : undefined
    this.opts.consumer.attach(this)
  }

  /**
   * copytruncate: logrotate copied the file aside, then emptied it. Lines the harvester had not
   * read yet are gone from the file, but they are in the copy, if there is one to be found: a
   * file beside it named after it (`app.log.1`, `app.log-20240521`, `app.log.1.gz`), another
   * inode (or, after a restart, this very file renamed: see HarvesterOptions.fromCopy), longer
   * than what was read, and starting with this file's first line. Its bytes from the read
   * position on are read as this file's, under the same source id, so they get the document ids
   * they would have had. Lines written between the copy and the truncation are in neither file;
   * nothing can bring those back.
   */
  private async readFromCopy(): Promise<void> {
    const { log, consumer } = this.opts
    // Reading ahead for the rules: shipping resumes where it stopped, in the copy.
    if (!this.shipping) this.stopReadAhead()
    const copy = await this.findCopy()
    if (copy === undefined) return
    const from = this.readPos
    const out: RawRecord[] = []
    try {
      for await (const chunk of copyBytes(copy.path, copy.kind, from, CHUNK)) {
        if (!consumer.hasRoom()) await consumer.room()
        if (this.stopped) break
        this.advance(chunk, chunk.length)
        this.splitter.push(chunk, out)
        this.emit(out)
      }
    } catch (err) {
      log.warn({ path: this.path, copy: copy.path, offset: this.readPos, err: (err as Error).message },
        'LW_INPUT_COPY: the rotated copy that holds what had not been read of this file could not be read to its end (a corrupt or cut-short gzip file, or it was removed meanwhile); the lines past this offset were not read')
      return
    }
    log.info({ path: this.path, copy: copy.path, compressed: copy.kind === 'gzip', from, to: this.readPos },
      'the file was emptied (copytruncate) or replaced; what had not been read of it yet was read from the copy or the renamed file beside it')
  }

  /** `buf[0, n)` was read at the read position: the position moves past it, and its end is kept as the sample. */
  private advance(buf: Buffer, n: number): void {
    this.readPos += n
    this.keepSample(buf, n, this.readPos)
  }

  /** Keeps the last bytes read, `buf[0, n)` ending at offset `end`. A chunk per read: not per line. */
  private keepSample(buf: Buffer, n: number, end: number): void {
    if (n >= SAMPLE_BYTES) {
      buf.copy(this.sample, 0, n - SAMPLE_BYTES, n)
      this.sampleLen = SAMPLE_BYTES
    } else {
      // A short read: what is kept must end where it starts, or it describes other bytes.
      const keep = end - n === this.sampleEnd ? Math.min(this.sampleLen, SAMPLE_BYTES - n) : 0
      this.sample.copy(this.sample, 0, this.sampleLen - keep, this.sampleLen)
      buf.copy(this.sample, keep, 0, n)
      this.sampleLen = keep + n
    }
    this.sampleEnd = end
  }

  /**
   * The copy of this file that copytruncate left, with more than was read. It must start with
   * this file's first line and hold the last bytes read where they were read: an older rotation
   * that starts with the same banner does not. With nothing read since the start, no copy is
   * trusted. Of several, the newest is taken: the latest rotation is the one made from this file.
   */
  private async findCopy(): Promise<{ path: string; kind: 'plain' | 'gzip' } | undefined> {
    if (this.sampleLen === 0) return undefined
    const dir = dirname(this.path)
    const base = basename(this.path)
    let names: string[]
    try {
      names = await readdir(dir)
    } catch {
      return undefined
    }
    const candidates: Array<{ path: string; kind: 'plain' | 'gzip'; mtimeMs: number }> = []
    for (const name of names) {
      const kind = copyKind(base, name)
      if (kind === undefined) continue
      const path = join(dir, name)
      try {
        const st = await stat(path)
        if (!st.isFile()) continue
        // The file itself, under another name, is what a recovery after a restart may find (it was
        // renamed away while the agent was stopped); a copy is another inode. A gzip file's size
        // says nothing of what it holds.
        const same = st.ino === this.identity.ino && st.dev === this.identity.dev
        if (kind === 'plain' && (st.size <= this.readPos || st.size < this.sampleEnd || (same && this.opts.fromCopy === undefined))) continue
        candidates.push({ path, kind, mtimeMs: st.mtimeMs })
      } catch {
        // Gone meanwhile: not a copy.
      }
    }
    candidates.sort((a, b) => b.mtimeMs - a.mtimeMs)
    for (const c of candidates) {
      try {
        if (c.kind === 'plain' ? await this.isPlainCopy(c.path) : await this.isGzipCopy(c.path)) return c
      } catch {
        // Gone, unreadable or (gzip) corrupt: not a copy we can use.
      }
    }
    return undefined
  }

  private async isPlainCopy(path: string): Promise<boolean> {
    const fh = await open(path, 'r')
    try {
      const head = await headOf(fh)
      if (head === null || headHash(head) !== this.identity.head) return false
      const there = Buffer.alloc(this.sampleLen)
      await fh.read(there, 0, this.sampleLen, this.sampleEnd - this.sampleLen)
      return there.equals(this.sample.subarray(0, this.sampleLen))
    } finally {
      await fh.close().catch(() => undefined)
    }
  }

  /** The checks of isPlainCopy on what the gzip file inflates to, inflating no further than needed to answer. */
  private async isGzipCopy(path: string): Promise<boolean> {
    const head = Buffer.allocUnsafe(HEAD_BYTES)
    let headLen = 0
    let headChecked = false
    const sampleStart = this.sampleEnd - this.sampleLen
    const there = Buffer.alloc(this.sampleLen)
    let at = 0
    for await (const chunk of copyBytes(path, 'gzip', 0, CHUNK)) {
      if (headLen < HEAD_BYTES) headLen += chunk.copy(head, headLen, 0, Math.min(chunk.length, HEAD_BYTES - headLen))
      if (!headChecked && (headLen === HEAD_BYTES || head.subarray(0, headLen).indexOf(10) !== -1)) {
        const first = headIn(head.subarray(0, headLen))
        if (first === null || headHash(first) !== this.identity.head) return false
        headChecked = true
      }
      const s = Math.max(at, sampleStart)
      const e = Math.min(at + chunk.length, this.sampleEnd)
      if (s < e) chunk.copy(there, s - sampleStart, s - at, e - at)
      at += chunk.length
      // Past what was read: there is more in it, and everything to compare has been seen.
      if (at > this.readPos) return headChecked && there.equals(this.sample.subarray(0, this.sampleLen))
    }
    return false
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.wakeResolve = undefined; resolve() }, ms)
      this.wakeResolve = () => { clearTimeout(timer); resolve() }
    })
  }
}
