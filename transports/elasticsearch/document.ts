/**
 * The bulk document for an entry, and its `_id`. On the hot path: a JSON line keeps its original
 * text and gets the derived fields prefixed (no parse-and-reserialise of what the application
 * wrote); other entries are their flat dotted fields, which Elasticsearch expands into objects.
 */
import { createHash } from 'node:crypto'
import type { Entry, FieldValue } from '../../agent/entry'
import { ECS_OBJECT_ROOTS, ECS_OBJECT_TREE, type ObjectTree } from './template'

/** One document on its way to Elasticsearch, with what is needed to ack it or dead-letter it. */
export interface OutDoc {
  /** `documentId(sourceId, offset)`: a replay writes the same `_id`, so `create` answers 409. */
  id: string
  /** The entry's @timestamp (ISO 8601); chooses the dated index. */
  timestamp: string
  /** `buildDocument(...)`: one line of JSON. */
  body: string
  /** The original record text, kept for the dead letters. */
  raw: string
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

/** `"key":` for each key seen: keys repeat on every line, quoting them once is enough. */
const quotedKeys = new Map<string, string>()

function quotedKey(key: string): string {
  let q = quotedKeys.get(key)
  if (q === undefined) {
    q = JSON.stringify(key) + ':'
    if (quotedKeys.size < 10_000) quotedKeys.set(key, q)
  }
  return q
}

/** Characters a JSON string must escape (lone surrogates are left to JSON.stringify too). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

function jsonValue(v: FieldValue): string {
  switch (typeof v) {
    case 'number': return Number.isFinite(v) ? String(v) : 'null'
    case 'boolean': return v ? 'true' : 'false'
    // Most derived values (levels, paths, addresses, times) need no escaping: skip the
    // serialiser for them, it is the dearest step of building a document.
    case 'string': return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : '"' + v + '"'
    default: return JSON.stringify(v)
  }
}

/** Where a JSON log's own plain value under an ECS object name goes, so the document is not refused. */
export const CLASH_PREFIX = 'logwarden.'

const CLASH = 1
const DOTTED = 2

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
  let shape = 0
  for (const key in obj) {
    if (ECS_OBJECT_ROOTS.has(key)) {
      const v = obj[key]
      if (!isPlainObject(v) || clashesIn(v, ECS_OBJECT_TREE[key]!)) shape |= CLASH
    } else if (key.indexOf('.') !== -1) {
      shape |= DOTTED
    }
  }
  return shape
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

const roots = new Map<string, string>()

function rootOf(key: string): string {
  let root = roots.get(key)
  if (root === undefined) {
    const dot = key.indexOf('.')
    root = dot === -1 ? key : key.slice(0, dot)
    if (roots.size < 10_000) roots.set(key, root)
  }
  return root
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
  private readonly pairs: string

  constructor(private readonly constant: Record<string, FieldValue>) {
    this.keys = Object.keys(constant)
    this.roots = this.keys.map(rootOf)
    this.values = this.keys.map((k) => constant[k] as FieldValue)
    this.pairs = this.keys.map((k, i) => quotedKey(k) + jsonValue(this.values[i]!)).join(',')
  }

  /**
   * `offset` becomes `log.offset` (passed apart from `perEntry` so the common document needs no
   * per-entry object); `perEntry` holds the rarer per-entry fields (flags, parse errors).
   */
  build(entry: Entry, offset?: number, perEntry?: Record<string, FieldValue>): string {
    const original = entry.object
    if (original === undefined) return this.flat(entry.fields, offset, perEntry)
    let text = entry.text
    // Pretty-printed JSON can reach us as one multiline record; a raw newline can only be
    // whitespace between tokens in valid JSON, and the bulk format is one document per line.
    if (text.indexOf('\n') !== -1) text = text.replace(NEWLINE, ' ')
    const brace = text.indexOf('{')
    if (brace === -1) return this.flat(entry.fields, offset, perEntry)
    const shape = shapeOf(original)
    if ((shape & CLASH) !== 0) return this.moved(original, entry.fields, withOffset(offset, perEntry))
    const dotted = (shape & DOTTED) !== 0

    let out = ''
    if (!dotted && this.constantsFree(original)) {
      out = this.pairs
    } else {
      for (let i = 0; i < this.keys.length; i++) {
        const key = this.keys[i]!
        if (!occupied(original, key)) out += (out ? ',' : '') + quotedKey(key) + jsonValue(this.values[i]!)
      }
    }
    if (offset !== undefined && !('log.offset' in this.constant) && free(original, 'log.offset', 'log', dotted)) {
      out += (out ? ',"log.offset":' : '"log.offset":') + offset
    }
    if (perEntry !== undefined) {
      for (const key in perEntry) {
        if (key in this.constant || !free(original, key, rootOf(key), dotted)) continue
        out += (out ? ',' : '') + quotedKey(key) + jsonValue(perEntry[key]!)
      }
    }
    const fields = entry.fields
    for (const key in fields) {
      if (key in this.constant || (perEntry !== undefined && key in perEntry) || key === 'log.offset' || !free(original, key, rootOf(key), dotted)) continue
      out += (out ? ',' : '') + quotedKey(key) + jsonValue(fields[key]!)
    }
    if (out === '') return brace === 0 ? text : text.slice(brace)
    let i = brace + 1
    while (i < text.length && text.charCodeAt(i) <= 32) i++
    // `{}`: no original members, so no comma after ours.
    if (text.charCodeAt(i) === 125 /* } */) return '{' + out + '}'
    return '{' + out + ',' + text.slice(brace + 1)
  }

  private constantsFree(obj: Record<string, unknown>): boolean {
    for (let i = 0; i < this.roots.length; i++) if (this.roots[i]! in obj) return false
    return true
  }

  private flat(fields: Record<string, FieldValue>, offset: number | undefined, perEntry: Record<string, FieldValue> | undefined): string {
    let out = this.pairs
    if (offset !== undefined && !('log.offset' in this.constant)) out += (out ? ',"log.offset":' : '"log.offset":') + offset
    if (perEntry !== undefined) {
      for (const key in perEntry) {
        if (key in this.constant) continue
        out += (out ? ',' : '') + quotedKey(key) + jsonValue(perEntry[key]!)
      }
    }
    for (const key in fields) {
      if (key in this.constant || (perEntry !== undefined && key in perEntry) || (offset !== undefined && key === 'log.offset')) continue
      out += (out ? ',' : '') + quotedKey(key) + jsonValue(fields[key]!)
    }
    return '{' + out + '}'
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

function sourceHash(sourceId: string): string {
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
