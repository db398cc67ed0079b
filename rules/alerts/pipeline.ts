/**
 * The alert pipeline: what the rules emit (AlertEvent) becomes messages (Notification) that the
 * notifiers deliver.
 *
 *   event ─► seen before? (replay after a restart: ignored)
 *         ─► group (group_wait, then updates at most every group_interval; group.ts)
 *         ─► dedup window per fingerprint: a new message, or an update that edits the window's
 *            message (realert, growing by realert_backoff up to realert_max; dedup.ts)
 *         ─► per-rule cap per minute, overflow folded into counts (throttle.ts)
 *         ─► outbox, one record per notifier of the rule's route (outbox.ts) ─► notifier
 *
 * Time comes only from the injected clock; `tick()` (every second in the agent, on a virtual
 * clock in tests and in `rules test`) sends what is due, and `push` sends at once what needs no
 * waiting. All state — seen event ids, groups, windows, throttle, outbox and the ids of messages
 * that may still be edited — is bounded and comes out of `exportState()` as plain JSON; the
 * agent checkpoints it with the file offsets, so a restart in the middle of a window does not
 * send again, and what piled up during a notifier outage is delivered afterwards, once.
 *
 * Options (`limits`, all optional; the agent's `alerts:` configuration maps onto them):
 *   per_rule_per_minute    notifications per rule per minute (default 20; 0 = no cap)
 *   max_waiting_per_rule   notifications waiting for the cap per rule before folding (100)
 *   recent_event_ids       event ids remembered to recognise replays (10,000)
 *   max_fingerprints       dedup windows kept (10,000)
 *   max_groups             groups kept (1,000; past it events fold into "more like this")
 *   max_pending_per_route  outbox records per route and notifier before merging (1,000)
 *   max_messages           delivered messages remembered for edits (10,000)
 *   concurrency            attempts in flight per route and notifier (1: keeps chat order)
 *   retry_initial, retry_max   backoff after a retryable failure (1s, 5m)
 *   send_timeout           an attempt with no answer counts as failed after this (60s)
 */
import { LwError } from '../../agent/errors'
import type { AlertEvent, DeliveryResult, Millis, Notification, Notifier, Rule } from '../model'
import { DedupWindows, RecentIds, type DedupWindowState } from './dedup'
import { Grouper, type Batch, type GroupState } from './group'
import { Outbox, type DeliveryReport, type DeliveryState, type Dispatch, type Outgoing, type OutboxState } from './outbox'
import { RuleThrottle, type ThrottleState } from './throttle'

/** Rules by id: a map, or a function (so that a rule reload is seen at once). */
export type RuleLookup = ReadonlyMap<string, Rule> | ((ruleId: string) => Rule | undefined)

export interface AlertLimits {
  per_rule_per_minute: number
  max_waiting_per_rule: number
  recent_event_ids: number
  max_fingerprints: number
  max_groups: number
  max_pending_per_route: number
  max_messages: number
  concurrency: number
  retry_initial: Millis
  retry_max: Millis
  send_timeout: Millis
}

export const DEFAULT_ALERT_LIMITS: Readonly<AlertLimits> = Object.freeze({
  per_rule_per_minute: 20,
  max_waiting_per_rule: 100,
  recent_event_ids: 10_000,
  max_fingerprints: 10_000,
  max_groups: 1_000,
  max_pending_per_route: 1_000,
  max_messages: 10_000,
  concurrency: 1,
  retry_initial: 1_000,
  retry_max: 5 * 60_000,
  send_timeout: 60_000
})

export interface AlertPipelineOptions {
  rules: RuleLookup
  /** Notifiers per route name; names must be unique within a route. */
  notifiers: Record<string, Notifier[]>
  clock: () => Millis
  /** Every change of a notification's delivery (queued, delivered, failed, blocked, merged): for the alerts index. */
  onDelivery?(report: DeliveryReport): void
  limits?: Partial<AlertLimits>
  /** For the retry backoff's jitter. */
  random?: () => number
}

/** The pipeline's state, as saved in the checkpoint. */
export interface AlertPipelineState {
  version: 1
  seen: string[]
  groups: GroupState[]
  windows: DedupWindowState[]
  throttle: ThrottleState
  outbox: OutboxState
}

/** One outbox record, for `logwarden status` and the admin API. */
export interface DeliveryView {
  key: string
  route: string
  notifier: string
  notificationId: string
  ruleId: string
  fingerprint: string
  severity: Notification['severity']
  alertState: Notification['state']
  state: DeliveryState
  attempts: number
  error?: string
  nextAttemptAt?: Millis
  queuedAt: Millis
  total: number
  more: number
}

export interface AlertCounters {
  /** Events pushed. */
  events: number
  /** Events ignored because their id was seen before. */
  replays: number
  /** Events (or groups) dropped because their rule no longer exists. */
  unknownRule: number
  /** Resolved events dropped: the rule does not send them, or nothing was sent for the fingerprint. */
  resolvedIgnored: number
  /** Notifications stored in the outbox (once per route, not per notifier). */
  notifications: number
  delivered: number
  failed: number
  blocked: number
  /** Outbox records merged into others at the bound. */
  merged: number
}

export interface AlertPipelineStatus {
  /** Waiting to be sent, or being sent. */
  pending: DeliveryView[]
  /** Failed, to be retried (the error says why). */
  failed: DeliveryView[]
  /** Will not be retried until the configuration changes (the error says what to do). */
  blocked: DeliveryView[]
  /** Notifications waiting for their rule's cap. */
  throttled: number
  /** Groups open (waiting group_wait or holding group_interval). */
  groups: number
  /** Fingerprints with a dedup window. */
  windows: number
  /** Events folded into other messages at a bound (groups, throttle). */
  folded: number
  counters: AlertCounters
}

/** The lane of notifications for a route that has no notifiers. */
const NO_NOTIFIER = '-'

export class AlertPipeline {
  private rulesOf: (ruleId: string) => Rule | undefined
  private notifiers: Record<string, Notifier[]>
  private readonly clock: () => Millis
  private readonly onDelivery: ((report: DeliveryReport) => void) | undefined
  private readonly seen: RecentIds
  private readonly groups: Grouper
  private readonly dedup: DedupWindows
  private readonly throttle: RuleThrottle
  private readonly outbox: Outbox
  private readonly sending = new Set<Promise<void>>()
  private readonly counters: AlertCounters = { events: 0, replays: 0, unknownRule: 0, resolvedIgnored: 0, notifications: 0, delivered: 0, failed: 0, blocked: 0, merged: 0 }

  constructor(opts: AlertPipelineOptions) {
    const limits: AlertLimits = { ...DEFAULT_ALERT_LIMITS, ...opts.limits }
    this.rulesOf = lookupOf(opts.rules)
    this.notifiers = checkNotifiers(opts.notifiers)
    this.clock = opts.clock
    this.onDelivery = opts.onDelivery
    this.seen = new RecentIds(limits.recent_event_ids)
    this.groups = new Grouper({ maxGroups: limits.max_groups })
    this.dedup = new DedupWindows({ maxFingerprints: limits.max_fingerprints })
    this.throttle = new RuleThrottle({ perMinute: limits.per_rule_per_minute, maxHeldPerRule: limits.max_waiting_per_rule })
    this.outbox = new Outbox({
      maxPerLane: limits.max_pending_per_route, concurrency: limits.concurrency, retryInitial: limits.retry_initial,
      retryMax: limits.retry_max, sendTimeout: limits.send_timeout, maxMessages: limits.max_messages, random: opts.random
    }, (r) => this.reported(r))
  }

  /** Takes the rules' events; sends at once what needs no waiting. */
  push(events: readonly AlertEvent[]): void {
    const now = this.clock()
    for (const event of events) {
      this.counters.events++
      if (!this.seen.add(event.id)) {
        this.counters.replays++
        continue
      }
      const rule = this.rulesOf(event.ruleId)
      if (rule === undefined) {
        this.counters.unknownRule++
        continue
      }
      if (event.state === 'resolved') this.resolve(event, rule, now)
      else this.groups.add(event, now, rule)
    }
    this.step(now)
  }

  /** Sends what became due: groups, throttled notifications, retries; gives up on hung attempts. */
  tick(): void {
    this.step(this.clock())
  }

  /** Resolves once no attempt is in flight (attempts started meanwhile included). */
  async settled(): Promise<void> {
    while (this.sending.size > 0) await Promise.all([...this.sending])
  }

  /**
   * New rules or notifiers (a reload): blocked notifications are tried again, and those kept
   * for a route that had no notifiers go to the route's notifiers now.
   */
  reconfigure(opts: { rules?: RuleLookup; notifiers?: Record<string, Notifier[]> }): void {
    if (opts.rules !== undefined) this.rulesOf = lookupOf(opts.rules)
    if (opts.notifiers !== undefined) this.notifiers = checkNotifiers(opts.notifiers)
    const now = this.clock()
    this.adoptRouteless(now)
    this.outbox.unblock()
    this.step(now)
  }

  status(): AlertPipelineStatus {
    const pending: DeliveryView[] = []
    const failed: DeliveryView[] = []
    const blocked: DeliveryView[] = []
    for (const r of this.outbox.records()) {
      const view: DeliveryView = {
        key: r.key, route: r.route, notifier: r.notifier, notificationId: r.notification.id, ruleId: r.notification.ruleId,
        fingerprint: r.notification.fingerprint, severity: r.notification.severity, alertState: r.notification.state,
        state: r.state, attempts: r.attempts, queuedAt: r.queuedAt, total: r.notification.total, more: r.notification.more
      }
      if (r.error !== undefined) view.error = r.error
      if (r.nextAttemptAt !== undefined && r.state === 'failed') view.nextAttemptAt = r.nextAttemptAt
      if (r.state === 'failed') failed.push(view)
      else if (r.state === 'blocked') blocked.push(view)
      else pending.push(view)
    }
    return {
      pending, failed, blocked, throttled: this.throttle.waiting, groups: this.groups.size, windows: this.dedup.size,
      folded: this.groups.folded + this.throttle.folded, counters: { ...this.counters }
    }
  }

  exportState(): AlertPipelineState {
    return {
      version: 1,
      seen: this.seen.exportState(),
      groups: this.groups.exportState(),
      windows: this.dedup.exportState(),
      throttle: this.throttle.exportState(),
      outbox: this.outbox.exportState()
    }
  }

  /** Restores a saved state (at start, before the first push). */
  importState(state: unknown): void {
    if (!isState(state)) {
      throw new LwError('LW_CHECKPOINT_CORRUPT', 'the alert state in the checkpoint is not one this version of logwarden wrote',
        'Remove the `alerts` part of the checkpoint to start with empty alert state (alerts already sent may be sent again).')
    }
    const now = this.clock()
    this.seen.importState(state.seen)
    this.groups.importState(state.groups)
    this.dedup.importState(state.windows)
    this.throttle.importState(state.throttle)
    this.outbox.importState(state.outbox, now)
    this.adoptRouteless(now)
  }

  private step(now: Millis): void {
    for (const batch of this.groups.due(now, this.rulesOf)) this.emit(batch, now)
    for (const out of this.throttle.release(now)) this.enqueue(out, now)
    this.dedup.prune(now)
    for (const id of this.dedup.drainForgotten()) this.outbox.forget(id)
    this.outbox.expire(now)
    this.dispatch(now)
  }

  /** A group's batch becomes a notification: a new message or an update of its window's. */
  private emit(batch: Batch, now: Millis): void {
    const rule = this.rulesOf(batch.ruleId)
    if (rule === undefined) {
      this.counters.unknownRule += 1 + batch.more
      return
    }
    const first = batch.first
    const verdict = this.dedup.decide(
      { fingerprint: first.fingerprint, notificationId: first.id, more: batch.more, total: batch.total, firstAt: batch.firstAt }, now, rule)
    const notification: Notification = {
      id: verdict.notificationId, route: rule.route, ruleId: rule.id, ruleName: rule.name, severity: first.severity, state: 'firing',
      fingerprint: first.fingerprint, event: first, more: verdict.more, total: verdict.total, firstAt: verdict.firstAt,
      lastAt: Math.max(batch.lastAt, verdict.firstAt), labels: rule.labels
    }
    if (rule.template !== undefined) notification.template = rule.template
    this.offer({ notification, revision: verdict.revision }, now)
  }

  /**
   * A resolved event: whatever of the fingerprint still waits in its group goes first, then the
   * notice, as a new message carrying the episode's count; the window closes, so a new firing
   * is sent without waiting for it.
   */
  private resolve(event: AlertEvent, rule: Rule, now: Millis): void {
    if (!rule.resolve) {
      this.counters.resolvedIgnored++
      return
    }
    const waiting = this.groups.take(event)
    if (waiting !== undefined) this.emit(waiting, now)
    const window = this.dedup.close(event.fingerprint)
    if (window === undefined) {
      // Nothing was sent for it (or it was forgotten at the bound): "resolved" would be noise.
      this.counters.resolvedIgnored++
      return
    }
    const notification: Notification = {
      id: event.id, route: rule.route, ruleId: rule.id, ruleName: rule.name, severity: event.severity, state: 'resolved',
      fingerprint: event.fingerprint, event, more: 0, total: window.total, firstAt: window.firstAt, lastAt: Math.max(event.at, window.firstAt),
      labels: rule.labels
    }
    if (rule.template !== undefined) notification.template = rule.template
    this.offer({ notification, revision: 0 }, now)
  }

  private offer(out: Outgoing, now: Millis): void {
    const passed = this.throttle.offer(out, now)
    if (passed !== undefined) this.enqueue(passed, now)
  }

  private enqueue(out: Outgoing, now: Millis): void {
    this.counters.notifications++
    const route = out.notification.route
    const notifiers = this.notifiers[route]
    if (notifiers === undefined || notifiers.length === 0) {
      this.outbox.put(route, NO_NOTIFIER, out, now, routeError(out.notification.ruleId, route))
      return
    }
    for (const notifier of notifiers) this.outbox.put(route, notifier.name, out, now)
  }

  private dispatch(now: Millis): void {
    for (const d of this.outbox.ready(now)) {
      const notifier = this.notifiers[d.route]?.find((n) => n.name === d.notifier)
      if (notifier === undefined) {
        const error = d.notifier === NO_NOTIFIER ? routeError(d.notification.ruleId, d.route)
          : `LW_ALERT_ROUTE: notifier "${d.notifier}" is no longer configured for route "${d.route}"; the alert is kept. Configure it again to deliver it.`
        this.outbox.settle(d, { ok: false, messageIds: {}, retryable: false, error }, now)
        continue
      }
      const attempt = this.send(notifier, d)
      this.sending.add(attempt)
      void attempt.finally(() => this.sending.delete(attempt))
    }
  }

  private async send(notifier: Notifier, d: Dispatch): Promise<void> {
    let result: DeliveryResult
    try {
      result = await notifier.send(d.notification)
    } catch (err) {
      // A notifier should answer with a DeliveryResult; an exception is treated as a transient failure.
      result = { ok: false, messageIds: {}, retryable: true, error: `${notifier.name}: ${err instanceof Error ? err.message : String(err)}` }
    }
    const now = this.clock()
    this.outbox.settle(d, result, now)
    this.dispatch(now)
  }

  /** Moves what waited for a route without notifiers to the route's notifiers, once it has some. */
  private adoptRouteless(now: Millis): void {
    for (const [route, notifier] of this.outbox.laneNames()) {
      if (notifier !== NO_NOTIFIER || (this.notifiers[route]?.length ?? 0) === 0) continue
      for (const record of this.outbox.drain(route, NO_NOTIFIER)) {
        for (const n of this.notifiers[route] ?? []) this.outbox.put(route, n.name, { notification: record.notification, revision: record.revision }, now)
      }
    }
  }

  private reported(report: DeliveryReport): void {
    if (report.state === 'delivered') this.counters.delivered++
    else if (report.state === 'failed') this.counters.failed++
    else if (report.state === 'blocked') this.counters.blocked++
    else if (report.state === 'merged') this.counters.merged++
    if (this.onDelivery === undefined) return
    try {
      this.onDelivery(report)
    } catch {
      // Reporting (the alerts index) must never stand in the way of delivering.
    }
  }
}

function lookupOf(rules: RuleLookup): (ruleId: string) => Rule | undefined {
  if (typeof rules === 'function') return rules
  return (ruleId) => rules.get(ruleId)
}

function checkNotifiers(notifiers: Record<string, Notifier[]>): Record<string, Notifier[]> {
  for (const [route, list] of Object.entries(notifiers)) {
    const names = new Set<string>()
    for (const n of list) {
      if (n.name === NO_NOTIFIER || names.has(n.name)) {
        throw new LwError('LW_CONFIG_CONFLICT', `routes.${route}: two notifiers are named "${n.name}"`,
          'Give each notifier of a route its own name: deliveries are tracked per route and notifier name.')
      }
      names.add(n.name)
    }
  }
  return { ...notifiers }
}

function routeError(ruleId: string, route: string): string {
  return `LW_ALERT_ROUTE: rule "${ruleId}" sends to route "${route}", which has no notifiers. Add "${route}" under routes: in the configuration or change the rule's route; the alert is kept until then.`
}

function isState(value: unknown): value is AlertPipelineState {
  if (value === null || typeof value !== 'object') return false
  const s = value as Partial<AlertPipelineState>
  return s.version === 1 && Array.isArray(s.seen) && Array.isArray(s.groups) && Array.isArray(s.windows)
    && s.throttle !== undefined && Array.isArray(s.throttle.buckets) && Array.isArray(s.throttle.held)
    && s.outbox !== undefined && Array.isArray(s.outbox.lanes) && Array.isArray(s.outbox.records) && Array.isArray(s.outbox.messages)
}
