import type { Client } from '@elastic/elasticsearch'
import { acquireStateLock, CheckpointStore, type CheckpointData, type FileCheckpoint } from './checkpoint/store'
import type { AgentConfig } from './config/types'
import { FileInput } from './inputs/file/input'
import type { Harvester } from './inputs/file/harvester'
import { Semaphore } from './inputs/file/semaphore'
import type { Logger } from './logger'
import { Pipeline } from './pipeline'
import type { Alerting } from './alerting'
import { createClient } from '../transports/elasticsearch/client'
import { ElasticsearchSink } from '../transports/elasticsearch/sink'
import { setupTemplates } from '../transports/elasticsearch/template'

/** Checkpoint entries of files not seen for this long are forgotten (rotated-away files). */
const FORGET_AFTER_MS = 7 * 24 * 3600 * 1000

/**
 * The daemon: inputs → pipeline → Elasticsearch sink, with offsets checkpointed only as far as
 * Elasticsearch has acknowledged. `start()` returns once every input has done its first scan;
 * `stop()` is the graceful shutdown (stop reading, flush, persist).
 */
export class Agent {
  readonly pipeline: Pipeline
  readonly sink: ElasticsearchSink
  /** Present when any rules are configured (built-in packs or the user's). */
  readonly alerting: Alerting | undefined
  private markReady: (() => void) | undefined
  private readonly client: Client
  private readonly store: CheckpointStore
  private readonly registry = new Map<string, FileCheckpoint>()
  private readonly live = new Map<string, Harvester>()
  private readonly inputs: FileInput[] = []
  private checkpointTimer: NodeJS.Timeout | undefined
  private sections: CheckpointData['sections'] = {}
  private releaseLock: (() => void) | undefined
  private stopped: Promise<boolean> | undefined
  private stopping = false

  constructor(private readonly cfg: AgentConfig, private readonly log: Logger) {
    this.store = new CheckpointStore(cfg.state_dir)
    this.client = createClient(cfg.elasticsearch)
    let reachable = true
    // Documents must not reach a data stream before its template exists (it would become a plain
    // index with guessed mappings): the sink sends nothing until setup has succeeded, while
    // reading — and so alerting — goes on.
    const ready = cfg.elasticsearch.setup_on_start ? new Promise<void>((r) => { this.markReady = r }) : undefined
    this.sink = new ElasticsearchSink(cfg.elasticsearch, {
      stateDir: cfg.state_dir,
      client: this.client,
      logger: log,
      ...(ready ? { ready } : {}),
      events: {
        onAck: (docs) => this.pipeline.onAck(docs),
        onStatus: (s) => {
          // Edge-triggered, so an outage is reported once, not once per retry.
          if (!s.reachable && reachable) log.warn({ hosts: cfg.elasticsearch.hosts, err: s.error }, 'LW_ES_UNREACHABLE: Elasticsearch does not answer; entries are kept and retried, reading waits when the buffer is full')
          if (s.reachable && !reachable) log.info({ hosts: cfg.elasticsearch.hosts }, 'Elasticsearch answers again; shipping resumes')
          reachable = s.reachable
        },
      },
    })
    const rulesWanted = cfg.rules.builtin !== false || cfg.rules.paths.length > 0
    // Loaded only with rules to run: the rules engine and its parsers are a twentieth of a second of every start.
    this.alerting = rulesWanted ? new (require('./alerting') as typeof import('./alerting')).Alerting(cfg, log, this.client) : undefined
    this.pipeline = new Pipeline(this.sink, {
      service: cfg.service, memoryLimit: cfg.limits.memory_buffer, log,
      ...(this.alerting ? { rules: this.alerting } : {}),
    })
  }

  async start(): Promise<void> {
    this.releaseLock = acquireStateLock(this.cfg.state_dir)
    const data = this.store.load()
    for (const [id, cp] of Object.entries(data.files)) this.registry.set(id, cp)
    this.sections = data.sections
    if (this.alerting) {
      await this.alerting.load()
      this.alerting.importState(this.sections['alerting'])
      this.alerting.start()
    }
    if (this.cfg.elasticsearch.setup_on_start) void this.setupUntilDone().then(() => this.markReady?.())
    const slots = new Semaphore(this.cfg.limits.max_open_files)
    for (const input of this.cfg.inputs) {
      const fi = new FileInput({ input, consumer: this.pipeline, slots, log: this.log, registry: this.registry, live: this.live })
      this.inputs.push(fi)
    }
    await Promise.all(this.inputs.map((i) => i.start()))
    this.checkpointTimer = setInterval(() => this.saveCheckpoint(), this.cfg.checkpoint_interval)
    this.checkpointTimer.unref()
    this.log.info({ inputs: this.cfg.inputs.length, files: this.live.size, state_dir: this.cfg.state_dir, gzip: this.sink.gzip }, 'logwarden is running')
  }

  /**
   * Graceful shutdown within `shutdown_timeout`: stop reading, give in-flight documents until the
   * deadline, then persist the offsets (which cover only what was acknowledged). Returns whether
   * everything read was acknowledged.
   */
  stop(): Promise<boolean> {
    this.stopping = true
    this.stopped ??= (async () => {
      const deadline = Date.now() + this.cfg.shutdown_timeout
      if (this.checkpointTimer) clearInterval(this.checkpointTimer)
      await Promise.all(this.inputs.map((i) => i.stop()))
      const clean = await this.sink.close(deadline)
      await this.alerting?.close(deadline)
      this.saveCheckpoint()
      await this.client.close().catch(() => undefined)
      this.releaseLock?.()
      return clean
    })()
    return this.stopped
  }

  /** Sections other components (alert state) keep in the checkpoint. */
  setSection(name: string, value: unknown): void {
    this.sections[name] = value
  }

  /** SIGHUP: reload the rule files (an invalid edit keeps the last good rules). */
  reloadRules(): void {
    this.alerting?.reload()
  }

  saveCheckpoint(): void {
    const now = Date.now()
    // The alert state is taken at the same moment as the offsets and written in the same file.
    if (this.alerting) this.sections['alerting'] = this.alerting.exportState()
    for (const input of this.inputs) input.snapshot(now)
    for (const [id, cp] of this.registry) {
      if (now - cp.seen > FORGET_AFTER_MS && !this.live.has(id)) this.registry.delete(id)
    }
    try {
      this.store.save({ version: 1, files: Object.fromEntries(this.registry), sections: this.sections })
    } catch (err) {
      this.log.error({ file: this.store.file, err: (err as Error).message }, 'LW_CHECKPOINT_WRITE: cannot write the checkpoint; offsets are kept in memory and written at the next tick (check disk space and permissions)')
    }
  }

  private async setupUntilDone(): Promise<void> {
    let delay = 500
    let said = false
    while (!this.stopping) {
      try {
        await setupTemplates(this.client, this.cfg.elasticsearch)
        if (said) this.log.info('Elasticsearch answers; index templates are installed')
        return
      } catch (err) {
        const status = (err as { meta?: { statusCode?: number } }).meta?.statusCode
        if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
          this.log.error({ status, err: (err as Error).message }, 'LW_ES_SETUP: Elasticsearch refused the index template; shipping goes on without it (grant the manage_index_templates privilege or run `logwarden setup` as an admin)')
          return
        }
        if (!said) {
          this.log.warn({ hosts: this.cfg.elasticsearch.hosts, err: (err as Error).message }, 'LW_ES_UNREACHABLE: Elasticsearch does not answer; retrying. Entries are kept (nothing is lost) and alert rules keep running meanwhile')
          said = true
        }
        await new Promise((r) => setTimeout(r, delay))
        delay = Math.min(delay * 2, this.cfg.elasticsearch.retry_max)
      }
    }
  }
}
