/**
 * The shapes that flow through the pipeline: a framed record (bytes made into text, with its
 * position in the source), and the entry a parser makes of it. Kept in one place so every stage
 * agrees on them; see ../shared/design.md for the flow.
 */

/** A value of a derived field. Arrays only for multi-valued ECS fields such as `log.flags`. */
export type FieldValue = string | number | boolean | string[]

/**
 * Made with `new` rather than `{}`: V8 sizes the objects a constructor makes for the most
 * properties its first few dozen received, so a parser's dozen fields live inside the object
 * instead of in a side array grown three slots at a time. Its prototype is Object.prototype:
 * to every other piece of code it is a plain object.
 */
const FieldBag = function FieldBag(): void {} as unknown as new () => Record<string, FieldValue>
FieldBag.prototype = Object.prototype

/** A new, empty set of parsed fields. */
export function newFields(): Record<string, FieldValue> {
  return new FieldBag()
}

/** Why an entry is marked: the values of ECS `log.flags` (the same words Filebeat uses where it has them). */
export type LogFlag = 'truncated' | 'invalid_utf8' | 'multiline' | 'parse_error' | 'binary'

/** One line, or one joined multiline group, as framing hands it on. */
export interface RawRecord {
  /** The text, decoded as UTF-8; invalid sequences are replaced by U+FFFD and flagged. */
  text: string
  /** Byte offset of the record's first byte in its source. */
  offset: number
  /** Byte offset just past the record and its newline: where reading resumes once it is acknowledged. */
  end: number
  /** Flags raised while framing (truncated, invalid_utf8, multiline, binary). Empty array is never allocated: undefined means none. */
  flags?: LogFlag[]
  /** Length in bytes of the record as it was in the source (before a cut), when it was cut. */
  originalBytes?: number
  /**
   * The bytes `text` was decoded from, when it is their exact decoding (no replacement
   * character): `bytes[bytesStart, bytesEnd)`. Lets a document reuse them instead of encoding the
   * text again. Only valid during the synchronous `accept` call that hands the record on (the
   * reader reuses its buffer), so nothing may keep them; holding stages clear them.
   */
  bytes?: Buffer
  bytesStart?: number
  bytesEnd?: number
}

/** What a parser makes of one record's text. */
export interface ParseResult {
  /**
   * ECS fields derived from the text, as dotted paths (`http.response.status_code`). For a JSON
   * line these are only fields the original object does NOT already carry at that path, so the
   * document can be built as `{derived fields, ...original text}` without duplicate keys.
   */
  fields: Record<string, FieldValue>
  /** The parsed object when the text was a JSON object; the document keeps its original text. */
  object?: Record<string, unknown>
  /** True when no top-level key of `object` is dotted (most JSON lines): `a.b.c` can then only be under `a`. */
  flat?: boolean
  /**
   * True when, besides being flat, no top-level key of `object` is the first name of an ECS field
   * (`http`, `log`, `message`, `service`, `tags`, ...): nothing the object holds can meet a derived
   * or constant field, so a document builder need not look (pino lines, most app JSON).
   */
  plain?: boolean
  /** Set when the text looked like the format but did not parse; the entry is shipped as plain text with this reason. */
  error?: string
}

/** Per-input settings a parser needs. */
export interface ParseContext {
  /** IANA zone (e.g. `Europe/Moscow`) for timestamps that carry no zone of their own; default UTC. */
  timezone: string
}

export type Parser = (text: string, ctx: ParseContext) => ParseResult

/** A parsed entry with its source position: what rules see and what becomes a document. */
export interface Entry {
  /** Stable identity of the source (the file's fingerprint id, or a spool segment id). */
  sourceId: string
  /** Byte offset of the entry in its source; with sourceId it makes the document `_id`. */
  offset: number
  /** Byte offset just past the entry. */
  end: number
  /** The record text as read (for JSON lines this is the original JSON the document is built from). */
  text: string
  fields: Record<string, FieldValue>
  object?: Record<string, unknown>
  /** See ParseResult.flat and ParseResult.plain. */
  flat?: boolean
  plain?: boolean
  flags?: LogFlag[]
  /** Fields every entry of its source carries (service.name, host.name, log.file.path, event.dataset, the input's `fields`); shared, not per entry. */
  source?: Record<string, FieldValue>
}
