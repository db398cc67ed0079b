import { open, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { AgentConfig, FileInputConfig } from './config/types'
import { Harvester } from './inputs/file/harvester'
import { HEAD_BYTES, identify, identityOf, type FileIdentity } from './inputs/file/identity'
import { Semaphore } from './inputs/file/semaphore'
import type { Logger } from './logger'
import { Pipeline } from './pipeline'
import { createClient } from '../transports/elasticsearch/client'
import { ElasticsearchSink } from '../transports/elasticsearch/sink'
import { setupTemplates } from '../transports/elasticsearch/template'

export interface ShipResult {
  files: number
  entries: number
  bytes: number
  created: number
  duplicates: number
  deadLettered: number
  parseErrors: number
  seconds: number
}

export interface ShipOptions {
  /** Called about five times a second with the bytes read so far and the total. */
  progress?(read: number, total: number, entries: number): void
}

/**
 * `logwarden ship FILE...`: a one-shot import of existing files. The document ids come from the
 * same file identity as `run`, so shipping a file twice, or shipping it and then tailing it,
 * never makes a duplicate. Resolves when every entry is acknowledged (or dead-lettered).
 */
export async function shipFiles(paths: string[], cfg: AgentConfig, input: FileInputConfig, log: Logger, opts: ShipOptions = {}): Promise<ShipResult> {
  const started = Date.now()
  const client = createClient(cfg.elasticsearch)
  let reachable = true
  const sink = new ElasticsearchSink(cfg.elasticsearch, {
    stateDir: cfg.state_dir, client, logger: log,
    events: {
      onAck: (docs) => pipeline.onAck(docs),
      onStatus: (s) => {
        if (!s.reachable && reachable) log.warn({ err: s.error }, 'LW_ES_UNREACHABLE: Elasticsearch does not answer; retrying until it does (Ctrl-C to give up)')
        reachable = s.reachable
      },
    },
  })
  const pipeline = new Pipeline(sink, { service: cfg.service, memoryLimit: cfg.limits.memory_buffer, log })
  try {
    if (cfg.elasticsearch.setup_on_start) await setupTemplates(client, cfg.elasticsearch)
    const files: Array<{ path: string; identity: FileIdentity; size: number }> = []
    for (const p of paths) {
      const path = resolve(p)
      const st = await stat(path)
      if (!st.isFile() || st.size === 0) continue
      files.push({ path, identity: await identifyWhole(path), size: st.size })
    }
    const total = files.reduce((n, f) => n + f.size, 0)
    const slots = new Semaphore(cfg.limits.max_open_files)
    const harvesters = files.map((f) => new Harvester({
      path: f.path, identity: f.identity, generation: 0, startOffset: 0, input,
      consumer: pipeline, slots, log, oneShot: true,
    }))
    const timer = opts.progress
      ? setInterval(() => opts.progress!(harvesters.reduce((n, h) => n + h.position, 0), total, pipeline.counts.entries), 200)
      : undefined
    try {
      await Promise.all(harvesters.map((h) => h.done))
      await sink.flush()
      opts.progress?.(total, total, pipeline.counts.entries)
    } finally {
      if (timer) clearInterval(timer)
    }
    const stats = sink.stats()
    return {
      files: files.length, entries: pipeline.counts.entries, bytes: total,
      created: stats.created, duplicates: stats.duplicates, deadLettered: stats.deadLettered,
      parseErrors: pipeline.counts.parseErrors, seconds: (Date.now() - started) / 1000,
    }
  } finally {
    await sink.close(Date.now())
    await client.close().catch(() => undefined)
  }
}

/** A finished file may be shorter than HEAD_BYTES and lack a final newline: fingerprint what there is. */
async function identifyWhole(path: string): Promise<FileIdentity> {
  const fh = await open(path, 'r')
  try {
    const st = await fh.stat()
    const head = Buffer.allocUnsafe(HEAD_BYTES)
    const id = await identify(fh, st, head)
    if (id) return id
    const { bytesRead } = await fh.read(head, 0, HEAD_BYTES, 0)
    return identityOf(st, head.subarray(0, bytesRead))
  } finally {
    await fh.close()
  }
}
