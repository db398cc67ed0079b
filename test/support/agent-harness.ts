/**
 * Runs the real agent against the real Elasticsearch for end-to-end tests: a config built in
 * code (the YAML loader has its own tests), log writers, and queries that check what arrived.
 */
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { AgentConfig, FileInputConfig } from '../../agent/config/types'
import { Agent } from '../../agent/agent'
import type { Test } from 'tap'
import { allDocs, dropEs, esUrl, refreshAndCount } from './elasticsearch'
import { createLogger } from '../../agent/logger'

export interface Scenario {
  dir: string
  logs: string
  stateDir: string
  /** The configured index: daily indices, because this Elasticsearch distribution cannot delete data streams. */
  indexConfig: string
  /** The pattern that finds them all, for queries and clean-up. */
  index: string
  template: string
}

/** A fresh directory and index names no other test uses. */
export function scenario(name: string): Scenario {
  const dir = mkdtempSync(join(tmpdir(), `lw-${name}-`))
  const tag = `${name.toLowerCase().replace(/[^a-z0-9]/g, '')}-${randomBytes(3).toString('hex')}`
  return {
    dir, logs: join(dir, 'logs'), stateDir: join(dir, 'state'),
    indexConfig: `lwtest-${tag}-%{+yyyy.MM.dd}`, index: `lwtest-${tag}-*`, template: `lwtest-${tag}`,
  }
}

export function fileInput(paths: string[], over: Partial<FileInputConfig> = {}): FileInputConfig {
  return {
    type: 'file', paths, exclude: [], format: 'auto', start_position: 'beginning', timezone: 'UTC',
    max_line_bytes: 1024 * 1024, fields: {}, scan_interval: 300, close_inactive: 60_000, ...over,
  }
}

export function agentConfig(s: Scenario, esUrl: string, inputs: FileInputConfig[], over: Partial<AgentConfig['elasticsearch']> = {}): AgentConfig {
  return {
    source: join(s.dir, 'config.yaml'),
    service: { name: 'testapp', environment: 'test' },
    state_dir: s.stateDir,
    inputs,
    elasticsearch: {
      hosts: [esUrl], tls_verify: true, index: s.indexConfig, data_stream: false,
      batch_max_docs: 500, batch_max_bytes: 1024 * 1024, batch_interval: 100, concurrency: 2,
      compression: true, request_timeout: 10_000, retry_initial: 100, retry_max: 1000,
      template_name: s.template, number_of_shards: 1, number_of_replicas: 0, setup_on_start: true,
      dead_letter_index: `${s.template}-deadletter`, ...over,
    },
    limits: { memory_buffer: 8 * 1024 * 1024, max_open_files: 64 },
    checkpoint_interval: 200,
    shutdown_timeout: 10_000,
    log: { level: 'warn' },
    rules: { builtin: false, paths: [] },
    routes: {},
    alerts: { index: `${s.template}-alerts`, edit_window: 3_600_000, edit_budget: 20, per_rule_per_minute: 20 },
  }
}

export async function startAgent(cfg: AgentConfig): Promise<Agent> {
  const agent = new Agent(cfg, createLogger(process.env.LW_TEST_LOG ?? 'warn'))
  await agent.start()
  return agent
}

/** Appends `count` numbered lines `${prefix} N` (N from `from`) as pino-shaped JSON or plain text. */
export function writeLines(file: string, prefix: string, from: number, count: number, json = true): void {
  let out = ''
  for (let i = from; i < from + count; i++) {
    out += json
      ? `{"level":30,"time":${1700000000000 + i},"pid":1,"hostname":"h","msg":"${prefix} ${i}"}\n`
      : `${prefix} ${i}\n`
  }
  appendFileSync(file, out)
}

export function expectedMessages(prefix: string, from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${from + i}`)
}

export async function countDocs(esUrl: string, index: string): Promise<number> {
  try {
    return await refreshAndCount(esUrl, index)
  } catch {
    return 0 // not created yet
  }
}

/** Every document's `msg` (pino) or `message` field, sorted. */
export async function allMessages(esUrl: string, index: string): Promise<string[]> {
  const hits = await allDocs<{ msg?: string; message?: string }>(esUrl, index)
  return hits.map((h) => h._source.msg ?? h._source.message ?? '').sort()
}

/** Polls until the index holds at least `n` documents (or the wait runs out), then returns the count. */
export async function waitForCount(esUrl: string, index: string, n: number, waitMs = 60_000): Promise<number> {
  const until = Date.now() + waitMs
  let c = 0
  while (Date.now() < until) {
    c = await countDocs(esUrl, index)
    if (c >= n) return c
    await sleep(250)
  }
  return c
}

export async function dropScenario(esUrl: string, s: Scenario): Promise<void> {
  await dropEs(esUrl, `${s.index},${s.template}-deadletter*`, [s.template, `${s.template}-deadletter`]).catch(() => undefined)
}

/**
 * The start of a test against the real Elasticsearch: its URL (undefined, and the test skipped,
 * when there is none), a fresh scenario with its logs directory made, and the scenario's indices
 * dropped when the test ends.
 */
export function esScenario(t: Test, name: string): { url: string; s: Scenario } | undefined {
  const url = esUrl(t)
  if (!url) return undefined
  const s = scenario(name)
  mkdirSync(s.logs, { recursive: true })
  t.teardown(() => dropScenario(url, s))
  return { url, s }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Sorted copy, and the duplicates within it. */
export function duplicatesIn(values: string[]): string[] {
  const seen = new Set<string>()
  const dups: string[] = []
  for (const v of values) {
    if (seen.has(v)) dups.push(v)
    seen.add(v)
  }
  return dups
}
