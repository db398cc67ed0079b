/**
 * Dead letters: documents Elasticsearch refused for good (a mapping conflict, an unparsable
 * value). They are never dropped: each is appended to `<state_dir>/deadletter.ndjson` and
 * fsynced before its offset may move, then copied into the dead-letter index where people can
 * search them. The local file is the record of truth; the index is a convenience.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { OutDoc } from './document'
import type { ItemResult } from './bulk-response'

/** One line of deadletter.ndjson. */
export interface DeadLetter {
  time: string
  /** The index the document was meant for. */
  index: string
  _id: string
  status: number
  error: { type?: string; reason?: string }
  source: { id: string; offset: number }
  /** The original record text. */
  raw: string
  /** The document as it was sent (a string: it may be exactly what did not parse). */
  document: string
}

/** What a dead letter keeps of a document: its texts decoded again from the bytes that were sent. */
export type RefusedDoc = Pick<OutDoc, 'id' | 'sourceId' | 'offset' | 'body'> & { raw: string }

export function deadLetterOf(doc: RefusedDoc, index: string, result: Pick<ItemResult, 'status' | 'errorType' | 'reason'>,
  now: Date = new Date()): DeadLetter {
  return {
    time: now.toISOString(),
    index,
    _id: doc.id,
    status: result.status,
    error: { type: result.errorType, reason: result.reason },
    source: { id: doc.sourceId, offset: doc.offset },
    raw: doc.raw,
    document: doc.body
  }
}

/**
 * The NDJSON bulk body that copies dead letters into the dead-letter index, each under the
 * `_id` of its document (`create`: copying twice is harmless). `_id` is a metadata field and
 * cannot be inside the source; the record's time becomes `@timestamp`.
 */
export function deadLetterBulk(index: string, letters: DeadLetter[]): string {
  let out = ''
  for (const { _id, time, ...rest } of letters) {
    out += JSON.stringify({ create: { _index: index, _id } }) + '\n' + JSON.stringify({ '@timestamp': time, ...rest }) + '\n'
  }
  return out
}

/** Appends dead letters to one file, each append fsynced before it resolves. */
export class DeadLetterFile {
  private handle: Promise<FileHandle> | undefined
  /** Appends run one after another, so lines of concurrent batches never interleave. */
  private tail: Promise<void> = Promise.resolve()

  constructor(readonly path: string) {}

  /** Resolves once the letters are on disk (written and fsynced); rejects if they are not. */
  append(letters: DeadLetter[]): Promise<void> {
    let text = ''
    for (const letter of letters) text += JSON.stringify(letter) + '\n'
    const write = this.tail.then(async () => {
      const handle = await this.open()
      await handle.appendFile(text, 'utf8')
      await handle.sync()
    })
    // A failed append must not poison the ones after it: each reports its own outcome.
    this.tail = write.catch(() => undefined)
    return write
  }

  async close(): Promise<void> {
    await this.tail
    const handle = this.handle
    this.handle = undefined
    if (handle !== undefined) await (await handle).close()
  }

  private open(): Promise<FileHandle> {
    if (this.handle === undefined) {
      const opening = mkdir(dirname(this.path), { recursive: true }).then(() => open(this.path, 'a'))
      // A failed open (missing permission, full disk) is retried by the next append.
      opening.catch(() => { if (this.handle === opening) this.handle = undefined })
      this.handle = opening
    }
    return this.handle
  }
}
