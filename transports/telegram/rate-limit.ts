/**
 * Telegram's sending limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
 * about one message per second in a chat, twenty per minute in a group, thirty per second overall.
 * Going over them earns a 429 and, repeated, a longer ban, so the notifier waits for a free slot
 * before every call instead of finding out.
 *
 * Each limit is a sliding window ("at most `limit` calls in any `windowMs`"), which is exactly what
 * Telegram states, unlike a token bucket whose burst lets 40 messages into a minute of a group. A
 * call holds its slot from start to finish and the window counts from when it finished: Telegram
 * sees a request somewhere between the two, so counting from the end keeps the spacing Telegram
 * measures at least `windowMs / limit`, whatever the latency. Waiting never drops anything.
 */

export interface WindowLimit {
  limit: number
  windowMs: number
}

export interface RateLimits {
  /** Any chat (Telegram: about 1 per second). */
  perChat: WindowLimit
  /** Groups, supergroups and channels, i.e. negative ids and @usernames (Telegram: 20 per minute). */
  perGroup: WindowLimit
  /** All chats together (Telegram: 30 per second). */
  global: WindowLimit
}

export const TELEGRAM_LIMITS: RateLimits = {
  perChat: { limit: 1, windowMs: 1_000 },
  perGroup: { limit: 20, windowMs: 60_000 },
  global: { limit: 30, windowMs: 1_000 },
}

interface Slot {
  /** When the call finished; Infinity while it runs. */
  until: number
}

class SlidingWindow {
  private slots: Slot[] = []

  constructor(private readonly spec: WindowLimit) {}

  /** ms until a slot is free at `now`: 0 = free now; Infinity = only running calls hold the window. */
  waitMs(now: number): number {
    this.slots = this.slots.filter((s) => s.until + this.spec.windowMs > now)
    if (this.slots.length < this.spec.limit) return 0
    const ends = this.slots.map((s) => s.until).sort((a, b) => a - b)
    const freeing = ends[ends.length - this.spec.limit] as number
    return freeing === Infinity ? Infinity : freeing + this.spec.windowMs - now
  }

  take(): Slot {
    const slot = { until: Infinity }
    this.slots.push(slot)
    return slot
  }
}

export class TelegramRateLimiter {
  private readonly global: SlidingWindow
  private readonly chats = new Map<string, SlidingWindow>()
  private readonly groups = new Map<string, SlidingWindow>()
  private wakers: Array<() => void> = []

  constructor(private readonly limits: RateLimits = TELEGRAM_LIMITS) {
    this.global = new SlidingWindow(limits.global)
  }

  /**
   * Waits until a call to `chatId` is within every limit, takes the slots, and returns the
   * function to call when the request is over (answered, failed or timed out).
   */
  async acquire(chatId: number | string): Promise<() => void> {
    const key = String(chatId)
    const windows = [this.global, this.window(this.chats, key, this.limits.perChat)]
    if (typeof chatId === 'string' ? !/^\d+$/.test(chatId) : chatId < 0) windows.push(this.window(this.groups, key, this.limits.perGroup))
    for (;;) {
      const now = Date.now()
      const wait = Math.max(...windows.map((w) => w.waitMs(now)))
      if (wait <= 0) {
        const slots = windows.map((w) => w.take())
        return () => {
          const at = Date.now()
          for (const s of slots) s.until = at
          this.wake()
        }
      }
      await this.sleep(wait)
    }
  }

  private window(map: Map<string, SlidingWindow>, key: string, spec: WindowLimit): SlidingWindow {
    let w = map.get(key)
    if (w === undefined) {
      w = new SlidingWindow(spec)
      map.set(key, w)
    }
    return w
  }

  /** Until `ms` passed or some call finished (which may free a slot earlier than a timer knows). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => {
        clearTimeout(timer)
        this.wakers = this.wakers.filter((w) => w !== done)
        resolve()
      }
      if (ms !== Infinity) timer = setTimeout(done, ms)
      this.wakers.push(done)
    })
  }

  private wake(): void {
    const wakers = this.wakers
    this.wakers = []
    for (const w of wakers) w()
  }
}
