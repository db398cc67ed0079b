/**
 * Which rules an entry can concern, without running every rule's predicate on it. Four indexes:
 *
 * - By value: a rule whose condition cannot be true unless a field equals one of some values
 *   (`service.name: billing and ...`, `http.request.method: (PUT or DELETE)`) is filed under
 *   those values; per entry, the field is read once and the rules are found by a Map lookup.
 *   Of the equalities a rule has, the field with the most distinct values across all rules is
 *   used, since it splits the rules finest. An equality in one branch of an `any` files the
 *   rule by value too, as one of the branch gates below.
 * - By range: a rule that needs a number in a range (`http.response.status_code >= 500`) is filed
 *   under the range when it has no gate that splits finer (see gatesCost); per entry, the field
 *   is read once and compared with each distinct range.
 * - By literal: a rule whose condition cannot be true unless a text field contains one of some
 *   literals (a `contains`, a `prefix`, the words every match of a `regex` must have) is filed
 *   under them; per field, one case-insensitive pass over the text tells whether any literal is
 *   there at all, and then the field test each found literal came from judges the text. Both
 *   are done once per distinct text and remembered.
 * - By field: any other rule is put in a bucket by the set of fields that must exist for its
 *   condition to be true (`required`); a bucket is taken when all its fields exist, and each
 *   field's existence is looked up once per entry however many buckets share it.
 *
 * So with 1,000 rules the work per entry is a few dozen property reads and lookups plus the
 * predicates of the rules that can match. Rules that require no field and no value (a `not`, an
 * `any` over different fields) are always candidates. Disabled rules never are.
 */
import type { Entry } from '../agent/entry'
import type { CompiledRule } from './compiled'
import { equalityKey, fieldValueTest, mandatoryEqualities, mandatoryRanges, numericValue, textOnly, type Equality, type Range } from './condition'
import { compileField, decodeUrl, fieldRead, probeValue, topLevelFlat } from './fields'
import { MEMO_TEXT, TextMemo } from './memo'
import { requiredLiterals } from './regex'
import type { ConditionSpec, FieldTestSpec, MatchSpec } from './model'
import { parseQuery } from './query'

/**
 * The fields an entry must have for the rule to need it at all:
 * - ratio: those of `base` (the numerator is taken within the base);
 * - absence with `end`: those both the start and the end need (either one concerns the rule);
 * - otherwise (new_value too) those of the rule's condition. A new_value rule's watched field is
 *   not required: the engine may derive it while evaluating (error.fingerprint).
 */
export function requiredFields(compiled: CompiledRule): string[] {
  const { rule, match, base, end } = compiled
  if (rule.type === 'ratio' && base !== undefined) return [...base.required]
  if (rule.type === 'absence' && end !== undefined) return match.required.filter((field) => end.required.includes(field))
  return [...match.required]
}

/** A query or when, as a ConditionSpec. */
function specOf(match: MatchSpec): ConditionSpec | undefined {
  if (match.when !== undefined) return match.when
  return match.query !== undefined ? parseQuery(match.query).query?.spec : undefined
}

/** The entries the rule needs to see: the base for ratio, the start or the end for correlated absence. */
function indexedSpec(compiled: CompiledRule): ConditionSpec | undefined {
  const { rule } = compiled
  if (rule.type === 'ratio') return specOf(rule.base)
  const own = specOf(rule)
  if (rule.type !== 'absence' || rule.end === undefined) return own
  const end = specOf(rule.end)
  return own !== undefined && end !== undefined ? { any: [own, end] } : undefined
}

/** The equalities the rule needs to see an entry. */
function equalitiesOf(compiled: CompiledRule): Equality[] {
  const spec = indexedSpec(compiled)
  return spec === undefined ? [] : mandatoryEqualities(spec)
}

/**
 * A field a rule needs to contain one of `literals` (lower-case ASCII), read decoded when
 * `decode`; or, with `literals` null, a field the rule needs to be there at all. `spec` is the
 * field test the literals come from: the rule needs it to hold, too.
 */
interface Gate {
  field: string
  decode: boolean
  literals: string[] | null
  spec?: FieldTestSpec
  /** An equality instead: the field must hold a value with one of these keys (see mandatoryEqualities). */
  keys?: string[]
}

/** How much a presence gate lets through, against a literal gate's count of literals: far more. */
const PRESENCE_COST = 1000

/** Whether a field test can only be true when the field has a value. */
function needsValue(spec: FieldTestSpec): boolean {
  if (spec.exists === false || spec.equals === null) return false
  if (Array.isArray(spec.in) && spec.in.includes(null)) return false
  return spec.exists === true || spec.equals !== undefined || spec.in !== undefined || spec.regex !== undefined ||
    spec.contains !== undefined || spec.prefix !== undefined || spec.gt !== undefined || spec.gte !== undefined ||
    spec.lt !== undefined || spec.lte !== undefined
}

const ASCII_ONLY = /^[\x00-\x7f]*$/

function literalOf(text: unknown): string | undefined {
  return typeof text === 'string' && text.length > 0 && ASCII_ONLY.test(text) ? text.toLowerCase() : undefined
}

/** An expected value of an equality as a literal; not one that also equals numbers or booleans, which the text scan never sees. */
function equalityLiteral(value: unknown): string | undefined {
  return textOnly(value) ? literalOf(value) : undefined
}

/**
 * The gates of a condition: it can only be true when one of the gates holds (a field contains one
 * of its literals and passes the test they come from, or, with `distinct` given, holds one of an
 * equality's values). Undefined when there is no such guarantee (a `not`, an `any` with a branch
 * without one, tests that are not about text). Of the children of an `all`, the one whose gates
 * let the least through is taken (see gatesCost).
 */
export function gatesOf(spec: ConditionSpec, presence = false, distinct?: ReadonlyMap<string, ReadonlySet<string>>): Gate[] | undefined {
  if ('all' in spec && Array.isArray(spec.all)) {
    let best: Gate[] | undefined
    let bestCost = Infinity
    for (const child of spec.all) {
      const gates = gatesOf(child, presence, distinct)
      const cost = gates === undefined ? Infinity : gatesCost(gates, distinct)
      if (cost < bestCost) {
        best = gates
        bestCost = cost
      }
    }
    return best
  }
  if ('any' in spec && Array.isArray(spec.any)) {
    const out: Gate[] = []
    for (const child of spec.any) {
      const gates = gatesOf(child, presence, distinct)
      if (gates === undefined) return undefined
      out.push(...gates)
    }
    return out.length > 0 ? out : undefined
  }
  if (!('field' in spec)) return undefined
  // An equality inside an `any` (`status in [401, 403]` in one branch of several) is looked up
  // by value, like the equalities every match needs.
  const equality = distinct === undefined ? undefined : mandatoryEqualities(spec)[0]
  if (equality !== undefined) return [{ field: equality.field, decode: false, literals: null, keys: equality.keys, spec }]
  let literals: string[] | undefined
  const one = literalOf(spec.contains) ?? literalOf(spec.prefix)
  if (one !== undefined) literals = [one]
  else if (typeof spec.regex === 'string') {
    const found = requiredLiterals(spec.regex)
    const lowered = found?.map(literalOf)
    if (lowered !== undefined && lowered.every((l): l is string => l !== undefined)) literals = lowered
  } else {
    // Text equal to a value contains it: equalities the value index did not take (an `any`
    // mixing them with other tests, ignore_case) can be gated by their values too.
    const values = spec.equals !== undefined ? [spec.equals] : spec.in
    const lowered = values?.map(equalityLiteral)
    if (lowered !== undefined && lowered.length > 0 && lowered.every((l): l is string => l !== undefined)) literals = lowered
  }
  if (literals !== undefined) return [{ field: spec.field, decode: spec.decode === true, literals, spec }]
  // With `presence`, a test with no literal to look for still needs its field to be there.
  return presence && needsValue(spec) ? [{ field: spec.field, decode: false, literals: null }] : undefined
}

/**
 * How much a set of gates lets through, roughly: a literal gate by its number of literals, a
 * presence gate far more. An equality lets through less than any literal: its share of the
 * values the field can hold, guessed from the values the rules compare it with, and for numbers
 * (statuses, codes, ports) at least NUMBER_DOMAIN of them; so `status in [401, 403]` is looked
 * up rather than `method: POST`, which half the requests may have.
 */
function gatesCost(gates: Gate[], distinct: ReadonlyMap<string, ReadonlySet<string>> | undefined): number {
  let cost = 0
  for (const g of gates) {
    if (g.keys !== undefined) {
      const domain = Math.max(g.keys.length, distinct?.get(g.field)?.size ?? 1, g.keys.every(isNumberKey) ? NUMBER_DOMAIN : 1)
      cost += g.keys.length / domain
    } else {
      cost += g.literals === null ? PRESENCE_COST : g.literals.length
    }
  }
  return cost
}

/** A range's share of a numeric field's values, as gatesCost counts: an unbounded one lets through too much to choose it over any gate. */
function rangeCost(range: Range): number {
  return (range.high - range.low) / NUMBER_DOMAIN
}

function narrowest(ranges: Range[]): Range | undefined {
  let best: Range | undefined
  for (const range of ranges) if (best === undefined || rangeCost(range) < rangeCost(best)) best = range
  return best
}

/** How many values a field compared with numbers is taken to hold (about the HTTP statuses in use). */
const NUMBER_DOMAIN = 50

function isNumberKey(key: string): boolean {
  return key.length > 0 && !Number.isNaN(Number(key))
}

/** Per field, the keys of every equality the rules test it with, wherever in their conditions. */
function equalityKeys(specs: Array<ConditionSpec | undefined>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  const walk = (spec: ConditionSpec): void => {
    if ('all' in spec && Array.isArray(spec.all)) spec.all.forEach(walk)
    else if ('any' in spec && Array.isArray(spec.any)) spec.any.forEach(walk)
    else if ('not' in spec && spec.not !== undefined) walk(spec.not)
    else {
      for (const { field, keys } of mandatoryEqualities(spec)) {
        let set = out.get(field)
        if (set === undefined) out.set(field, (set = new Set()))
        for (const key of keys) set.add(key)
      }
    }
  }
  for (const spec of specs) if (spec !== undefined) walk(spec)
  return out
}

/** Literals looked for in a field's text as it is, or in its decoded text. */
interface LiteralSet {
  /**
   * Every literal, longest first, or a character outside ASCII; global and case-insensitive. At
   * each position the first alternative that matches is the longest literal there, and any other
   * literal there is a prefix of it (see `prefixes`), so one scan finds every literal present.
   */
  scan: RegExp
  literals: string[]
  /** Literal → its position in `literals`. */
  position: Map<string, number>
  /** Per literal: the literals that are prefixes of it (itself included). */
  prefixes: number[][]
  /** Per literal: the rules filed under it. */
  rules: number[][]
  /** Every rule filed here, for text the literal test cannot judge (non-ASCII: Unicode case folding). */
  all: number[]
}

/** The literal sets of one field: its text is read and looked up once for both. */
interface LiteralIndex {
  field: string
  raw: LiteralSet | undefined
  decoded: LiteralSet | undefined
  /**
   * Per rule filed here: the tests of its gates on this field, of which one must hold for a text
   * to select it (a literal in the text only says one may); null when a gate has none.
   */
  tests: Map<number, Array<(value: string) => boolean> | null>
  /** Per text seen (as read, before decoding): the rules its literals select. */
  memo: TextMemo<number[]>
  /** Recent texts and their rules, in slots picked by length and two characters (see addText). */
  recentText: string[]
  recentRules: number[][]
}

/** Slots of LiteralIndex.recentText: more than the user agents or paths that make most traffic. */
const RECENT = 64

function literalSet(): LiteralSet {
  return { scan: /$^/g, literals: [], position: new Map(), prefixes: [], rules: [], all: [] }
}

function escapeLiteral(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

interface ValueIndex {
  field: string
  rules: Map<string, number[]>
  /**
   * The lists of `rules` whose key is a number as String() writes it, by that number: a number
   * value (a status code) is found without being turned into text and hashed as text.
   */
  numbers: Map<number, number[]>
}

interface RangeIndex {
  field: string
  /** Each distinct range and the rules filed under it. */
  ranges: Array<Range & { rules: number[] }>
}

interface Bucket {
  /** The fields that must all be there. */
  fields: string[]
  /** Indexes into the index's rules. */
  rules: number[]
}

export class RuleIndex {
  /** Enabled rules indexed. */
  readonly size: number
  private readonly rules: CompiledRule[] = []
  private readonly always: number[] = []
  private readonly byValue: ValueIndex[] = []
  private readonly byLiteral: LiteralIndex[] = []
  private readonly byRange: RangeIndex[] = []
  private readonly buckets: Bucket[] = []
  /** Per rule: the entry generation it was last added for (a rule filed under two values of an array comes once). */
  private readonly added: Uint32Array
  private generation = 0
  /** What select() found: positions in `hits[0, count)`. */
  readonly hits: Uint32Array
  /** How many of `hits` the last select filled (written by the generated select's helpers below). */
  count = 0

  constructor(rules: readonly CompiledRule[]) {
    const enabled = rules.filter((compiled) => compiled.rule.enabled)
    this.rules = enabled
    this.size = enabled.length
    const equalities = enabled.map(equalitiesOf)
    // How finely each field splits the rules: its number of distinct values over all rules.
    const distinct = new Map<string, Set<string>>()
    for (const list of equalities) {
      for (const { field, keys } of list) {
        let set = distinct.get(field)
        if (set === undefined) distinct.set(field, (set = new Set()))
        for (const key of keys) set.add(key)
      }
    }
    const byValue = new Map<string, ValueIndex>()
    const byLiteral = new Map<string, LiteralIndex>()
    const byRange = new Map<string, RangeIndex>()
    const byKey = new Map<string, Bucket>()
    const specs = enabled.map(indexedSpec)
    const compared = equalityKeys(specs)
    /** The value index of `field`, made on first use. */
    const valueIndex = (field: string): ValueIndex => {
      let index = byValue.get(field)
      if (index === undefined) {
        index = { field, rules: new Map(), numbers: new Map() }
        byValue.set(field, index)
        this.byValue.push(index)
      }
      return index
    }
    const fileUnder = (index: ValueIndex, keys: readonly string[], r: number): void => {
      for (const key of keys) {
        const list = index.rules.get(key)
        if (list === undefined) index.rules.set(key, [r])
        else if (list[list.length - 1] !== r) list.push(r)
      }
    }
    /** The bucket of the rules that need all of `required` (sorted, distinct) to be there. */
    const bucketFor = (required: string[]): Bucket => {
      const key = required.join('\n')
      let bucket = byKey.get(key)
      if (bucket === undefined) {
        bucket = { fields: required, rules: [] }
        byKey.set(key, bucket)
        this.buckets.push(bucket)
      }
      return bucket
    }
    enabled.forEach((compiled, r) => {
      const best = equalities[r]!.reduce<Equality | undefined>(
        (chosen, e) => (chosen === undefined || distinct.get(e.field)!.size > distinct.get(chosen.field)!.size ? e : chosen), undefined)
      if (best !== undefined) {
        fileUnder(valueIndex(best.field), best.keys, r)
        return
      }
      const spec = specs[r]
      let gates = spec === undefined ? undefined : gatesOf(spec, false, compared)
      // A bounded range can split finer than literals: `status >= 500 and url.path: /(login|pay)/`
      // is looked up by the status, not by paths most requests to those endpoints have.
      const range = spec === undefined ? undefined : narrowest(mandatoryRanges(spec))
      if (range !== undefined && (gates === undefined || rangeCost(range) < gatesCost(gates, compared))) {
        let index = byRange.get(range.field)
        if (index === undefined) {
          index = { field: range.field, ranges: [] }
          byRange.set(range.field, index)
          this.byRange.push(index)
        }
        let slot = index.ranges.find((x) => x.low === range.low && x.lowOpen === range.lowOpen && x.high === range.high && x.highOpen === range.highOpen)
        if (slot === undefined) index.ranges.push((slot = { ...range, rules: [] }))
        slot.rules.push(r)
        return
      }
      const required = gates === undefined ? [...new Set(requiredFields(compiled))].sort() : []
      // Neither would make the rule a candidate for every entry. An `any` whose branches each
      // need a field to be there (or to hold some text) is still a candidate only when one is.
      if (gates === undefined && required.length === 0 && spec !== undefined) gates = gatesOf(spec, true, compared)
      if (gates !== undefined) {
        for (const gate of gates) {
          if (gate.keys !== undefined) {
            fileUnder(valueIndex(gate.field), gate.keys, r)
            continue
          }
          if (gate.literals === null) {
            bucketFor([gate.field]).rules.push(r)
            continue
          }
          let index = byLiteral.get(gate.field)
          if (index === undefined) {
            index = { field: gate.field, raw: undefined, decoded: undefined, tests: new Map(), memo: new TextMemo(),
              recentText: new Array<string>(RECENT).fill(''), recentRules: new Array<number[]>(RECENT).fill(NONE) }
            byLiteral.set(gate.field, index)
            this.byLiteral.push(index)
          }
          const set = gate.decode ? (index.decoded ??= literalSet()) : (index.raw ??= literalSet())
          for (const literal of gate.literals) {
            let at = set.literals.indexOf(literal)
            if (at === -1) {
              at = set.literals.length
              set.literals.push(literal)
              set.rules.push([])
            }
            set.rules[at]!.push(r)
          }
          set.all.push(r)
          // A gate without a test lets the rule through on its literal alone.
          const test = gate.spec === undefined ? undefined : fieldValueTest(gate.spec)
          const tests = index.tests.get(r)
          if (test === undefined || tests === null) index.tests.set(r, null)
          else if (tests === undefined) index.tests.set(r, [test])
          else tests.push(test)
        }
        return
      }
      if (required.length === 0) {
        this.always.push(r)
        return
      }
      bucketFor(required).rules.push(r)
    })
    for (const index of this.byLiteral) {
      for (const set of [index.raw, index.decoded]) {
        if (set === undefined) continue
        const order = set.literals.map((_, i) => i).sort((a, b) => set.literals[b]!.length - set.literals[a]!.length)
        set.scan = new RegExp([...order.map((i) => escapeLiteral(set.literals[i]!)), '[^\\x00-\\x7f]'].join('|'), 'gi')
        set.literals.forEach((literal, i) => set.position.set(literal, i))
        set.prefixes = set.literals.map((literal) => set.literals.flatMap((other, j) => (literal.startsWith(other) ? [j] : [])))
      }
    }
    for (const index of this.byValue) {
      // A number value v matches key k when String(v) === k: exactly when k is how String() writes Number(k).
      for (const [key, list] of index.rules) if (String(Number(key)) === key) index.numbers.set(Number(key), list)
    }
    this.added = new Uint32Array(enabled.length)
    this.hits = new Uint32Array(enabled.length)
    this.select = compileSelect(this, this.byValue, this.byLiteral, this.byRange, this.buckets)
  }

  /**
   * The enabled rules that may match `entry`, in an order fixed at construction (not the load
   * order). The predicates still decide; this only leaves out rules that cannot match.
   */
  candidates(entry: Entry): CompiledRule[] {
    const n = this.select(entry)
    const out: CompiledRule[] = []
    for (let i = 0; i < n; i++) out.push(this.rules[this.hits[i]!]!)
    return out
  }

  /**
   * Puts the positions of the rules that may match `entry` (in the enabled rules, in the order
   * the index was given them) into `hits`, and returns how many there are: the engine's hot
   * path, with nothing allocated per entry. Made per index by compileSelect.
   */
  readonly select: (entry: Entry) => number

  // The methods from here to addRules are the generated select's helpers (see compileSelect).

  /** Starts an entry's selection: the rules always tried, and a new generation for `added`. */
  start(): number {
    this.count = 0
    for (let i = 0; i < this.always.length; i++) this.hits[this.count++] = this.always[i]!
    // A new generation marks every rule not added yet, without clearing the array.
    this.generation = (this.generation + 1) >>> 0
    if (this.generation === 0) {
      this.added.fill(0)
      this.generation = 1
    }
    return this.generation
  }

  addValues(index: ValueIndex, value: unknown, generation: number): void {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) this.addValue(index, value[i], generation)
    } else {
      this.addValue(index, value, generation)
    }
  }

  addRangeValues(index: RangeIndex, value: unknown, generation: number): void {
    if (value === undefined || value === null) return
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) this.addRanges(index, numericValue(value[i]), generation)
    } else {
      this.addRanges(index, numericValue(value), generation)
    }
  }

  addLiterals(index: LiteralIndex, value: unknown, generation: number): void {
    if (typeof value === 'string') {
      this.addText(index, value, generation)
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) this.addText(index, value[i], generation)
    }
  }

  private addRanges(index: RangeIndex, n: number, generation: number): void {
    if (Number.isNaN(n)) return
    const ranges = index.ranges
    for (let i = 0; i < ranges.length; i++) {
      const range = ranges[i]!
      if (n < range.low || (n === range.low && range.lowOpen) || n > range.high || (n === range.high && range.highOpen)) continue
      this.addRules(range.rules, generation)
    }
  }

  private addText(index: LiteralIndex, value: unknown, generation: number): void {
    if (typeof value !== 'string') return
    if (value.length > MEMO_TEXT) {
      this.addRules(selected(index, value), generation)
      return
    }
    // Each entry's text is a string the parser just made, and a Map lookup hashes all of it
    // first (a user agent: 60-150 characters). The few texts most entries repeat are found in a
    // slot chosen from the length and two characters instead, by one comparison.
    const n = value.length
    // charCodeAt past the end is NaN, and NaN & x is 0: the empty text has slot 0.
    const slot = (n * 31 + value.charCodeAt(n >> 1) + value.charCodeAt(n - 1)) & (RECENT - 1)
    let rules: number[]
    if (value === index.recentText[slot]) {
      rules = index.recentRules[slot]!
    } else {
      let found = index.memo.get(value)
      if (found === undefined) index.memo.set(value, (found = selected(index, value)))
      rules = found
      index.recentText[slot] = value
      index.recentRules[slot] = rules
    }
    this.addRules(rules, generation)
  }

  /** Adds each rule of `list` once per entry: a rule gated by any of several fields sits in several buckets. */
  addRules(list: number[], generation: number): void {
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!
      if (this.added[r] === generation) continue
      this.added[r] = generation
      this.hits[this.count++] = r
    }
  }

  private addValue(index: ValueIndex, value: unknown, generation: number): void {
    let hits: number[] | undefined
    if (typeof value === 'number') {
      hits = index.numbers.get(value)
    } else {
      const key = equalityKey(value)
      if (key === undefined) return
      hits = index.rules.get(key)
    }
    if (hits === undefined) return
    for (let i = 0; i < hits.length; i++) {
      const r = hits[i]!
      if (this.added[r] === generation) continue
      this.added[r] = generation
      this.hits[this.count++] = r
    }
  }
}

const NONE: number[] = []

/** What a generated select calls back on its index (the RuleIndex methods it unrolls around). */
interface SelectHelpers {
  start(): number
  addValues(index: ValueIndex, value: unknown, generation: number): void
  addLiterals(index: LiteralIndex, value: unknown, generation: number): void
  addRangeValues(index: RangeIndex, value: unknown, generation: number): void
  addRules(list: number[], generation: number): void
  readonly count: number
}

/**
 * RuleIndex.select as code made for one index, with every field read written out. Read through
 * accessors, in a loop over the indexes, one call site called a dozen different functions, which
 * V8 dispatches generically and does not inline; the reads were half of the selection's time on
 * the benchmark. Written out, each field is read once per entry by property loads with constant
 * names (each sees the few object shapes of its field and answers from its inline cache), in the
 * accessor's order: the parser's fields, the JSON object, the source's fields (rules/fields.ts).
 * Only field paths reach the generated text, as JSON string literals.
 */
function compileSelect(ix: RuleIndex, values: ValueIndex[], literals: LiteralIndex[], ranges: RangeIndex[], buckets: Bucket[]): (entry: Entry) => number {
  const reads = new Map<string, string>()
  const head: string[] = []
  const body: string[] = ['const g = ix.start()', 'const f = entry.fields, o = entry.object, fl = entry.flat, s = entry.source']
  const read = (path: string): string => {
    let name = reads.get(path)
    if (name !== undefined) return name
    name = `v${reads.size}`
    reads.set(path, name)
    const plan = fieldRead(path)
    if (plan.guarded) {
      // A name Object.prototype has (`constructor`): the accessor's own-property checks.
      head.push(`const a${name} = compileField(${JSON.stringify(path)})`)
      body.push(`const ${name} = a${name}(entry)`)
      return name
    }
    const key = JSON.stringify(path)
    head.push(`const p${name} = fieldRead(${key}).probes`)
    body.push(
      `let ${name} = f[${key}]`,
      `if (${name} === undefined) {`,
      `  if (o !== undefined && (o[${JSON.stringify(plan.root)}] !== undefined || (fl !== true && !topLevelFlat(o)))) ${name} = probeValue(o, p${name})`,
      `  if (${name} === undefined && s !== undefined) ${name} = s[${key}]`,
      '}')
    return name
  }
  values.forEach((index, i) => {
    head.push(`const x${i} = V[${i}]`)
    body.push(`ix.addValues(x${i}, ${read(index.field)}, g)`)
  })
  literals.forEach((index, i) => {
    head.push(`const l${i} = L[${i}]`)
    body.push(`ix.addLiterals(l${i}, ${read(index.field)}, g)`)
  })
  ranges.forEach((index, i) => {
    head.push(`const n${i} = N[${i}]`)
    body.push(`ix.addRangeValues(n${i}, ${read(index.field)}, g)`)
  })
  buckets.forEach((bucket, b) => {
    head.push(`const b${b} = B[${b}].rules`)
    const there = bucket.fields.map((field) => { const name = read(field); return `${name} !== undefined && ${name} !== null` })
    body.push(`if (${there.join(' && ')}) ix.addRules(b${b}, g)`)
  })
  body.push('return ix.count')
  const make = new Function('ix', 'V', 'L', 'N', 'B', 'fieldRead', 'compileField', 'probeValue', 'topLevelFlat',
    `'use strict'\n${head.join('\n')}\nreturn function select(entry) {\n${body.join('\n')}\n}`) as
    (ix: SelectHelpers, v: ValueIndex[], l: LiteralIndex[], n: RangeIndex[], b: Bucket[], read: typeof fieldRead, compile: typeof compileField,
      probe: typeof probeValue, flat: typeof topLevelFlat) => (entry: Entry) => number
  return make(ix as unknown as SelectHelpers, values, literals, ranges, buckets, fieldRead, compileField, probeValue, topLevelFlat)
}

/**
 * The rules `value` selects, each once, in index order: those with a literal in it (as it is, or
 * decoded) whose test on this field holds for it. A text is judged once per memo, so a browser's
 * user agent, which has the `;` of shell syntax, does not make the command-injection rule a
 * candidate on every request.
 */
function selected(index: LiteralIndex, value: string): number[] {
  const found = new Set<number>()
  if (index.raw !== undefined) selectInto(index.raw, value, found)
  if (index.decoded !== undefined) selectInto(index.decoded, decodeUrl(value), found)
  if (found.size === 0) return NONE
  const out: number[] = []
  for (const r of found) {
    const tests = index.tests.get(r)
    if (tests === null || tests === undefined || tests.some((test) => test(value))) out.push(r)
  }
  return out.length === 0 ? NONE : out.sort((a, b) => a - b)
}

function selectInto(set: LiteralSet, text: string, found: Set<number>): void {
  const scan = set.scan
  scan.lastIndex = 0
  let m = scan.exec(text)
  while (m !== null) {
    const at = set.position.get(m[0].toLowerCase())
    // A character outside ASCII, where Unicode case folding (RE2's, toLowerCase's) can make
    // text match a literal this scan would miss: the predicates decide.
    if (at === undefined) {
      for (const r of set.all) found.add(r)
      return
    }
    for (const prefix of set.prefixes[at]!) for (const r of set.rules[prefix]!) found.add(r)
    scan.lastIndex = m.index + 1
    m = scan.exec(text)
  }
}
