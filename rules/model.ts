/**
 * The shapes shared by the rule engine, the alert pipeline and the notifiers (issue 3). One
 * place, so every part agrees; see ../shared/design.md for the flow:
 *   entry → rules (predicates + stateful types) → AlertEvent → alert pipeline (dedup, group,
 *   throttle, outbox) → Notification → notifier (Telegram, console) → DeliveryResult.
 */
import type { Entry, FieldValue } from '../agent/entry'

export type Severity = 'critical' | 'error' | 'warning' | 'info'
export type RuleType = 'match' | 'frequency' | 'ratio' | 'absence' | 'new_value'

/** Time in ms since the epoch. Rules never call Date.now(): the caller passes the clock (virtual in `rules test`). */
export type Millis = number

/**
 * A structured condition, as written in YAML. Exactly one of the combinators or one field test:
 *   { all: [C, ...] } | { any: [C, ...] } | { not: C }
 *   { field: 'http.response.status_code', gte: 500 }
 * Field tests: equals, in, gt, gte, lt, lte, exists, contains, prefix, regex (several tests on
 * one field are ANDed). `contains`/`prefix`/`regex` apply to strings; `decode: true` on a field
 * test matches against the percent- and plus-decoded value (for URLs and queries).
 */
export type ConditionSpec =
  | { all: ConditionSpec[] }
  | { any: ConditionSpec[] }
  | { not: ConditionSpec }
  | FieldTestSpec

export interface FieldTestSpec {
  field: string
  equals?: FieldValue | null
  in?: Array<FieldValue | null>
  gt?: number | string
  gte?: number | string
  lt?: number | string
  lte?: number | string
  exists?: boolean
  contains?: string
  prefix?: string
  regex?: string
  /** Case-insensitive for contains / prefix / equals on strings / regex. */
  ignore_case?: boolean
  /** Percent- and plus-decode the value first (repeatedly, up to 3 times, to defeat double encoding). */
  decode?: boolean
}

/** Either `when` (structured) or `query` (Kibana/Lucene syntax); both compile to the same Predicate. */
export interface MatchSpec {
  when?: ConditionSpec
  query?: string
}

/** A compiled condition. Pure, allocation-free on the common path; reads fields with `fieldOf`. */
export type Predicate = (entry: Entry) => boolean

/** The fields a predicate reads (for indexing rules by the fields they test): `undefined` = unknown (always evaluate). */
export interface CompiledCondition {
  test: Predicate
  /** Every field path the condition reads. */
  fields: string[]
  /**
   * Fields that must exist for the condition to possibly be true (e.g. for `status >= 500` it is
   * `http.response.status_code`; for `any` of two fields it is empty). The engine skips a rule
   * for an entry that lacks any of them without calling `test`.
   */
  required: string[]
}

/** Common to every rule type. Durations are milliseconds after loading ("5m" in YAML). */
export interface RuleBase extends MatchSpec {
  id: string
  name: string
  description?: string
  type: RuleType
  severity: Severity
  enabled: boolean
  /** Field paths whose values make the group key (one alert stream per distinct combination). */
  group_by: string[]
  labels: Record<string, string>
  /** Route name for notifications (`routes:` in the agent config); default `default`. */
  route: string
  /** A logic-less (Mustache) message template; HTML-escaped values. Optional: a standard layout otherwise. */
  template?: string
  /** Alertmanager's timing words. */
  group_wait: Millis
  group_interval: Millis
  /** Minimum time between two notifications of one fingerprint (dedup window). */
  realert: Millis
  /** >1: the realert window grows by this factor while the alert keeps firing (capped at repeat_max). */
  realert_backoff: number
  realert_max: Millis
  /** Send a "resolved" notice when a clearable condition (frequency, ratio, absence) clears. */
  resolve: boolean
  /** Where the rule came from, for messages: file:line:column of the rule's `id`. */
  source: string
}

export interface MatchRule extends RuleBase { type: 'match' }
export interface FrequencyRule extends RuleBase { type: 'frequency'; threshold: number; window: Millis }
export interface RatioRule extends RuleBase {
  type: 'ratio'
  /** The base set (denominator); the rule's own condition selects the numerator within it. */
  base: MatchSpec
  threshold: number
  min_count: number
  window: Millis
}
export interface AbsenceRule extends RuleBase {
  type: 'absence'
  /** Correlated mode: after `start` (the rule's own condition), `end` must follow within `within`, matched by `key`. */
  end?: MatchSpec
  key?: string
  within?: Millis
  /** Flatline mode (no `end`): fewer than `min_count` matches in `window` fires. */
  min_count?: number
  window?: Millis
}
export interface NewValueRule extends RuleBase {
  type: 'new_value'
  /** The field whose first-seen values fire (e.g. `error.fingerprint`, `client.ip`). */
  field: string
  /** Forget values not seen for this long (bounds the seen-set); default 30 days. */
  forget_after: Millis
  /** A value that comes back after being quiet this long is flagged a regression (exception fingerprints). */
  regression_after?: Millis
}
export type Rule = MatchRule | FrequencyRule | RatioRule | AbsenceRule | NewValueRule

/** The exception fingerprint and its history, Sentry-style (rules/fingerprint.ts). */
export interface ExceptionInfo {
  fingerprint: string
  type?: string
  message?: string
  /** Top in-app frames, normalised (no line numbers). */
  frames: string[]
  count: number
  firstSeen: Millis
  lastSeen: Millis
  regression: boolean
}

/** What a rule emits. */
export interface AlertEvent {
  /** Deterministic from the triggering entry's position (sourceId + offset) and the rule: a replay makes the same id. */
  id: string
  ruleId: string
  severity: Severity
  state: 'firing' | 'resolved'
  /** hash(ruleId + group key values): what dedup, grouping and message edits key on. */
  fingerprint: string
  groupKey: Record<string, string>
  /** When it happened (the entry's time for match; the clock for windows). */
  at: Millis
  /** Matches behind it (1 for match; the window count for frequency; numerator for ratio). */
  count: number
  /** For ratio: the share and the base count. */
  ratio?: { share: number; base: number }
  /** Key fields of the triggering (or last) entry for the message: method, path, status, client IP, user agent, user, error type/message, top frames, service, host, @timestamp. Already redacted of secrets. */
  fields: Record<string, FieldValue>
  exception?: ExceptionInfo
  /** Human summary line, e.g. "12 matches in 5m (threshold 10)". */
  summary: string
}

/** What the alert pipeline hands a notifier: one message, possibly standing for many events. */
export interface Notification {
  /** Stable per message: the outbox key; an edit keeps the id. */
  id: string
  route: string
  ruleId: string
  ruleName: string
  severity: Severity
  state: 'firing' | 'resolved'
  fingerprint: string
  /** The first (representative) event. */
  event: AlertEvent
  /** Events folded into this message ("and 37 more like this"). */
  more: number
  /** Total count of matches so far in this dedup window (for edits: "×14, last 12:03"). */
  total: number
  firstAt: Millis
  lastAt: Millis
  template?: string
  labels: Record<string, string>
  /** Set when this notification updates an earlier message of the same fingerprint instead of posting a new one. */
  edit?: { messageIds: Record<string, number> }
}

export interface DeliveryResult {
  ok: boolean
  /** Per chat: the Telegram message id (for later edits). */
  messageIds: Record<string, number>
  /** A failure to keep in the outbox and show in status, in plain words (what to do). */
  error?: string
  /** true: retrying may succeed (429, 5xx, network); false: it will not until someone acts (401, 403, chat not found). */
  retryable?: boolean
  /** ms to wait before the next attempt (Telegram's retry_after). */
  retryAfter?: number
}

/** Telegram, the console, ... */
export interface Notifier {
  readonly name: string
  send(n: Notification): Promise<DeliveryResult>
}
