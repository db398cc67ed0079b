import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Client } from '@elastic/elasticsearch'
import type { AgentConfig } from './config/types'
import type { Entry } from './entry'
import type { LwError } from './errors'
import type { Logger } from './logger'
import type { EntryEvaluator } from './pipeline'
import { AlertPipeline } from '../rules/alerts/pipeline'
import type { CompiledRule } from '../rules/compiled'
import { disableRules } from '../rules/disable'
import { RuleEngine } from '../rules/engine'
import { RuleWatcher, type ReloadResult } from '../rules/reload'
import type { AlertEvent, Notifier, Rule } from '../rules/model'
import { RuleIndex } from '../rules/rule-index'
import { ConsoleNotifier } from '../transports/console/notifier'
import { AlertsIndex } from '../transports/elasticsearch/alerts-index'
import type { TelegramNotifier, TelegramRoute } from '../transports/telegram/notifier'

/** The built-in packs: rules/packs/ beside agent/ (sources) or two levels up (dist/agent/). */
export function packsDir(): string {
  for (const rel of ['../rules/packs', '../../rules/packs']) {
    const dir = join(__dirname, rel)
    if (existsSync(dir)) return dir
  }
  return join(__dirname, '../rules/packs')
}

/** The rule files the configuration asks for: the chosen built-in packs, then the user's paths. */
export function rulePaths(cfg: AgentConfig): string[] {
  const dir = packsDir()
  const packs: string[] = []
  if (cfg.rules.builtin === true) {
    if (existsSync(dir)) packs.push(dir)
  } else if (Array.isArray(cfg.rules.builtin)) {
    for (const name of cfg.rules.builtin) packs.push(join(dir, `${name}.yaml`))
  }
  return [...packs, ...cfg.rules.paths]
}

/** The names of the built-in packs, for messages. */
export function packNames(): string[] {
  const dir = packsDir()
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml')).map((f) => f.slice(0, -5)).sort()
}

/**
 * The notifiers per route: Telegram for routes with chats when a bot token is configured, the
 * console otherwise — so the bundled example shows its alerts on a machine without Telegram.
 */
export function buildNotifiers(cfg: AgentConfig, log: Logger): { notifiers: Record<string, Notifier[]>; telegram?: TelegramNotifier } {
  const routes: Record<string, TelegramRoute> = {}
  const names = new Set(['default', ...Object.keys(cfg.routes)])
  for (const name of names) {
    const r = cfg.routes[name]
    routes[name] = { chats: r?.chats ?? [], language: r?.language ?? 'en', timezone: r?.timezone ?? 'UTC', ...(r?.silent_below ? { silent_below: r.silent_below } : {}) }
  }
  // Loaded only when configured: telegraf weighs about 15 MB of memory an agent without it never needs.
  const telegram = cfg.telegram
    ? new (require('../transports/telegram/notifier') as typeof import('../transports/telegram/notifier')).TelegramNotifier({
        token: cfg.telegram.bot_token, apiRoot: cfg.telegram.api_root, routes, logger: log,
        editWindowMs: cfg.alerts.edit_window, editBudget: cfg.alerts.edit_budget,
        ...(cfg.kibana ? { kibanaUrl: cfg.kibana.url } : {}),
      })
    : undefined
  const notifiers: Record<string, Notifier[]> = {}
  for (const name of names) {
    const route = routes[name]!
    notifiers[name] = telegram && route.chats.length > 0
      ? [telegram]
      : [new ConsoleNotifier({ language: route.language, timezone: route.timezone, ...(cfg.kibana ? { kibanaUrl: cfg.kibana.url } : {}) })]
  }
  return { notifiers, ...(telegram ? { telegram } : {}) }
}

/**
 * The alerting side of the agent: rules evaluated on every entry as it is read (never by
 * querying Elasticsearch), their events through dedup, grouping and throttling to the outbox and
 * the notifiers, and every alert recorded in the alerts index. Its state (windows, counters,
 * seen-sets, outbox) goes into the checkpoint with the file offsets, so a restart neither re-sends
 * nor floods.
 */
export class Alerting implements EntryEvaluator {
  readonly engine: RuleEngine
  readonly pipeline: AlertPipeline
  readonly alertsIndex: AlertsIndex
  private rules = new Map<string, Rule>()
  private readonly watcher: RuleWatcher
  private timer: NodeJS.Timeout | undefined
  private readonly pending: AlertEvent[] = []

  constructor(private readonly cfg: AgentConfig, private readonly log: Logger, client: Client, deps: { clock?: () => number; notifiers?: Record<string, Notifier[]> } = {}) {
    const clock = deps.clock ?? Date.now
    this.engine = new RuleEngine([], {
      index: (rules) => new RuleIndex(rules),
      sourceFields: (entry) => entry.source,
    })
    this.alertsIndex = new AlertsIndex({ elasticsearch: cfg.elasticsearch, index: cfg.alerts.index, client, logger: log })
    this.pipeline = new AlertPipeline({
      rules: (id) => this.rules.get(id),
      notifiers: deps.notifiers ?? buildNotifiers(cfg, log).notifiers,
      clock,
      onDelivery: (report) => this.alertsIndex.write(report),
      limits: { per_rule_per_minute: cfg.alerts.per_rule_per_minute },
    })
    this.watcher = new RuleWatcher({ paths: rulePaths(cfg), onReload: (r) => this.onReload(r) })
  }

  get ruleCount(): number {
    return this.rules.size
  }

  /**
   * Loads the rule files and watches them: an edit is picked up at once. Problems are reported
   * with file:line:column; a reload with any problem keeps the last good rules running
   * (invariant 7). The first load takes whatever loaded.
   */
  async load(): Promise<LwError[]> {
    const result = await this.watcher.start()
    return result.problems
  }

  /** SIGHUP. */
  reload(): LwError[] {
    return this.watcher.reload().problems
  }

  private onReload(r: ReloadResult): void {
    for (const p of r.problems) this.log.error({ err: p.message }, `LW_RULES_INVALID: ${p.message}`)
    if (!r.applied) {
      this.log.warn({ problems: r.problems.length }, 'the rules were not reloaded: fix the problems above; the last good rules keep running')
      return
    }
    this.apply(r.rules)
    this.log.info({ rules: r.rules.length, files: r.files.length, reason: r.reason }, 'alert rules loaded')
  }

  private apply(loaded: CompiledRule[]): void {
    const { rules, unknown } = disableRules(loaded, this.cfg.rules.disable ?? [])
    for (const u of unknown) {
      this.log.warn({ id: u.id, ...(u.suggestion !== undefined ? { suggestion: u.suggestion } : {}) },
        `LW_RULE_DISABLE_UNKNOWN: rules.disable names "${u.id}", which no loaded rule has${u.suggestion !== undefined ? `; did you mean "${u.suggestion}"?` : '.'} Fix the id in the configuration; the other rules run as loaded`)
    }
    const known = new Set(['default', ...Object.keys(this.cfg.routes)])
    for (const r of rules) {
      if (!known.has(r.rule.route)) this.log.warn({ rule: r.rule.id, route: r.rule.route, source: r.rule.source }, 'LW_ALERT_ROUTE: the rule names a route that is not configured; add it under routes:')
    }
    this.engine.setRules(rules)
    this.rules = new Map(rules.map((r) => [r.rule.id, r.rule]))
  }

  evaluate(entry: Entry, now: number): void {
    const events = this.engine.evaluate(entry, now)
    if (events.length > 0) for (const e of events) this.pending.push(e)
    // Handed on in batches by the tick, so a burst of matches costs one pipeline call.
    if (this.pending.length >= 256) this.flushEvents()
  }

  private flushEvents(): void {
    if (this.pending.length === 0) return
    this.pipeline.push(this.pending.splice(0))
  }

  /** Drives windows, absence deadlines, group waits and retries: once a second. */
  start(): void {
    this.timer = setInterval(() => this.tick(Date.now()), 1000)
    this.timer.unref()
  }

  tick(now: number): void {
    this.flushEvents()
    const events = this.engine.tick(now)
    if (events.length > 0) this.pipeline.push([...events])
    this.pipeline.tick()
  }

  exportState(): { engine: unknown; alerts: unknown } {
    this.flushEvents()
    return { engine: this.engine.exportState(), alerts: this.pipeline.exportState() }
  }

  importState(state: unknown): void {
    if (state === undefined || state === null || typeof state !== 'object') return
    const s = state as { engine?: unknown; alerts?: unknown }
    try {
      if (s.engine !== undefined) this.engine.importState(s.engine)
      if (s.alerts !== undefined) this.pipeline.importState(s.alerts)
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'LW_CHECKPOINT_CORRUPT: the saved alert state cannot be read; alerting starts afresh (windows and dedup begin again)')
    }
  }

  /** Stops the clock, delivers what can be delivered before the deadline, and closes the alerts index. */
  async close(deadline: number): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await this.watcher.close()
    this.tick(Date.now())
    const wait = Math.max(0, deadline - Date.now())
    await Promise.race([this.pipeline.settled(), new Promise((r) => setTimeout(r, wait).unref())])
    await this.alertsIndex.close(deadline).catch(() => undefined)
  }
}
