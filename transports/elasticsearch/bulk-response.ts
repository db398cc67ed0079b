/**
 * What each item of a bulk response means for the document behind it. The request asks for
 * `filter_path=errors,items.*.status,items.*.error`, so a response is small even for large
 * batches: a status per item and an error where there is one.
 */
import { LwError } from '../../agent/errors'
import type { AllCreated } from './serializer'

/**
 * - `created`: written now.
 * - `duplicate`: 409, a document with this `_id` is already there (an earlier attempt got it in).
 * - `retry`: the cluster could not take it now (overload, a shard unavailable, a write block,
 *   missing privileges): the document is fine, send it again later.
 * - `rejected`: the document itself is refused (mapping conflict, unparsable value...):
 *   sending it again cannot help; it goes to the dead letters.
 */
export type ItemOutcome = 'created' | 'duplicate' | 'retry' | 'rejected'

export interface ItemResult {
  outcome: ItemOutcome
  status: number
  /** Elasticsearch's error type and reason, when the item failed. */
  errorType?: string
  reason?: string
}

/**
 * Error types that say "not now" whatever their status: thread-pool rejections, and blocks an
 * operator lifts (flood-stage disk watermark, read-only index).
 */
const TRANSIENT_TYPES = new Set(['es_rejected_execution_exception', 'cluster_block_exception', 'circuit_breaking_exception'])

/**
 * Statuses that are about the cluster or our credentials, not the document: 401/403 are fixed
 * by the operator, 408/429 and 5xx pass on their own. Anything else in 4xx (except 409) is the
 * document's fault.
 */
function transientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408 || status === 401 || status === 403
}

export function classifyItem(status: number, errorType: string | undefined): ItemOutcome {
  if (status >= 200 && status < 300) return 'created'
  if (status === 409) return 'duplicate'
  if (transientStatus(status) || (errorType !== undefined && TRANSIENT_TYPES.has(errorType))) return 'retry'
  return 'rejected'
}

function mismatch(detail: string): LwError {
  return new LwError('LW_ES_BULK_RETRY', `Elasticsearch answered a bulk request with ${detail}`,
    { hint: 'Something between logwarden and Elasticsearch may be altering responses; the batch is sent again.' })
}

interface RawError { type?: unknown; reason?: unknown; caused_by?: RawError }

/** The deepest cause's reason says most ("For input string: \"x\""), the top one where it is. */
function describe(error: RawError | undefined): { errorType?: string; reason?: string } {
  if (error === undefined || error === null || typeof error !== 'object') return {}
  const errorType = typeof error.type === 'string' ? error.type : undefined
  let reason = typeof error.reason === 'string' ? error.reason : undefined
  const cause = error.caused_by
  if (cause && typeof cause === 'object' && typeof cause.reason === 'string' && cause.reason !== reason) {
    reason = reason === undefined ? cause.reason : `${reason}: ${cause.reason}`
  }
  return { errorType, reason }
}

/**
 * One result per item sent, in order. Throws LW_ES_BULK_RETRY when the body is not a bulk
 * response for `count` items (a proxy answering with something else): trusting a partial answer
 * could ack a document that was never written.
 */
export function classifyBulkResponse(body: unknown, count: number): ItemResult[] {
  const created = body !== null && typeof body === 'object' ? (body as Partial<AllCreated>).created : undefined
  if (typeof created === 'number' && (body as AllCreated).errors === false) {
    // Counted by BulkAwareSerializer: every item went in.
    if (created !== count) throw mismatch(`${created} items for ${count} sent`)
    return allCreated(count)
  }
  const items = body !== null && typeof body === 'object' ? (body as { items?: unknown }).items : undefined
  if (!Array.isArray(items) || items.length !== count) {
    throw mismatch(`${Array.isArray(items) ? items.length : 'no'} items for ${count} sent`)
  }
  const results: ItemResult[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const wrapper = items[i] as Record<string, { status?: unknown; error?: RawError } | undefined> | null
    let item: { status?: unknown; error?: RawError } | undefined
    if (wrapper !== null && typeof wrapper === 'object') for (const action in wrapper) { item = wrapper[action]; break }
    const status = item !== undefined && typeof item.status === 'number' ? item.status : undefined
    if (status === undefined) throw mismatch(`no status for item ${i}`)
    const { errorType, reason } = describe(item?.error)
    results[i] = { outcome: classifyItem(status, errorType), status, errorType, reason }
  }
  return results
}

const CREATED: ItemResult = Object.freeze({ outcome: 'created', status: 201 })

/** `count` results of `created`, sharing one frozen result. */
function allCreated(count: number): ItemResult[] {
  return new Array<ItemResult>(count).fill(CREATED)
}
