import type { Stats } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import chokidar, { type FSWatcher } from 'chokidar'
import type { FileCheckpoint } from '../../checkpoint/store'
import type { FileInputConfig } from '../../config/types'
import type { Logger } from '../../logger'
import { Harvester, type RecordConsumer } from './harvester'
import { identify, HEAD_BYTES, type FileIdentity } from './identity'
import { lastLineStart } from './line-start'
import type { Semaphore } from './semaphore'

export interface FileInputOptions {
  input: FileInputConfig
  consumer: RecordConsumer
  slots: Semaphore
  log: Logger
  /** Shared by all inputs: file id → checkpoint. Read at discovery, written by `snapshot()`. */
  registry: Map<string, FileCheckpoint>
  /** Shared by all inputs, so a file matched by two inputs is read once. */
  live: Map<string, Harvester>
}

/**
 * One `type: file` input: finds files by glob (chokidar events, plus a periodic re-scan because
 * file-system events can be missed), identifies each (identity.ts), and runs one harvester per
 * file, resuming at its checkpoint. Rotation by rename and delete-and-recreate show up as a new
 * identity at a known path while the old harvester drains its descriptor; in-place truncation
 * is the harvester's own business, unless it happened while the agent was away (see
 * recoverTruncated).
 */
export class FileInput {
  private watcher: FSWatcher | undefined
  private readonly paths = new Set<string>()
  /** Paths being identified right now, and those that changed meanwhile (looked at again after). */
  private readonly busy = new Set<string>()
  private readonly again = new Set<string>()
  private ready = false
  private stopping = false
  private scanTimer: NodeJS.Timeout | undefined
  private readonly retiring = new Set<Promise<void>>()

  constructor(private readonly opts: FileInputOptions) {}

  /** Resolves once the initial scan is done and every file then present has a harvester. */
  async start(): Promise<void> {
    const { input, log } = this.opts
    const watcher = chokidar.watch(input.paths, {
      ignored: input.exclude.length > 0 ? input.exclude : undefined,
      // chokidar 3.6 can leave an fs.watch handle open when close() lands while it is adding a
      // path (chokidar#1482); unpersistent, such a handle cannot keep a stopped agent's process
      // alive. While the input runs, its scan timer holds the process instead.
      persistent: false,
      ignoreInitial: false,
      followSymlinks: true,
      ignorePermissionErrors: true,
      awaitWriteFinish: false,
    })
    this.watcher = watcher
    const initial: Array<Promise<void>> = []
    watcher.on('add', (p: string) => {
      const path = resolve(p)
      this.paths.add(path)
      const d = this.discover(path)
      if (!this.ready) initial.push(d)
    })
    watcher.on('change', (p: string) => this.changed(resolve(p)))
    watcher.on('unlink', (p: string) => this.paths.delete(resolve(p)))
    watcher.on('error', (err: unknown) => log.warn({ err: (err as Error).message }, 'LW_INPUT_WATCH: file watcher error; the periodic scan continues'))
    await new Promise<void>((res) => watcher.once('ready', () => res()))
    await Promise.all(initial)
    this.ready = true
    this.scanTimer = setInterval(() => this.scan(), input.scan_interval)
  }

  /** Stops every harvester and waits until they have closed their files. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.scanTimer) clearInterval(this.scanTimer)
    await this.watcher?.close()
    const mine = [...this.opts.live.values()].filter((h) => h.input === this.opts.input)
    for (const h of mine) h.stop()
    await Promise.all(mine.map((h) => h.done))
  }

  /** Writes every live harvester's committed offset into the registry (the checkpoint is saved from it). */
  snapshot(now: number): void {
    for (const h of this.opts.live.values()) {
      if (h.input !== this.opts.input) continue
      this.opts.registry.set(h.identity.id, checkpointOf(h, now, true))
    }
  }

  private changed(path: string): void {
    for (const h of this.opts.live.values()) {
      if (h.path === path && !h.isFinished) { h.wake(); return }
    }
    void this.discover(path)
  }

  /** The periodic scan: any matched path without a running harvester is looked at again. */
  private scan(): void {
    const running = new Set<string>()
    for (const h of this.opts.live.values()) if (!h.isFinished) running.add(h.path)
    for (const path of this.paths) if (!running.has(path)) void this.discover(path)
  }

  private async discover(path: string): Promise<void> {
    if (this.stopping) return
    if (this.busy.has(path)) { this.again.add(path); return }
    this.busy.add(path)
    try {
      await this.identifyAndHarvest(path)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') this.opts.log.warn({ path, err: (err as Error).message }, 'LW_INPUT_OPEN: cannot read the file; check its permissions (it is retried at the next scan)')
    } finally {
      this.busy.delete(path)
      if (this.again.delete(path)) void this.discover(path)
    }
  }

  private async identifyAndHarvest(path: string): Promise<void> {
    const { input, registry, live, log } = this.opts
    const fh = await open(path, 'r')
    let identity: FileIdentity | null
    let size: number
    try {
      const st = await fh.stat()
      if (!st.isFile()) return
      size = st.size
      identity = await identify(fh, st, Buffer.allocUnsafe(HEAD_BYTES))
    } finally {
      await fh.close()
    }
    // No complete first line yet: nothing to ship; the next change brings it back here.
    if (!identity) return

    const running = live.get(identity.id)
    if (running) {
      if (!running.isFinished) {
        // The same file under a new name (renamed within the glob): follow the name.
        if (running.path !== path && !this.paths.has(running.path)) running.path = path
        running.wake()
        return
      }
      // Its previous harvester is still waiting for acknowledgements: resume after it.
      await this.retired(running)
      if (this.stopping) return
    }

    const cp = registry.get(identity.id)
    if (cp && size === cp.offset) {
      // Known and fully read (a re-scan of a quiet file): note that it is still there, open nothing.
      registry.set(identity.id, { ...cp, path, seen: Date.now() })
      return
    }
    let offset: number
    let rulesFrom: number | undefined
    let generation = cp?.generation ?? 0
    if (cp) {
      offset = cp.offset
      rulesFrom = cp.rules_offset
      if (size < offset) {
        log.info({ path, size, offset }, 'file was truncated while the agent was away; reading it from the start')
        // Its first line is the same as before: first the old generation's unread rest, from the
        // copy if there is one (the checkpoint describes one generation of a file at a time).
        const rest = this.fromCopy(path, cp)
        if (rest !== undefined) {
          await this.harvest(rest)
          if (this.stopping) return
        }
        offset = 0
        rulesFrom = undefined
        generation++
      }
    } else {
      this.recoverTruncated(path, identity)
      offset = !this.ready && input.start_position === 'end' ? await lastLineStart(path, size) : 0
    }

    void this.harvest(new Harvester({
      path, identity, generation, startOffset: offset, rulesFrom, input,
      consumer: this.opts.consumer, slots: this.opts.slots, log, oneShot: false,
      onMoved: (p) => { if (this.paths.has(p)) void this.discover(p) },
    }))
  }

  /** Runs `h` until it is done and everything it read is acknowledged (the promise). */
  private harvest(h: Harvester): Promise<void> {
    this.opts.live.set(h.identity.id, h)
    const retiring = this.retire(h)
    this.retiring.add(retiring)
    void retiring.finally(() => this.retiring.delete(retiring))
    return retiring
  }

  /**
   * A new identity at a path where the checkpoint knows another that was being read when the
   * agent stopped: while it was away, the file was emptied and written anew (copytruncate) or
   * replaced by a new one (rename rotation). What it had not read of the old content is in the
   * copy, or in the old file under its new name, if one beside it holds the last bytes it read: a
   * harvester of the old identity reads just that.
   */
  private recoverTruncated(path: string, identity: FileIdentity): void {
    const { registry, live } = this.opts
    for (const cp of registry.values()) {
      if (cp.path !== path || cp.id === identity.id || live.has(cp.id)) continue
      const rest = this.fromCopy(path, cp)
      if (rest !== undefined) void this.harvest(rest)
    }
  }

  /** A harvester that reads the unread rest of the file `cp` describes from its copy; undefined when the checkpoint kept no last bytes. */
  private fromCopy(path: string, cp: FileCheckpoint): Harvester | undefined {
    if (cp.head === undefined || cp.tail === undefined || cp.tail_end === undefined) return undefined
    return new Harvester({
      path, identity: { id: cp.id, dev: cp.dev, ino: cp.ino, head: cp.head }, generation: cp.generation,
      startOffset: cp.offset, rulesFrom: cp.rules_offset, input: this.opts.input, consumer: this.opts.consumer, slots: this.opts.slots,
      log: this.opts.log, oneShot: false, fromCopy: { tail: Buffer.from(cp.tail, 'base64'), end: cp.tail_end },
    })
  }

  /**
   * After a harvester closes its file, its last entries may still be on their way to
   * Elasticsearch. It stays in `live` (so nobody re-reads the same bytes) until they are
   * acknowledged; then its final offset goes to the registry.
   */
  private async retire(h: Harvester): Promise<void> {
    await h.done
    while (h.tracker.outstanding > 0 && !this.stopping) await sleep(50)
    if (this.stopping) return
    let st: Stats | undefined
    try {
      st = await stat(h.path)
    } catch { /* gone */ }
    const here = st !== undefined && st.ino === h.identity.ino && st.dev === h.identity.dev
    // Only a file still at its path (closed while quiet) may need its last bytes to recover from a
    // copy later; one that moved away or vanished was read to its end, and a recovery is over
    // once it ran: their entries point nobody at a copy.
    this.opts.registry.set(h.identity.id, checkpointOf(h, Date.now(), here && !h.fromCopy))
    this.opts.consumer.detach(h)
    if (this.opts.live.get(h.identity.id) === h) this.opts.live.delete(h.identity.id)
    // Written to while it was closing? Pick it up again.
    if (here && st!.size > h.committedOffset()) void this.discover(h.path)
  }

  private async retired(h: Harvester): Promise<void> {
    while (this.opts.live.get(h.identity.id) === h && !this.stopping) await sleep(50)
  }
}

/** A harvester's registry entry; with `tail`, the last bytes it read (see recoverTruncated). */
function checkpointOf(h: Harvester, seen: number, tail: boolean): FileCheckpoint {
  const cp: FileCheckpoint = {
    id: h.identity.id, generation: h.generation, path: h.path, dev: h.identity.dev, ino: h.identity.ino,
    offset: h.committedOffset(), rules_offset: Math.max(h.rulesPos, h.committedOffset()), seen, head: h.identity.head,
  }
  const last = tail ? h.tail : undefined
  if (last !== undefined) {
    cp.tail = last.tail.toString('base64')
    cp.tail_end = last.end
  }
  return cp
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
