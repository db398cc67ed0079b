/**
 * Bytes to lines: the per-line hot path of the agent.
 *
 * The file reader hands over chunks read at known offsets; each complete line becomes one
 * RawRecord with its exact byte position, so a document `_id` derived from the offset is the same
 * on every replay. Newlines are found in the bytes (memchr via `indexOf`), each line is decoded
 * once, and the only per-line allocations are the string and the record; a flags array exists
 * only on a flagged line. Work that does not depend on the line (is the chunk pure ASCII? where
 * are its NUL bytes?) is done once per chunk by native scans.
 */
import { isAscii, isUtf8 } from 'node:buffer'
import type { LogFlag, RawRecord } from '../entry'
import { LwError } from '../errors'

const LF = 0x0a
const CR = 0x0d

/**
 * When a line is `binary`: it holds a NUL (text never does; binary files and the hole a
 * copytruncate leaves do), or it is not valid UTF-8 and holds another C0 control byte. Valid
 * text with a stray control (FIX messages separate fields with SOH, terminal captures keep
 * backspaces) is text. The rule keeps the hot path cheap: NUL is one native scan per chunk; the
 * other controls are looked for only in lines already known to be invalid, which are rare.
 * Tab, CR (progress output) and ESC (ANSI colours) are never counted.
 */
const IS_CONTROL = new Uint8Array(256)
for (let b = 0; b < 0x20; b++) IS_CONTROL[b] = 1
IS_CONTROL[0x09] = IS_CONTROL[0x0d] = IS_CONTROL[0x1b] = 0

/** A partial-line buffer bigger than this is released after its line is emitted, so an idle file does not pin a long line's memory. */
const KEEP_CARRY_BYTES = 64 * 1024

export class LineSplitter {
  private readonly max: number
  /** Absolute offset of the first byte of the line being assembled (= the resume position). */
  private lineStart: number
  /** Absolute offset of the next byte `push` will receive. */
  private nextOffset: number

  /**
   * The partial line at the end of the last chunk. Only its first `max + 1` bytes are kept:
   * enough to emit the cut text and to see whether the cut splits a character; the rest of an
   * over-long line is only counted, so a 1 GB line costs 1 MiB of memory.
   */
  private carry: Buffer | null = null
  private carryLen = 0
  /** Bytes of the partial line seen so far, kept or not. 0 = no partial line. */
  private lineLen = 0
  /** Last byte of the partial line: a CR there belongs to a CRLF split across chunks. */
  private lastByte = 0

  constructor(startOffset: number, maxLineBytes: number) {
    // Four bytes hold any UTF-8 character, so a cut line always keeps at least one whole character.
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 4) {
      throw new LwError('LW_CONFIG_VALUE', `max_line_bytes: ${maxLineBytes} is not a whole number of bytes of at least 4`, {
        hint: 'Set it to a size such as "1MiB"; a line longer than that is cut and flagged truncated.',
      })
    }
    this.max = maxLineBytes
    this.lineStart = startOffset
    this.nextOffset = startOffset
  }

  /** Offset of the first byte not yet emitted: where reading must resume after a restart. */
  get position(): number {
    return this.lineStart
  }

  /** Frames the next chunk of the source; complete lines are appended to `out`. */
  push(chunk: Buffer, out: RawRecord[]): void {
    const base = this.nextOffset
    this.nextOffset = base + chunk.length
    let from = 0
    if (this.lineLen > 0) {
      const nl = chunk.indexOf(LF)
      if (nl === -1) {
        this.keep(chunk, 0, chunk.length)
        return
      }
      this.keep(chunk, 0, nl)
      this.emitCarry(base + nl + 1, out)
      from = nl + 1
    }

    // A pure-ASCII chunk (the common case, checked natively at memory speed) decodes as latin1,
    // which is faster than UTF-8 and cannot produce invalid sequences.
    const ascii = isAscii(chunk)
    const max = this.max
    let nul = nextNul(chunk, from)
    let nl: number
    while ((nl = chunk.indexOf(LF, from)) !== -1) {
      let e = nl
      if (e > from && chunk[e - 1] === CR) e--
      if (e > from) {
        let flags: LogFlag[] | undefined
        let originalBytes: number | undefined
        let cut = e
        if (e - from > max) {
          cut = charBoundary(chunk, from, from + max)
          flags = ['truncated']
          originalBytes = e - from
        }
        const text = ascii ? chunk.toString('latin1', from, cut) : chunk.toString('utf8', from, cut)
        let binary = false
        if (nul < cut) {
          // A NUL before `from` sat in the skipped tail of a cut line, which no record shows.
          if (nul < from) nul = nextNul(chunk, from)
          binary = nul < cut
          if (binary) nul = nextNul(chunk, cut)
        }
        const invalid = !ascii && text.indexOf('\uFFFD') !== -1 && !isUtf8(chunk.subarray(from, cut))
        if (invalid) {
          flags = withFlag(flags, 'invalid_utf8')
          binary ||= hasControl(chunk, from, cut)
        }
        if (binary) flags = withFlag(flags, 'binary')
        out.push({ text, offset: base + from, end: base + nl + 1, flags, originalBytes, bytes: invalid ? undefined : chunk, bytesStart: from, bytesEnd: cut })
      }
      from = nl + 1
    }
    this.lineStart = base + from
    if (from < chunk.length) this.keep(chunk, from, chunk.length)
  }

  /**
   * Emits the partial line as a record ending at the last byte received. For a source that is
   * finished (a one-shot import, a rotated file read to its end): its last line may have no newline.
   */
  flushPartial(out: RawRecord[]): void {
    if (this.lineLen > 0) this.emitCarry(this.lineStart + this.lineLen, out)
  }

  /** Adds bytes of the partial line, keeping at most `max + 1` of them. */
  private keep(src: Buffer, s: number, e: number): void {
    if (e === s) return
    this.lineLen += e - s
    this.lastByte = src[e - 1]
    const take = Math.min(e - s, this.max + 1 - this.carryLen)
    if (take <= 0) return
    const need = this.carryLen + take
    if (this.carry === null || this.carry.length < need) {
      // Grow geometrically, capped at the limit: a long line spanning many chunks is copied O(log n) times.
      const size = Math.min(this.max + 1, Math.max(need, 256, this.carry === null ? 0 : this.carry.length * 2))
      const grown = Buffer.allocUnsafe(size)
      if (this.carry !== null) this.carry.copy(grown, 0, 0, this.carryLen)
      this.carry = grown
    }
    src.copy(this.carry, this.carryLen, s, s + take)
    this.carryLen = need
  }

  /** Emits the assembled partial line, which ends (newline included) at absolute offset `end`. */
  private emitCarry(end: number, out: RawRecord[]): void {
    const fullLen = this.lastByte === CR ? this.lineLen - 1 : this.lineLen
    const buf = this.carry
    if (fullLen > 0 && buf !== null) {
      let flags: LogFlag[] | undefined
      let originalBytes: number | undefined
      let cut = Math.min(this.carryLen, fullLen)
      if (fullLen > this.max) {
        cut = charBoundary(buf, 0, this.max)
        flags = ['truncated']
        originalBytes = fullLen
      }
      const text = buf.toString('utf8', 0, cut)
      // A line crosses a chunk boundary about once per chunk, so plain scans cost little here.
      let binary = buf.subarray(0, cut).indexOf(0) !== -1
      const invalid = text.indexOf('\uFFFD') !== -1 && !isUtf8(buf.subarray(0, cut))
      if (invalid) {
        flags = withFlag(flags, 'invalid_utf8')
        binary ||= hasControl(buf, 0, cut)
      }
      if (binary) flags = withFlag(flags, 'binary')
      // No bytes: the carry buffer takes the next partial line before this push returns.
      out.push({ text, offset: this.lineStart, end, flags, originalBytes, bytes: undefined, bytesStart: 0, bytesEnd: 0 })
    }
    this.lineStart = end
    this.lineLen = 0
    this.carryLen = 0
    this.lastByte = 0
    if (buf !== null && buf.length > KEEP_CARRY_BYTES) this.carry = null
  }
}

/** Position of the next NUL at or after `from`; Infinity when there is none. */
function nextNul(buf: Buffer, from: number): number {
  const at = buf.indexOf(0, from)
  return at === -1 ? Infinity : at
}

function hasControl(buf: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (IS_CONTROL[buf[i]] === 1) return true
  return false
}

/**
 * Where to cut buf[s, cut + …) so the text keeps no half character: if the byte at `cut`
 * continues a character that started before it, the cut moves back to that character's lead
 * byte. Invalid sequences are left as they are (they decode to U+FFFD either way).
 */
function charBoundary(buf: Buffer, s: number, cut: number): number {
  if ((buf[cut] & 0xc0) !== 0x80) return cut
  const limit = Math.max(s, cut - 3)
  for (let i = cut - 1; i >= limit; i--) {
    const b = buf[i]
    if ((b & 0xc0) === 0x80) continue
    const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1
    return i + len > cut ? i : cut
  }
  return cut
}

function withFlag(flags: LogFlag[] | undefined, flag: LogFlag): LogFlag[] {
  if (flags === undefined) return [flag]
  flags.push(flag)
  return flags
}
