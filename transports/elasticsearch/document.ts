/**
 * The bulk document for an entry, and its `_id`. On the hot path: a JSON line keeps its original
 * text and gets the derived fields prefixed (no parse-and-reserialise of what the application
 * wrote); other entries are their flat dotted fields, which Elasticsearch expands into objects.
 */
import { createHash } from 'node:crypto'
import type { Entry, FieldValue } from '../../agent/entry'
import { encodeKey, JsonWriter } from './json-writer'
import { ECS_OBJECT_ROOTS, ECS_OBJECT_TREE, type ObjectTree } from './template'

/** One document on its way to Elasticsearch, with what is needed to ack it or dead-letter it. */
export interface OutDoc {
  /** `documentId(sourceId, offset)`: a replay writes the same `_id`, so `create` answers 409. */
  id: string
  /** The entry's @timestamp (ISO 8601); chooses the dated index. */
  timestamp: string
  /** `buildDocument(...)`: one line of JSON. Unused when `bytes` is set. */
  body: string
  /**
   * The document as bytes instead: `bytes[0, bytesLen)`, followed by `tail[tailStart, tailEnd)`
   * when `tail` is set — the record's own bytes after its opening brace (DocumentBuilder.write
   * with `tail`). Read only during `push`: the caller reuses these buffers.
   */
  bytes?: Buffer
  bytesLen?: number
  tail?: Buffer
  tailStart?: number
  tailEnd?: number
  /**
   * With `tail`: the record's text when it is ASCII, so that its characters are its bytes. The
   * sink then writes the tail from the string, which copies natively and allocates nothing; on
   * Node 20, Buffer#copy of part of a buffer makes a typed-array view per call.
   */
  tailText?: string
  /**
   * The original record text, kept for the dead letters. Or its bytes, `rawBytes[rawStart,
   * rawEnd)` (read only during `push`). With a tail and neither, it is `{` followed by the tail.
   */
  raw?: string
  rawBytes?: Buffer
  rawStart?: number
  rawEnd?: number
  sourceId: string
  offset: number
  end: number
}

/**
 * True when `path` (dotted) cannot be added to `obj` without a clash: the object already has a
 * value there (under any mix of nesting and dotted keys, as Elasticsearch reads both), has a
 * non-object on the way to it, or has something beneath it. The original always wins: a
 * derived field that would collide is left out rather than producing a mapping conflict.
 */
function occupied(obj: Record<string, unknown>, path: string): boolean {
  if (Object.prototype.hasOwnProperty.call(obj, path)) return true
  for (const key in obj) {
    if (key.length > path.length) {
      if (key.charCodeAt(path.length) === 46 /* . */ && key.startsWith(path)) return true
    } else if (key.length < path.length && path.charCodeAt(key.length) === 46 && path.startsWith(key)) {
      const inner = obj[key]
      if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return true
      if (occupied(inner as Record<string, unknown>, path.slice(key.length + 1))) return true
    }
  }
  return false
}

const NEWLINE = /\r?\n/g

/** What the builder needs of a field name, worked out once per name: names repeat on every line. */
interface KeyInfo {
  /** `"key":` as bytes. */
  quoted: Buffer
  /** The name up to its first dot: whether the original object may hold it is a one-property test. */
  root: string
  /** The root is an ECS name (see FIELD_ROOTS): shapeOf tells whether an object has it. */
  ecs: boolean
}

const keyInfos = new Map<string, KeyInfo>()

function keyInfo(key: string): KeyInfo {
  let info = keyInfos.get(key)
  if (info === undefined) {
    const dot = key.indexOf('.')
    const root = dot === -1 ? key : key.slice(0, dot)
    info = { quoted: encodeKey(key), root, ecs: FIELD_ROOTS.has(root) }
    if (keyInfos.size < 10_000) keyInfos.set(key, info)
  }
  return info
}

const LOG_OFFSET = encodeKey('log.offset')

/** Where `build` writes before making its string. */
const scratch = new JsonWriter()

/** Where a JSON log's own plain value under an ECS object name goes, so the document is not refused. */
export const CLASH_PREFIX = 'logwarden.'

const CLASH = 1
const DOTTED = 2
/** The object has no members at all (`{}`). */
const EMPTY = 4
/** The object has a member named as an ECS field's root (`http`, `log`, `message`): derived paths may meet it. */
const ROOTED = 8
/** The parser found no dotted key and no ECS root name at the object's top level (Entry.plain). */
const PLAIN = 16
/** Field names `members` remembers by position (see keyAt): more than any parser derives. */
const KEY_SLOTS = 32

/** The first names of ECS fields: derived fields start with one of them. */
export const FIELD_ROOTS: ReadonlySet<string> = new Set([...ECS_OBJECT_ROOTS, '@timestamp', 'message', 'tags', 'labels'])

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** True when `obj`, found where the template maps the objects of `tree`, has a plain value where an object is mapped. */
function clashesIn(obj: Record<string, unknown>, tree: ObjectTree): boolean {
  for (const key in tree) {
    if (!(key in obj)) continue
    const v = obj[key]
    if (!isPlainObject(v) || clashesIn(v, tree[key]!)) return true
  }
  return false
}

/**
 * One pass over the object's keys: CLASH when it has a plain value where the template maps an
 * object, DOTTED when it has dotted keys (then a derived path may extend or be extended by one
 * of them, and the full `occupied` walk is needed).
 */
function shapeOf(obj: Record<string, unknown>): number {
  let shape = EMPTY
  for (const key in obj) {
    shape &= ~EMPTY
    if (FIELD_ROOTS.has(key)) {
      shape |= ROOTED
      if (ECS_OBJECT_ROOTS.has(key)) {
        const v = obj[key]
        if (!isPlainObject(v) || clashesIn(v, ECS_OBJECT_TREE[key]!)) shape |= CLASH
      }
    } else if (key.indexOf('.') !== -1) {
      shape |= DOTTED
    }
  }
  return shape
}

/** The shape of an object known to have neither dotted keys nor ECS root names: EMPTY or nothing. */
function emptiness(obj: Record<string, unknown>): number {
  for (const _ in obj) return 0
  return EMPTY
}

/** A copy of `obj` without the plain values found where objects are mapped; those go to `moved` under their full path. */
function relocate(obj: Record<string, unknown>, tree: ObjectTree, path: string, moved: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {}
  for (const key in obj) {
    const v = obj[key]
    const sub = tree[key]
    if (sub === undefined) copy[key] = v
    else if (!isPlainObject(v)) moved[CLASH_PREFIX + path + key] = v
    else copy[key] = relocate(v, sub, path + key + '.', moved)
  }
  return copy
}

/** Cheap test first (no dotted keys, and neither the root nor the key is there), the full walk only when needed. */
function free(obj: Record<string, unknown>, key: string, root: string, dotted: boolean): boolean {
  if (!dotted && !(root in obj)) return true
  return !occupied(obj, key)
}

/**
 * Builds the bulk documents of one source. The fields every document of the source carries
 * (service, host, dataset, file path, the input's `fields`) are serialised once; per document
 * only the parser's fields and a few per-entry ones (offset, flags) are added.
 *
 * A JSON entry becomes `{derived fields, <original members>}`: derived fields the original
 * object does not already carry, then the original text after its opening brace — what the
 * application wrote is not re-serialised, and no key is repeated, so Elasticsearch's strict
 * duplicate-field check never refuses it. The parser already leaves out paths the object has;
 * constant and per-entry fields are checked here. When the object holds a plain value under a
 * name the template maps as an object (see ECS_OBJECT_ROOTS), that value is moved to
 * `logwarden.<name>` and the document is serialised from the object instead.
 *
 * Other entries become `{constant, per-entry, parser fields}` with dotted keys, which
 * Elasticsearch expands into objects.
 */
export class DocumentBuilder {
  private readonly keys: string[]
  private readonly roots: string[]
  private readonly values: FieldValue[]
  /** `"k":v,...` of all constant fields, for the common case where none is occupied. */
  private readonly pairs: Buffer
  /** Per field name: what to write, or null for a constant field's name (the constant wins). */
  private readonly known = new Map<string, KeyInfo | null>()
  /**
   * The field names of the last entry, by position, and what `known` said of them. A parser
   * derives the same fields in the same order line after line, so comparing names (the same
   * string objects, a pointer compare) usually answers without a lookup.
   */
  private readonly slotKeys: Array<string | undefined> = new Array(KEY_SLOTS).fill(undefined)
  private readonly slotInfos: Array<KeyInfo | null> = new Array(KEY_SLOTS).fill(null)
  /** Every constant field's first name is an ECS root name, which a plain object has none of. */
  private readonly rootsAreEcs: boolean

  constructor(private readonly constant: Record<string, FieldValue>) {
    this.keys = Object.keys(constant)
    this.roots = this.keys.map((k) => keyInfo(k).root)
    this.values = this.keys.map((k) => constant[k] as FieldValue)
    this.rootsAreEcs = this.roots.every((r) => FIELD_ROOTS.has(r))
    const w = new JsonWriter(256)
    for (let i = 0; i < this.keys.length; i++) {
      if (i > 0) w.comma()
      w.bytes(keyInfo(this.keys[i]!).quoted)
      w.value(this.values[i]!)
    }
    this.pairs = Buffer.from(w.buf.subarray(0, w.at))
  }

  /** The document as one line of JSON text (see write). */
  build(entry: Entry, offset?: number, perEntry?: Record<string, FieldValue>): string {
    scratch.reset()
    this.write(scratch, entry, offset, perEntry, false)
    return scratch.toString()
  }

  /**
   * Writes the document into `w`. `offset` becomes `log.offset` (passed apart from `perEntry`
   * so the common document needs no per-entry object); `perEntry` holds the rarer per-entry
   * fields (flags, parse errors).
   *
   * With `tail`, when the entry is a JSON object on one line that starts with its brace, has
   * members and keeps its shape, only the head is written and true returned: the document is
   * then that head followed by the entry's text after its first character, which the caller
   * has as bytes already (the same document, without encoding the text again).
   */
  write(w: JsonWriter, entry: Entry, offset: number | undefined, perEntry: Record<string, FieldValue> | undefined, tail: boolean): boolean {
    const original = entry.object
    if (original === undefined) {
      this.flat(w, entry.fields, offset, perEntry)
      return false
    }
    let text = entry.text
    if (tail && text.charCodeAt(0) === 123 /* { */ && text.indexOf('\n') === -1) {
      // The parser already looked at every key: a plain object has no dotted key, no ECS root.
      const shape = entry.plain === true ? emptiness(original) | PLAIN : shapeOf(original)
      if ((shape & (CLASH | EMPTY)) === 0) {
        w.byte(123)
        if (this.members(w, original, entry.fields, offset, perEntry, shape)) w.comma()
        return true
      }
    }
    // Pretty-printed JSON can reach us as one multiline record; a raw newline can only be
    // whitespace between tokens in valid JSON, and the bulk format is one document per line.
    if (text.indexOf('\n') !== -1) text = text.replace(NEWLINE, ' ')
    const brace = text.indexOf('{')
    if (brace === -1) {
      this.flat(w, entry.fields, offset, perEntry)
      return false
    }
    const shape = shapeOf(original)
    if ((shape & CLASH) !== 0) {
      w.text(this.moved(original, entry.fields, withOffset(offset, perEntry)))
      return false
    }
    const start = w.at
    w.byte(123)
    if (!this.members(w, original, entry.fields, offset, perEntry, shape)) {
      w.at = start
      w.text(brace === 0 ? text : text.slice(brace))
    } else if ((shape & EMPTY) !== 0) {
      // `{}`: no original members, so no comma after ours.
      w.byte(125)
    } else {
      w.comma()
      w.text(text.slice(brace + 1))
    }
    return false
  }

  /** Writes `"k":v,...` of the fields to add before the original members (those it does not hold already); false when there were none. */
  private members(w: JsonWriter, original: Record<string, unknown>, fields: Record<string, FieldValue>, offset: number | undefined,
    perEntry: Record<string, FieldValue> | undefined, shape: number): boolean {
    const dotted = (shape & DOTTED) !== 0
    // A field can only be taken if the object has a dotted key or a member named as the
    // field's root; without either (most lines), the fields with ECS roots need no check.
    const check = (shape & (DOTTED | ROOTED)) !== 0
    let any = false
    if (!dotted && (((shape & PLAIN) !== 0 && this.rootsAreEcs) || this.constantsFree(original))) {
      if (this.pairs.length > 0) {
        w.bytes(this.pairs)
        any = true
      }
    } else {
      for (let i = 0; i < this.keys.length; i++) {
        const key = this.keys[i]!
        if (occupied(original, key)) continue
        if (any) w.comma()
        w.bytes(keyInfo(key).quoted)
        w.value(this.values[i]!)
        any = true
      }
    }
    if (offset !== undefined && !('log.offset' in this.constant) && free(original, 'log.offset', 'log', dotted)) {
      if (any) w.comma()
      w.bytes(LOG_OFFSET)
      w.number(offset)
      any = true
    }
    if (perEntry !== undefined) {
      for (const key in perEntry) {
        if (key in this.constant) continue
        const info = keyInfo(key)
        if (!free(original, key, info.root, dotted)) continue
        if (any) w.comma()
        w.bytes(info.quoted)
        w.value(perEntry[key]!)
        any = true
      }
    }
    let slot = 0
    for (const key in fields) {
      const info = this.keyAt(slot++, key)
      if (info === null || (perEntry !== undefined && key in perEntry) || key === 'log.offset') continue
      if ((check || !info.ecs) && !free(original, key, info.root, dotted)) continue
      if (any) w.comma()
      w.bytes(info.quoted)
      w.value(fields[key]!)
      any = true
    }
    return any
  }

  /** keyOf for the `slot`-th field of an entry: answered by a pointer compare when the last entry had the same name there. */
  private keyAt(slot: number, key: string): KeyInfo | null {
    if (slot >= KEY_SLOTS) return this.keyOf(key)
    if (this.slotKeys[slot] === key) return this.slotInfos[slot] ?? null
    const info = this.keyOf(key)
    this.slotKeys[slot] = key
    this.slotInfos[slot] = info
    return info
  }

  private keyOf(key: string): KeyInfo | null {
    let info = this.known.get(key)
    if (info === undefined) {
      info = key in this.constant ? null : keyInfo(key)
      if (this.known.size < 1000) this.known.set(key, info)
    }
    return info
  }

  private constantsFree(obj: Record<string, unknown>): boolean {
    for (let i = 0; i < this.roots.length; i++) if (this.roots[i]! in obj) return false
    return true
  }

  private flat(w: JsonWriter, fields: Record<string, FieldValue>, offset: number | undefined, perEntry: Record<string, FieldValue> | undefined): void {
    w.byte(123)
    w.bytes(this.pairs)
    let any = this.pairs.length > 0
    if (offset !== undefined && !('log.offset' in this.constant)) {
      if (any) w.comma()
      w.bytes(LOG_OFFSET)
      w.number(offset)
      any = true
    }
    if (perEntry !== undefined) {
      for (const key in perEntry) {
        if (key in this.constant) continue
        if (any) w.comma()
        w.bytes(keyInfo(key).quoted)
        w.value(perEntry[key]!)
        any = true
      }
    }
    for (const key in fields) {
      if (key in this.constant || (perEntry !== undefined && key in perEntry) || (offset !== undefined && key === 'log.offset')) continue
      if (any) w.comma()
      w.bytes(keyInfo(key).quoted)
      w.value(fields[key]!)
      any = true
    }
    w.byte(125)
  }

  /** The rare path: re-serialise, with plain values found where the template maps objects moved aside. */
  private moved(original: Record<string, unknown>, fields: Record<string, FieldValue>, perEntry: Record<string, FieldValue> | undefined): string {
    const moved: Record<string, unknown> = {}
    const copy = relocate(original, ECS_OBJECT_TREE, '', moved)
    Object.assign(copy, moved)
    const derived: Record<string, unknown> = {}
    const add = (key: string, v: FieldValue): void => { if (!(key in derived) && !occupied(copy, key)) derived[key] = v }
    for (let i = 0; i < this.keys.length; i++) add(this.keys[i]!, this.values[i]!)
    if (perEntry !== undefined) for (const key in perEntry) add(key, perEntry[key]!)
    for (const key in fields) add(key, fields[key]!)
    return JSON.stringify(Object.assign(derived, copy))
  }
}

/**
 * The document for `entry` as one line of JSON, `added` taking the place of the constant fields
 * (see DocumentBuilder, which the pipeline keeps per source so the constant part is built once).
 */
export function buildDocument(entry: Entry, added: Record<string, FieldValue>): string {
  return new DocumentBuilder(added).build(entry)
}

function withOffset(offset: number | undefined, perEntry: Record<string, FieldValue> | undefined): Record<string, FieldValue> | undefined {
  return offset === undefined ? perEntry : { 'log.offset': offset, ...perEntry }
}

/** Source ids are few and long-lived; a bound keeps a years-long run of rotations from growing it. */
const SOURCE_HASH_LIMIT = 10_000
const sourceHashes = new Map<string, string>()

/** The part of a document `_id` that names the source: documentId is it, `-`, and the offset in base 36. */
export function sourceHash(sourceId: string): string {
  let hash = sourceHashes.get(sourceId)
  if (hash === undefined) {
    if (sourceHashes.size >= SOURCE_HASH_LIMIT) sourceHashes.clear()
    // 96 bits of SHA-256: collisions between sources are out of reach; the offset part is exact.
    hash = createHash('sha256').update(sourceId).digest('base64url').slice(0, 16)
    sourceHashes.set(sourceId, hash)
  }
  return hash
}

/**
 * The document `_id`: a hash of the source identity joined to the byte offset in base 36.
 * Deterministic (a replay produces the same id), unique per (source, offset) by construction,
 * and short (at most 28 characters), which keeps the `_id` index small.
 */
export function documentId(sourceId: string, offset: number): string {
  return sourceHash(sourceId) + '-' + offset.toString(36)
}
