/**
 * Lines to records: joins the lines of one logical record (a Python traceback, a Java or
 * Node.js stack trace, or whatever a Filebeat-style pattern describes) into one RawRecord.
 *
 * A group is held until a line arrives that does not belong to it, until it has been idle for
 * `timeout` (the caller drives the clock through `flushIfIdle`, so tests need no timers), or until
 * it reaches `max_lines` / `max_bytes`. Nothing is dropped: a group that reaches a limit is
 * emitted and the rest of the record goes on in a new group, both flagged `multiline`, so memory
 * stays bounded by the limits plus one line.
 *
 * Empty lines never reach this stage (line framing skips them). Where the source had empty lines
 * inside a group, as between chained Python tracebacks, the joined text has one empty line.
 */
import type { MultilineConfig } from '../config/types'
import type { LogFlag, RawRecord } from '../entry'
import { LwError } from '../errors'

/** What a rule says about a line, as bits. */
const CONTINUES = 1 // the line belongs to the record before it
const ENDS = 2 // no later line can belong to this record

/** Decides line by line where records begin. A rule may keep state between lines. */
interface JoinRule {
  next(text: string): number
}

export class Multiline {
  private readonly rule: JoinRule
  private readonly timeout: number
  private readonly maxLines: number
  private readonly maxBytes: number

  /** The held group, in order. */
  private group: RawRecord[] = []
  /** Source bytes of the held group. */
  private bytes = 0
  /** The group does not begin a record (it follows a split at a limit or a timeout, or begins with a continuation line). */
  private fragment = false
  private lastArrival = 0

  constructor(cfg: MultilineConfig) {
    this.rule = ruleFor(cfg)
    this.timeout = cfg.timeout
    this.maxLines = cfg.max_lines
    this.maxBytes = cfg.max_bytes
  }

  /** Source bytes held in the pending group; 0 when nothing is held. */
  get pending(): number {
    return this.bytes
  }

  /** Offset of the first held line: nothing from here on has been emitted, so a checkpoint must not pass it. */
  get pendingOffset(): number | undefined {
    return this.group.length > 0 ? this.group[0].offset : undefined
  }

  /**
   * Takes the next line of the source; completed records are appended to `out`. `now` (ms) is
   * when the line arrived, for `flushIfIdle`; a caller framing a whole chunk can pass one reading
   * of the clock for all its lines.
   */
  push(rec: RawRecord, out: RawRecord[], now: number = Date.now()): void {
    // The record may be held past the read whose buffer its bytes point into.
    rec.bytes = undefined
    const verdict = this.rule.next(rec.text)
    const size = rec.end - rec.offset
    if ((verdict & CONTINUES) === 0) {
      if (this.group.length > 0) this.emit(out)
    } else if (this.group.length === 0) {
      // The start of this record was emitted already (timeout) or never seen (the file began here).
      this.fragment = true
    } else if (this.group.length + 1 > this.maxLines || this.bytes + size > this.maxBytes) {
      this.emit(out)
      this.fragment = true
    }
    this.group.push(rec)
    this.bytes += size
    this.lastArrival = now
    if ((verdict & ENDS) !== 0) this.emit(out)
  }

  /** Emits the pending group, if any: the source is finished, or is about to be read again from the start. */
  flush(out: RawRecord[]): void {
    if (this.group.length > 0) this.emit(out)
  }

  /** Emits the pending group if its last line arrived `timeout` ms or more before `now`. */
  flushIfIdle(now: number, out: RawRecord[]): void {
    if (this.group.length > 0 && now - this.lastArrival >= this.timeout) this.emit(out)
  }

  private emit(out: RawRecord[]): void {
    const group = this.group
    const fragment = this.fragment
    this.group = []
    this.bytes = 0
    this.fragment = false
    if (group.length === 1 && !fragment) {
      out.push(group[0])
      return
    }
    const first = group[0]
    const last = group[group.length - 1]
    let text = first.text
    let flags: LogFlag[] | undefined
    for (let i = 0; i < group.length; i++) {
      const rec = group[i]
      if (i > 0) text += (rec.offset > group[i - 1].end ? '\n\n' : '\n') + rec.text
      if (rec.flags !== undefined) {
        flags ??= []
        for (const f of rec.flags) if (!flags.includes(f)) flags.push(f)
      }
    }
    flags ??= []
    flags.push('multiline')
    // A group with a cut line reports the bytes it spans in the source, line breaks included.
    const originalBytes = flags.includes('truncated') ? last.end - first.offset : undefined
    out.push({ text, offset: first.offset, end: last.end, flags, originalBytes })
  }
}

function ruleFor(cfg: MultilineConfig): JoinRule {
  switch (cfg.type) {
    case 'python':
      return new PythonTraceback()
    case 'java':
      return new StackTrace()
    case 'pattern':
      return cfg.match === 'after'
        ? new PatternAfter(compilePattern(cfg.pattern), cfg.negate)
        : new PatternBefore(compilePattern(cfg.pattern), cfg.negate)
  }
}

function isIndented(text: string): boolean {
  const c = text.charCodeAt(0)
  return c === 0x20 || c === 0x09
}

const TRACEBACK = 'Traceback (most recent call last):'
const CAUSE = 'The above exception was the direct cause of the following exception:'
const CONTEXT = 'During handling of the above exception, another exception occurred:'
/** Python 3.11+ prints exception groups indented, with no unindented header or exception line. */
const GROUP_TRACEBACK = /^\s+\+ Exception Group Traceback \(most recent call last\):/
/** `ValueError: msg`, `django.db.utils.OperationalError: msg`, `KeyboardInterrupt`, `__main__.f.<locals>.E: msg`. */
const EXCEPTION_LINE = /^[A-Za-z_][\w.<>]*(?:: |:?$)/

const IDLE = 0 // outside a traceback
const FRAMES = 1 // after `Traceback …:`; the frames are indented, the exception line ends them
const TAIL = 2 // after the exception line; indented lines still belong, so does a chain separator
const CHAINED = 3 // after a chain separator; the next traceback belongs

/**
 * Python tracebacks, as the `logging` module writes them after the record that reported the
 * error (Django's `Internal Server Error: /path`): the traceback joins that record. Python's
 * format says where a traceback ends: its frames are indented, and the first unindented line
 * after them is the exception line `module.ExcType: message`. After that only indented lines
 * (exception groups, notes printed indented) or a chain separator followed by the next
 * traceback belong; any other line begins a new record, even a second line of the exception
 * message — it cannot be told apart from the next log record.
 */
class PythonTraceback implements JoinRule {
  private state = IDLE

  next(text: string): number {
    if (text.startsWith(TRACEBACK)) {
      this.state = FRAMES
      return CONTINUES
    }
    const indented = isIndented(text)
    switch (this.state) {
      case FRAMES:
        if (indented) return CONTINUES
        // Anything else here means the traceback was cut off (the process died mid-write, or
        // another process wrote to the same file): that line starts a new record.
        if (EXCEPTION_LINE.test(text)) {
          this.state = TAIL
          return CONTINUES
        }
        break
      case TAIL:
        if (indented) return CONTINUES
        if (text === CAUSE || text === CONTEXT) {
          this.state = CHAINED
          return CONTINUES
        }
        break
    }
    if (indented && GROUP_TRACEBACK.test(text)) {
      this.state = TAIL
      return CONTINUES
    }
    this.state = IDLE
    return 0
  }
}

/**
 * The lines that continue a Java or Node.js stack trace: frames (`\tat …`, `    at …`), elided
 * frames (`... 12 more`, `... 4 lines matching cause stack trace ...`), `Caused by:` and
 * `Suppressed:`. The exception line above the frames starts the record.
 */
const STACK_CONTINUATION =
  /^(?:\s+at\s|\s*\.\.\. \d+ (?:more|common frames omitted|lines matching)|\s*Caused by:|\s*Suppressed:)/
const STACK_FRAME = /^\s+at\s/

/**
 * Java and Node.js stack traces. Node's `util.inspect` ends the last frame with ` {` when the
 * error has properties (`code: 'ENOENT'`, `[cause]: …`) and prints them indented up to a `}`
 * line; those belong to the trace too.
 */
class StackTrace implements JoinRule {
  private inProperties = false

  next(text: string): number {
    if (this.inProperties) {
      if (text === '}') {
        this.inProperties = false
        return CONTINUES
      }
      if (isIndented(text)) return CONTINUES
      this.inProperties = false
    }
    if (!STACK_CONTINUATION.test(text)) return 0
    if (text.endsWith(' {') && STACK_FRAME.test(text)) this.inProperties = true
    return CONTINUES
  }
}

/** Filebeat `match: after`: a line that matches (with `negate`: does not match) continues the line before it. */
class PatternAfter implements JoinRule {
  constructor(private readonly re: RegExp, private readonly negate: boolean) {}

  next(text: string): number {
    return this.re.test(text) !== this.negate ? CONTINUES : 0
  }
}

/**
 * Filebeat `match: before`: a line that matches (with `negate`: does not match) continues into
 * the line after it. So a line belongs to the record before it when that line matched, and a line
 * that does not match ends its record — which is emitted at once instead of waiting for the next line.
 */
class PatternBefore implements JoinRule {
  private previousLeadsOn = false

  constructor(private readonly re: RegExp, private readonly negate: boolean) {}

  next(text: string): number {
    const joins = this.previousLeadsOn
    this.previousLeadsOn = this.re.test(text) !== this.negate
    return (joins ? CONTINUES : 0) | (this.previousLeadsOn ? 0 : ENDS)
  }
}

/**
 * POSIX character classes as Filebeat's RE2 accepts them inside brackets (`^[[:space:]]` in
 * Filebeat's own examples). JavaScript would read `[[:space:]]` as a different class without
 * complaint, so they are spelt out before compiling.
 */
const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  blank: '\\t ',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
}

function compilePattern(pattern: string | undefined): RegExp {
  if (pattern === undefined || pattern === '') {
    throw new LwError('LW_CONFIG_MISSING_KEY', 'multiline.pattern: required when multiline.type is "pattern"', {
      hint: 'Give the regular expression that marks continuation lines, e.g. pattern: \'^[[:space:]]\'.',
    })
  }
  const source = pattern.replace(/\[:([a-z]+):\]/g, (whole: string, name: string) => POSIX_CLASSES[name] ?? whole)
  try {
    return new RegExp(source)
  } catch (err) {
    throw new LwError('LW_CONFIG_REGEX', `multiline.pattern: ${(err as Error).message}`, {
      hint: 'Write it as a JavaScript regular expression; in YAML, single-quote it so backslashes stay as written.',
    })
  }
}
