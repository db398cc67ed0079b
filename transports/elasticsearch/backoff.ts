/**
 * How long to wait before a retry. Exponential growth from `initial` up to `max`, with "equal
 * jitter" (half fixed, half random) so that many agents recovering from the same outage do not
 * retry in lockstep, while each wait still grows steadily.
 */

/** The wait (ms) before retry number `attempt` (1 = the first retry). */
export function backoffDelay(attempt: number, initial: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, initial * 2 ** Math.min(Math.max(attempt - 1, 0), 30))
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}

/**
 * Elasticsearch (or a proxy in front of it) may say when to come back. Honoured, but never
 * beyond this bound: a misconfigured proxy answering `Retry-After: 86400` must not stall
 * shipping for a day.
 */
export const RETRY_AFTER_LIMIT_MS = 5 * 60_000

/**
 * A `Retry-After` header in ms: either delay-seconds or an HTTP date. Undefined when absent or
 * unreadable.
 */
export function retryAfterMs(header: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined || value.trim() === '') return undefined
  const trimmed = value.trim()
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now
  if (Number.isNaN(ms)) return undefined
  return Math.min(Math.max(ms, 0), RETRY_AFTER_LIMIT_MS)
}

/** The wait before a retry: the backoff, or longer when the server asked for longer. */
export function retryDelay(attempt: number, initial: number, max: number, retryAfter: number | undefined,
  random: () => number = Math.random): number {
  const delay = backoffDelay(attempt, initial, max, random)
  return retryAfter !== undefined && retryAfter > delay ? retryAfter : delay
}
