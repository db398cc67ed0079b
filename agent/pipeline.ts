import { hostname } from 'node:os'
import type { FileInputConfig, ServiceConfig } from './config/types'
import type { Entry, FieldValue, LogFlag, Parser, ParseContext, ParseResult, RawRecord } from './entry'
import type { HarvestedSource, RecordConsumer } from './inputs/file/harvester'
import type { Logger } from './logger'
import { detectFormat } from './parsers/detect'
import { parserFor } from './parsers/index'
import { DocumentBuilder, sourceHash, type OutDoc } from '../transports/elasticsearch/document'
import type { JsonWriter } from '../transports/elasticsearch/json-writer'
import type { AckedDoc } from '../transports/elasticsearch/sink'

/** What the pipeline needs of the Elasticsearch sink: a bounded buffer it can wait on. */
export interface DocSink {
  /**
   * Starts a document: returns the writer to write its JSON with (in place, in the sink's buffer).
   * The `_id` is documentId(source, offset): `id` is the source's hash (sourceHash).
   */
  begin(id: string, timestamp: string, offset: number): JsonWriter
  /** Ends the document begun: its tail, raw text and position from `doc`, which the caller reuses afterwards. */
  finish(doc: OutDoc): void
  readonly pendingBytes: number
  waitBelow(bytes: number): Promise<void>
  /** Nothing more is coming for now: send what is queued as soon as a request slot is free. */
  idle(): void
}

/** The rules' side of the pipeline (agent/alerting.ts). */
export interface EntryEvaluator {
  evaluate(entry: Entry, now: number): void
}

export interface PipelineOptions {
  service: ServiceConfig
  /** Bytes of documents held between reading and acknowledgement; reading waits above it. */
  memoryLimit: number
  log: Logger
  /** Alert rules, evaluated on every entry as it is read. */
  rules?: EntryEvaluator
}

interface SourceState {
  source: HarvestedSource
  /** Records came since the source last said it had read everything there was. */
  behind: boolean
  parser: Parser | undefined
  format: string
  ctx: ParseContext
  /** Builds documents with the fields every document of this source gets (service, host, dataset, path, the input's `fields`). */
  builder: DocumentBuilder | undefined
  /** The fields every document of the source gets; also what rules see as `entry.source`. */
  constant: Record<string, FieldValue>
  /** The path the builder was made for (a renamed file gets a new one). */
  builtFor: string
  /** sourceHash(sourceId): the first part of every document `_id` of the source. */
  idHead: string
}

/** How many records of a file `format: auto` looks at before choosing a parser. */
const DETECT_SAMPLE = 20

/**
 * The per-entry path: parse once, make the document from the original text (the parser's
 * derived fields prefixed, see transports/elasticsearch/document.ts), give it the id derived from
 * its source position, and hand it to the sink. Acknowledgements come back through `onAck` and
 * are routed to the source's tracker, which is what lets the checkpoint advance.
 */
export class Pipeline implements RecordConsumer {
  private readonly sources = new Map<string, SourceState>()
  private readonly host = hostname()
  /** Sources with records read since they last caught up (see caughtUp). */
  private behind = 0
  /** The chunk being accepted, parsed: its entries and their parse results (empty between calls). */
  private readonly chunkEntries: Entry[] = []
  private readonly chunkResults: ParseResult[] = []
  /** One document object, filled in for each entry: the sink copies what it keeps. */
  private readonly doc: OutDoc = {
    id: '', timestamp: '', body: '', sourceId: '', offset: 0, end: 0,
    bytes: undefined, bytesLen: 0, tail: undefined, tailStart: 0, tailEnd: 0, tailText: undefined, raw: undefined, rawBytes: undefined, rawStart: 0, rawEnd: 0,
  }
  /** Entries shipped, per flag, for status and tests. */
  readonly counts = { entries: 0, parseErrors: 0, truncated: 0, invalidUtf8: 0 }

  constructor(private readonly sink: DocSink, private readonly opts: PipelineOptions) {}

  attach(source: HarvestedSource): void {
    const input: FileInputConfig = source.input
    if (this.sources.get(source.sourceId)?.behind === true) this.behind--
    this.sources.set(source.sourceId, {
      source,
      behind: false,
      parser: input.format === 'auto' ? undefined : parserFor(input.format),
      format: input.format,
      ctx: { timezone: input.timezone },
      builder: undefined,
      constant: {},
      builtFor: '',
      idHead: sourceHash(source.sourceId),
    })
  }

  private builderFor(state: SourceState): DocumentBuilder {
    const { source } = state
    if (state.builder === undefined || state.builtFor !== source.path) {
      const constant: Record<string, FieldValue> = {
        'service.name': this.opts.service.name,
        'host.name': this.host,
        'event.dataset': source.input.dataset ?? `${this.opts.service.name}.${state.format}`,
        'log.file.path': source.path,
      }
      if (this.opts.service.environment) constant['service.environment'] = this.opts.service.environment
      Object.assign(constant, source.input.fields)
      state.builder = new DocumentBuilder(constant)
      state.constant = constant
      state.builtFor = source.path
    }
    return state.builder
  }

  detach(source: HarvestedSource): void {
    if (this.sources.get(source.sourceId)?.behind === true) this.behind--
    this.sources.delete(source.sourceId)
  }

  /** The sink's acknowledgement callback: the documents are durable. */
  onAck = (docs: readonly AckedDoc[]): void => {
    for (const d of docs) this.sources.get(d.sourceId)?.source.tracker.ack(d.offset)
  }

  room(): Promise<void> {
    if (this.sink.pendingBytes < this.opts.memoryLimit) return Promise.resolve()
    return this.sink.waitBelow(this.opts.memoryLimit)
  }

  /**
   * A source has read all there is for now. Once every source has, what is queued is sent
   * without waiting for its batch to fill: nothing more is coming soon.
   */
  caughtUp(source: HarvestedSource): void {
    const state = this.sources.get(source.sourceId)
    if (state !== undefined && state.behind) {
      state.behind = false
      this.behind--
    }
    if (this.behind === 0) this.sink.idle()
  }

  hasRoom(): boolean {
    return this.sink.pendingBytes < this.opts.memoryLimit
  }

  get readAhead(): boolean {
    return this.opts.rules !== undefined
  }

  accept(records: RawRecord[], source: HarvestedSource): void {
    const state = this.sources.get(source.sourceId)
    if (!state) throw new Error(`LW_INTERNAL: records from ${source.path} arrived before its source was attached`)
    if (!state.behind) {
      state.behind = true
      this.behind++
    }
    if (!state.parser) {
      const sample = records.slice(0, DETECT_SAMPLE).map((r) => r.text)
      state.format = detectFormat(sample)
      state.parser = parserFor(state.format as Exclude<FileInputConfig['format'], 'auto'>)
      this.opts.log.info({ path: source.path, format: state.format }, 'detected the log format')
    }
    const parser = state.parser
    const builder = this.builderFor(state)
    const constant = state.constant
    const rules = this.opts.rules
    const rulesFrom = source.rulesFrom
    const nowMs = Date.now()
    const now = new Date(nowMs).toISOString()
    if (!source.shipping) {
      // Reading ahead while Elasticsearch is full: the rules see the entries, nothing is shipped.
      for (const rec of records) {
        if (rules !== undefined && rec.offset >= rulesFrom) {
          rules.evaluate(entryOf(rec, parser(rec.text, state.ctx), rec.flags, source.sourceId, constant), nowMs)
        }
        if (rec.end > source.rulesPos) source.rulesPos = rec.end
      }
      return
    }
    // The chunk is parsed whole, the rules see its entries, and then its documents are written:
    // each stage's code and data stay in the caches for the whole chunk, and the rules find the
    // entries still there from parsing. Against writing each document as its line is parsed and
    // running the rules after the chunk, this took less main-thread CPU with the built-in packs
    // in 13 of 18 interleaved pairs of runs (0.26 and 0.63 s less per million lines on average in
    // two series), and without rules in 5 of 6 (0.41 s less).
    const entries = this.chunkEntries
    const results = this.chunkResults
    try {
      for (const rec of records) {
        const res = parser(rec.text, state.ctx)
        const flags: LogFlag[] | undefined = res.error === undefined ? rec.flags : rec.flags ? [...rec.flags, 'parse_error'] : ['parse_error']
        results.push(res)
        entries.push(entryOf(rec, res, flags, source.sourceId, constant))
      }
      // Nothing waits on the rules: the chunk's documents are acknowledged asynchronously, later.
      if (rules !== undefined) {
        for (let i = 0; i < entries.length; i++) if (entries[i]!.offset >= rulesFrom) rules.evaluate(entries[i]!, nowMs)
      }
      for (let i = 0; i < records.length; i++) this.write(records[i]!, results[i]!, entries[i]!, state.idHead, builder, now)
    } finally {
      entries.length = 0
      results.length = 0
    }
    const last = records[records.length - 1]
    if (last !== undefined && last.end > source.rulesPos) source.rulesPos = last.end
  }

  /** Writes one entry's document into the sink's buffer. */
  private write(rec: RawRecord, res: ParseResult, entry: Entry, idHead: string, builder: DocumentBuilder, now: string): void {
    // Per-entry fields beyond the offset are rare (flags, parse errors): no object unless needed.
    let added: Record<string, FieldValue> | undefined
    const flags = entry.flags
    if (res.error !== undefined) {
      added = { 'logwarden.parse_error': res.error }
      this.counts.parseErrors++
    }
    if (flags) {
      added ??= {}
      added['log.flags'] = flags
      if (flags.includes('truncated')) this.counts.truncated++
      if (flags.includes('invalid_utf8')) this.counts.invalidUtf8++
    }
    if (rec.originalBytes !== undefined) (added ??= {})['logwarden.line_bytes'] = rec.originalBytes
    let timestamp: FieldValue | undefined = res.fields['@timestamp']
    if (timestamp === undefined && res.object) timestamp = res.object['@timestamp'] as FieldValue | undefined
    if (typeof timestamp !== 'string') {
      // Data streams require @timestamp; an entry that carries none is stamped when read.
      if (timestamp === undefined) (added ??= {})['@timestamp'] = now
      timestamp = typeof timestamp === 'number' ? new Date(timestamp).toISOString() : now
    }
    const doc = this.doc
    doc.timestamp = timestamp
    doc.sourceId = entry.sourceId
    doc.offset = rec.offset
    doc.end = rec.end
    const bytes = rec.bytes
    // Written in place, in the sink's buffer. The common JSON line: a head of derived fields,
    // then (finish appends it) the line's own bytes after its brace.
    const w = this.sink.begin(idHead, timestamp, rec.offset)
    const tail = builder.write(w, entry, rec.offset, added, bytes !== undefined)
    doc.tail = tail ? bytes : undefined
    // Valid UTF-8 has as many characters as bytes only when it is ASCII.
    doc.tailText = tail && rec.text.length === (rec.bytesEnd as number) - (rec.bytesStart as number) ? rec.text : undefined
    doc.tailStart = (rec.bytesStart as number) + 1
    doc.tailEnd = rec.bytesEnd
    doc.raw = tail || bytes !== undefined ? undefined : rec.text
    doc.rawBytes = tail ? undefined : bytes
    doc.rawStart = rec.bytesStart
    doc.rawEnd = rec.bytesEnd
    this.sink.finish(doc)
    this.counts.entries++
  }
}

/** The entry a record and its parse make, as the rules and the document builder see it. */
function entryOf(rec: RawRecord, res: ParseResult, flags: LogFlag[] | undefined, sourceId: string, source: Record<string, FieldValue>): Entry {
  return {
    sourceId, offset: rec.offset, end: rec.end, text: rec.text,
    fields: res.fields, object: res.object, flat: res.flat, plain: res.plain, flags, source,
  }
}
