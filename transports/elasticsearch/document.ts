/**
 * The bulk document for an entry, and its `_id`. On the hot path: a JSON line keeps its original
 * text and gets the derived fields prefixed (no parse-and-reserialise of what the application
 * wrote); other entries are their flat dotted fields, which Elasticsearch expands into objects.
 */
import { createHash } from 'node:crypto'
import type { Entry, FieldValue } from '../../agent/entry'

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

/** Appends `"key":value` for each field of `fields` not in `skip` and not occupied in the original. */
function derivedPairs(fields: Record<string, FieldValue>, skip: Record<string, FieldValue> | undefined,
  original: Record<string, unknown>, out: string[]): void {
  for (const key in fields) {
    if ((skip !== undefined && key in skip) || occupied(original, key)) continue
    out.push(JSON.stringify(key) + ':' + JSON.stringify(fields[key]))
  }
}

function hasMembers(obj: Record<string, unknown>): boolean {
  for (const key in obj) if (Object.prototype.hasOwnProperty.call(obj, key)) return true
  return false
}

const NEWLINE = /\r?\n/g

/**
 * The document for `entry` as one line of JSON.
 *
 * A JSON entry becomes `{derived fields, <original members>}`: the fields of `entry.fields` and
 * `added` (added wins when both have a key) that the original object does not already carry,
 * then the original text after its opening brace. Neither part repeats a key, so Elasticsearch's
 * strict duplicate-field check never rejects what we build.
 *
 * Other entries become `JSON.stringify` of `{...entry.fields, ...added}`.
 */
export function buildDocument(entry: Entry, added: Record<string, FieldValue>): string {
  const original = entry.object
  if (original === undefined) return JSON.stringify({ ...entry.fields, ...added })
  let text = entry.text
  // Pretty-printed JSON can reach us as one multiline record; a raw newline can only be
  // whitespace between tokens in valid JSON, and the bulk format is one document per line.
  if (text.indexOf('\n') !== -1) text = text.replace(NEWLINE, ' ')
  const brace = text.indexOf('{')
  if (brace === -1) return JSON.stringify({ ...entry.fields, ...added })

  const pairs: string[] = []
  derivedPairs(added, undefined, original, pairs)
  derivedPairs(entry.fields, added, original, pairs)
  if (pairs.length === 0) return brace === 0 ? text : text.slice(brace)
  const rest = text.slice(brace + 1)
  return '{' + pairs.join(',') + (hasMembers(original) ? ',' + rest : rest.trimStart())
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
