/**
 * The rule engine: every entry goes through the rules as it passes (not by polling
 * Elasticsearch), and what fires comes out as AlertEvents for the alert pipeline.
 *
 *   evaluate(entry, now)  once per entry, on the hot path: the candidate rules (all, or those the
 *                         RuleIndex picks by the fields they test) see the entry; no allocation
 *                         unless a rule matches.
 *   tick(now)             about once a second: windows close, deadlines pass, flatlines and
 *                         resolutions are noticed.
 *   exportState()         the state of every rule (windows, pending deadlines, seen-sets) and the
 *   importState(state)    exception history, JSON, bounded, versioned: saved in the checkpoint
 *                         with the file offsets, so a restart neither re-sends nor floods. Event
 *                         ids derive from the entry's position, so a replayed entry makes the
 *                         same event and the pipeline drops it as already seen.
 *   setRules(rules)       hot reload: a rule whose id and state-relevant definition did not change
 *                         keeps its state; others start afresh.
 *
 * Time: rules never read the wall clock; the caller passes `now` (virtual in `rules test`).
 * See EventClock (types/runtime.ts) for which time an entry counts at.
 */
import type { Entry, FieldValue } from '../agent/entry'
import { LwError } from '../agent/errors'
import type { CompiledRule } from './compiled'
import { ExceptionHistory, type ExceptionHistoryOptions } from './fingerprint'
import type { AlertEvent, Millis, Rule } from './model'
import { CorrelatedAbsenceRuntime, FlatlineRuntime } from './types/absence'
import { FrequencyRuntime } from './types/frequency'
import { MatchRuntime } from './types/match'
import { NewValueRuntime } from './types/new-value'
import { RatioRuntime } from './types/ratio'
import { EntryScope, EventClock, type RuleRuntime, type RuntimeLimits } from './types/runtime'

/**
 * Picks the rules worth trying for an entry (rules/rule-index.ts); must not miss a rule that could
 * match. Built for a rule list, it answers with positions in that list's enabled rules.
 */
export interface RuleCandidates {
  /** Puts the positions of the rules worth trying into `hits` and returns how many there are. */
  select(entry: Entry): number
  readonly hits: ArrayLike<number>
}

export interface RuleEngineOptions {
  /**
   * Narrows the rules tried per entry. A function is called with each rule set (at construction
   * and on setRules) to build the index for it; an object serves the constructor's rules only
   * (after setRules without a new index, every rule is tried). Default: every rule is tried.
   */
  index?: RuleCandidates | ((rules: CompiledRule[]) => RuleCandidates)
  /** Group keys per frequency / ratio / flatline rule; further keys fold into one overflow group. Default 10,000. */
  maxGroupsPerRule?: number
  /** Waiting starts per correlated absence rule; further starts are counted and not tracked. Default 10,000. */
  maxPendingPerRule?: number
  /** Values per new_value rule; past it the least recently seen is evicted. Default 100,000. */
  maxSeenPerRule?: number
  /** The exception history shown in alerts (count, first and last seen, regression). */
  exceptions?: ExceptionHistoryOptions
  /**
   * `entry` (default): an entry counts at its own @timestamp when that is at most `maxLag` old
   * and not in the future, else when it arrives. `arrival`: always when it arrives (rule tests,
   * where the test's clock is the time).
   */
  timestamps?: 'entry' | 'arrival'
  /** How old an entry's @timestamp may be and still be believed. Default 30 minutes. */
  maxLag?: Millis
  /** The fields every entry of a source has (service.name, host.name, log.file.path), for alert messages. */
  sourceFields?: (entry: Entry) => Record<string, FieldValue> | undefined
}

export const ENGINE_STATE_VERSION = 1

/** What exportState returns (and importState accepts). */
export interface EngineState {
  version: typeof ENGINE_STATE_VERSION
  clock: { watermark: number | null; last: number | null }
  exceptions: unknown
  /** Per rule id: the definition signature the state belongs to, and the state. */
  rules: Record<string, { signature: string; state: unknown }>
}

export interface ImportReport {
  /** Rules whose state was restored. */
  restored: string[]
  /** Saved rules whose state was dropped: the rule is gone, or its definition changed. */
  discarded: string[]
  /** Why nothing was restored, when nothing was. */
  reason?: string
}

export interface RuleStats {
  id: string
  /** Group keys, waiting starts or seen values held. */
  size: number
  /** Keys folded into the overflow group, starts not tracked, or values evicted. */
  overflowed: number
  /** Entries on which the rule threw (a bug); the rule keeps running for the others. */
  errors: number
  lastError?: string
}

interface Slot {
  runtime: RuleRuntime
  signature: string
  errors: number
  lastError?: string
}

const NO_EVENTS: readonly AlertEvent[] = Object.freeze([])

/** One broken rule must not stop the others (or the agent): it is counted and shown in status. */
function failed(slot: Slot, err: unknown): void {
  slot.errors++
  slot.lastError = (err as Error).message
}

const MINUTE = 60_000

/**
 * The parts of a rule its state depends on. A change elsewhere (name, severity, labels, route,
 * template, timings, resolve) keeps the state; a change here starts the rule afresh, since old
 * counts would mean something else.
 */
const STATE_KEYS = [
  'type', 'when', 'query', 'group_by', 'threshold', 'window', 'base', 'min_count', 'end', 'key', 'within',
  'field', 'forget_after', 'regression_after',
] as const

function stable(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(stable).join(',') + ']'
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>
    return '{' + Object.keys(record).sort().filter((k) => record[k] !== undefined)
      .map((k) => JSON.stringify(k) + ':' + stable(record[k])).join(',') + '}'
  }
  return JSON.stringify(value) ?? 'null'
}

export function stateSignature(rule: Rule): string {
  const picked: Record<string, unknown> = {}
  const record = rule as unknown as Record<string, unknown>
  for (const key of STATE_KEYS) picked[key] = record[key]
  return stable(picked)
}

function createRuntime(compiled: CompiledRule, limits: RuntimeLimits): RuleRuntime {
  switch (compiled.rule.type) {
    case 'match': return new MatchRuntime(compiled)
    case 'frequency': return new FrequencyRuntime(compiled, limits)
    case 'ratio': return new RatioRuntime(compiled, limits)
    case 'absence': return compiled.end !== undefined ? new CorrelatedAbsenceRuntime(compiled, limits) : new FlatlineRuntime(compiled, limits)
    case 'new_value': return new NewValueRuntime(compiled, limits)
  }
}

export class RuleEngine {
  private readonly limits: RuntimeLimits
  private readonly clock: EventClock
  private readonly history: ExceptionHistory
  private readonly scope: EntryScope
  private readonly buildIndex: ((rules: CompiledRule[]) => RuleCandidates) | undefined
  private index: RuleCandidates | undefined
  private slots: Slot[] = []
  private readonly byId = new Map<string, Slot>()
  private lastPrune = -Infinity

  constructor(rules: CompiledRule[], opts: RuleEngineOptions = {}) {
    this.limits = {
      maxGroups: opts.maxGroupsPerRule ?? 10_000,
      maxPending: opts.maxPendingPerRule ?? 10_000,
      maxSeen: opts.maxSeenPerRule ?? 100_000,
    }
    this.clock = new EventClock((opts.timestamps ?? 'entry') === 'entry', opts.maxLag ?? 30 * MINUTE)
    this.history = new ExceptionHistory(opts.exceptions)
    this.scope = new EntryScope(this.clock, this.history, opts.sourceFields)
    if (typeof opts.index === 'function') this.buildIndex = opts.index
    this.setRules(rules, typeof opts.index === 'object' ? opts.index : undefined)
  }

  /**
   * Replaces the rule set. A rule with the same id and the same state signature keeps its
   * windows, deadlines and seen-set (and picks up its other changes); the rest start empty.
   * `index` serves this rule set (see RuleEngineOptions.index).
   */
  setRules(rules: CompiledRule[], index?: RuleCandidates): void {
    const slots: Slot[] = []
    const seen = new Set<string>()
    for (const compiled of rules) {
      const rule = compiled.rule
      if (!rule.enabled) continue
      if (seen.has(rule.id)) {
        throw new LwError('LW_INTERNAL', `rule id ${rule.id} is given twice (${rule.source}); rule ids must be unique and the loader should have refused this`)
      }
      seen.add(rule.id)
      const signature = stateSignature(rule)
      const previous = this.byId.get(rule.id)
      if (previous !== undefined && previous.signature === signature) {
        previous.runtime.compiled = compiled
        slots.push(previous)
      } else {
        slots.push({ runtime: createRuntime(compiled, this.limits), signature, errors: 0 })
      }
    }
    this.slots = slots
    this.byId.clear()
    for (const slot of slots) {
      this.byId.set(slot.runtime.compiled.rule.id, slot)
    }
    const enabled = slots.map((s) => s.runtime.compiled)
    this.index = index ?? this.buildIndex?.(enabled)
  }

  /** The rules that fire for this entry, as events; a shared empty array when none does. */
  evaluate(entry: Entry, now: Millis): readonly AlertEvent[] {
    const scope = this.scope
    scope.reset(entry, now)
    const index = this.index
    if (index === undefined) {
      const slots = this.slots
      let i = 0
      while (i < slots.length) {
        try {
          for (; i < slots.length; i++) slots[i]!.runtime.onEntry(scope)
        } catch (err) {
          failed(slots[i++]!, err)
        }
      }
    } else {
      // The index was built for the enabled rules in slot order: a position is a slot.
      const n = index.select(entry)
      const hits = index.hits
      const slots = this.slots
      // One try around the loop, entered again past a rule that threw, rather than one per rule.
      let i = 0
      while (i < n) {
        try {
          for (; i < n; i++) slots[hits[i]!]!.runtime.onEntry(scope)
        } catch (err) {
          failed(slots[hits[i++]!]!, err)
        }
      }
    }
    if (scope.out.length === 0) return NO_EVENTS
    const out = scope.out
    scope.out = []
    return out
  }

  /** Advances time: what closes, passes a deadline or resolves by `now`. */
  tick(now: Millis): readonly AlertEvent[] {
    const clock = this.clock.at(now)
    const out: AlertEvent[] = []
    for (const slot of this.slots) {
      try {
        slot.runtime.tick(clock, out)
      } catch (err) {
        failed(slot, err)
      }
    }
    if (clock - this.lastPrune >= MINUTE) {
      this.lastPrune = clock
      this.history.prune(clock)
    }
    return out.length === 0 ? NO_EVENTS : out
  }

  exportState(): EngineState {
    const rules: EngineState['rules'] = {}
    for (const slot of this.slots) {
      rules[slot.runtime.compiled.rule.id] = { signature: slot.signature, state: slot.runtime.exportState() }
    }
    return { version: ENGINE_STATE_VERSION, clock: this.clock.export(), exceptions: this.history.export(), rules }
  }

  /**
   * Restores a state saved by exportState. Rules that are gone or whose definition changed start
   * empty (and are listed as discarded); a state of another version is ignored as a whole.
   */
  importState(state: unknown): ImportReport {
    const report: ImportReport = { restored: [], discarded: [] }
    const s = state as Partial<EngineState> | null
    if (s === null || typeof s !== 'object' || s.version !== ENGINE_STATE_VERSION) {
      report.reason = `the saved rule state has version ${String(s?.version)}, this logwarden reads version ${ENGINE_STATE_VERSION}; rules start with empty state`
      return report
    }
    if (s.clock !== null && typeof s.clock === 'object') this.clock.import(s.clock)
    this.history.import(s.exceptions)
    const saved = s.rules !== null && typeof s.rules === 'object' ? s.rules : {}
    for (const [id, entry] of Object.entries(saved)) {
      const slot = this.byId.get(id)
      if (slot === undefined || entry === null || typeof entry !== 'object' || entry.signature !== slot.signature) {
        report.discarded.push(id)
        continue
      }
      slot.runtime.importState(entry.state)
      report.restored.push(id)
    }
    return report
  }

  /** Per rule: how much state it holds, what overflowed, errors — for status and metrics. */
  stats(): RuleStats[] {
    return this.slots.map((slot) => {
      const s: RuleStats = {
        id: slot.runtime.compiled.rule.id,
        size: slot.runtime.size(),
        overflowed: slot.runtime.overflowed(),
        errors: slot.errors,
      }
      if (slot.lastError !== undefined) s.lastError = slot.lastError
      return s
    })
  }
}
