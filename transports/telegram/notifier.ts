/**
 * Delivers notifications to Telegram through telegraf's Bot API client (`apiRoot` configurable, so
 * tests point it at test/support/telegram-api.ts and a self-hosted Bot API server works too).
 *
 * Per chat of the notification's route: wait for a slot within Telegram's limits (rate-limit.ts),
 * send the HTML message (split when longer than Telegram's limit), and deal with what Telegram
 * answers the way a person would:
 *   - "can't parse entities" → the same message as plain text;
 *   - 429 → wait retry_after and try again (a few times; then the alert goes back to the outbox
 *     with `retryAfter`);
 *   - a group upgraded to a supergroup → send to the new id from now on and warn, so the
 *     configuration gets updated;
 *   - 401, 403, chat not found, topic not found → not retryable: an error naming the chat and
 *     saying what to do;
 *   - 5xx, network errors, no answer within `requestTimeoutMs` → retryable.
 * A notification with `edit` updates the earlier message (editMessageText) while it is younger
 * than `editWindowMs` and was edited fewer than `editBudget` times; otherwise a new message is
 * posted. Messages in a chat go out in order: one chat's calls run one at a time.
 *
 * Chats are keyed in DeliveryResult.messageIds by how they are configured: `chat_id`, or
 * `chat_id/thread_id` for a forum topic (a migrated group keeps its configured key).
 */
import { Telegram } from 'telegraf'
import { LwError } from '../../agent/errors'
import { createLogger, type Logger } from '../../agent/logger'
import type { DeliveryResult, Notification, Notifier, Severity } from '../../rules/model'
import { classifyTelegramError, explainTelegramFailure, isRetryable, type TelegramFailure } from './errors'
import { formatNotification, formatTime, htmlToPlain, type FormatOptions, type FormattedMessage } from './format'
import { LANGUAGES, type Language } from './i18n'
import { TELEGRAM_LIMITS, TelegramRateLimiter, type RateLimits } from './rate-limit'
import { splitHtml, splitPlain } from './split'

export interface TelegramChatTarget {
  /** A numeric chat id (groups negative, supergroups and channels -100...) or a channel's `@username`. */
  chat_id: number | string
  /** A forum topic of a supergroup (message_thread_id). */
  thread_id?: number
}

export interface TelegramRoute {
  chats: TelegramChatTarget[]
  language: Language
  /** IANA zone for times in messages. */
  timezone: string
  /** Severities below this one are delivered without sound (disable_notification). */
  silent_below?: Severity
}

export interface TelegramNotifierOptions {
  token: string
  /** Bot API root; default https://api.telegram.org. */
  apiRoot?: string
  routes: Record<string, TelegramRoute>
  /** Adds an "Open in Kibana" Discover link to messages. */
  kibanaUrl?: string
  kibanaDataView?: string
  /** An edit is made only while the message is younger than this (ms); default 1 h. */
  editWindowMs?: number
  /** At most this many edits per message; then the next update is a new message. Default 20. */
  editBudget?: number
  /** Telegram's limits (defaults: TELEGRAM_LIMITS); smaller windows make tests short. */
  limits?: RateLimits
  /** Calls per message part on 429 before the alert goes back to the outbox; default 3. */
  maxAttempts?: number
  /** A retry_after longer than this (ms) is not waited out here: the outbox retries later. Default 60 s. */
  maxRetryWaitMs?: number
  /** A call without an answer in this time (ms) is abandoned and retryable; default 30 s. */
  requestTimeoutMs?: number
  /** A long message is split into at most this many messages, the last one cut; default 3. */
  maxParts?: number
  logger?: Logger
  /** Time for the edit window (tests move it); default Date.now. */
  clock?: () => number
}

type ChatOutcome =
  | { ok: true; messageId: number }
  | { ok: false; failure: TelegramFailure; error: string }

type CallResult = { ok: true; messageId: number } | { ok: false; failure: TelegramFailure }

type SendOpts = Parameters<typeof Telegram.prototype.callApi<'sendMessage'>>[1]
type EditOpts = Parameters<typeof Telegram.prototype.callApi<'editMessageText'>>[1]
/** The two calls the notifier makes; chat_id is added per attempt (it changes when a group migrates). */
type ApiCall =
  | { method: 'sendMessage'; payload: Omit<SendOpts, 'chat_id'> }
  | { method: 'editMessageText'; payload: Omit<EditOpts, 'chat_id'> }

interface EditRecord {
  sentAt: number
  edits: number
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2, critical: 3 }
/** Notification ids remembered with the chats that already got them, so an outbox retry after a partial failure does not post twice. */
const DELIVERED_MEMORY = 1000
/** A migration answer for the id just migrated to is a loop, not news. */
const MAX_MIGRATIONS_PER_CALL = 2

export const chatKey = (target: TelegramChatTarget): string =>
  target.thread_id === undefined ? String(target.chat_id) : `${target.chat_id}/${target.thread_id}`

export class TelegramNotifier implements Notifier {
  readonly name = 'telegram'
  private readonly api: Telegram
  private readonly token: string
  private readonly routes: Record<string, TelegramRoute>
  private readonly limiter: TelegramRateLimiter
  private readonly logger: Logger
  private readonly clock: () => number
  private readonly editWindowMs: number
  private readonly editBudget: number
  private readonly maxAttempts: number
  private readonly maxRetryWaitMs: number
  private readonly requestTimeoutMs: number
  private readonly maxParts: number
  private readonly kibana: Pick<FormatOptions, 'kibanaUrl' | 'kibanaDataView'>
  /** Configured chat id → the supergroup id it migrated to. */
  private readonly migrated = new Map<string, number | string>()
  /** `${chat}:${messageId}` → when it was posted and how often edited; insertion order = age. */
  private readonly editRecords = new Map<string, EditRecord>()
  private readonly delivered = new Map<string, Map<string, number>>()
  /** The tail of each chat's queue of calls. */
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor(options: TelegramNotifierOptions) {
    if (options.token.trim() === '') {
      throw new LwError('LW_CONFIG_VALUE', 'telegram.token: empty', 'Set the bot token from @BotFather, or leave telegram out to print alerts on the console.')
    }
    for (const [name, route] of Object.entries(options.routes)) {
      if (!LANGUAGES.includes(route.language)) throw new LwError('LW_CONFIG_VALUE', `routes.${name}.language: "${String(route.language)}" is not one of ${LANGUAGES.join(', ')}`, 'Pick one of them.')
      try {
        formatTime(0, route.timezone)
      } catch {
        throw new LwError('LW_CONFIG_TIMEZONE', `routes.${name}.timezone: "${route.timezone}" is not an IANA zone known to this Node.js`, 'Use a name such as Europe/Moscow, Asia/Jakarta or UTC.')
      }
    }
    this.token = options.token
    this.api = new Telegram(options.token, options.apiRoot === undefined ? {} : { apiRoot: options.apiRoot })
    this.routes = options.routes
    this.clock = options.clock ?? Date.now
    // Real time, not `clock`: the limits are about when requests reach Telegram.
    this.limiter = new TelegramRateLimiter(options.limits ?? TELEGRAM_LIMITS)
    this.logger = options.logger ?? createLogger()
    this.editWindowMs = options.editWindowMs ?? 3_600_000
    this.editBudget = options.editBudget ?? 20
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3)
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 60_000
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000
    this.maxParts = Math.max(1, options.maxParts ?? 3)
    this.kibana = {
      ...(options.kibanaUrl === undefined ? {} : { kibanaUrl: options.kibanaUrl }),
      ...(options.kibanaDataView === undefined ? {} : { kibanaDataView: options.kibanaDataView }),
    }
  }

  async send(n: Notification): Promise<DeliveryResult> {
    const route = this.routes[n.route]
    if (route === undefined) {
      const known = Object.keys(this.routes).join(', ') || 'none'
      return { ok: false, messageIds: {}, retryable: false, error: `LW_TELEGRAM_NO_ROUTE: rule ${n.ruleId}: route "${n.route}" is not configured (routes: ${known}). Add it under routes, or set the rule's route to one of them.` }
    }
    const message = formatNotification(n, { language: route.language, timezone: route.timezone, ...this.kibana })
    const silent = n.state === 'resolved' || (route.silent_below !== undefined && SEVERITY_RANK[n.severity] < SEVERITY_RANK[route.silent_below])
    const outcomes = await Promise.all(route.chats.map((target) =>
      this.enqueue(String(target.chat_id), () => this.deliver(n, n.route, target, message, silent)).then((o) => [chatKey(target), o] as const)))

    const messageIds: Record<string, number> = {}
    const failures: Array<ChatOutcome & { ok: false }> = []
    for (const [key, o] of outcomes) {
      if (o.ok) messageIds[key] = o.messageId
      else failures.push(o)
    }
    this.remember(n.id, messageIds)
    if (failures.length === 0) return { ok: true, messageIds }
    const result: DeliveryResult = {
      ok: false,
      messageIds,
      error: failures.map((f) => f.error).join('\n'),
      // One chat that needs a person makes the whole notification wait for that person.
      retryable: failures.every((f) => isRetryable(f.failure)),
    }
    const waits = failures.map((f) => f.failure.retryAfterMs).filter((ms): ms is number => ms !== undefined)
    if (waits.length > 0) result.retryAfter = Math.max(...waits)
    return result
  }

  /** Runs `task` after the chat's earlier calls, so its messages keep their order. */
  private enqueue<T>(chat: string, task: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(chat) ?? Promise.resolve()).then(task)
    const tail = run.catch(() => undefined)
    this.queues.set(chat, tail)
    void tail.then(() => {
      if (this.queues.get(chat) === tail) this.queues.delete(chat)
    })
    return run
  }

  private async deliver(n: Notification, routeName: string, target: TelegramChatTarget, message: FormattedMessage, silent: boolean): Promise<ChatOutcome> {
    const key = chatKey(target)
    const already = n.edit === undefined ? this.delivered.get(n.id)?.get(key) : undefined
    if (already !== undefined) return { ok: true, messageId: already }

    const editId = n.edit?.messageIds[key]
    if (editId !== undefined && this.mayEdit(target, editId)) {
      const edited = await this.edit(target, editId, message.html)
      if (edited.ok) return edited
      if (edited.failure.kind !== 'edit_target_gone') return this.failed(edited.failure, target, routeName)
      // The message was deleted or can no longer be edited: post a new one instead.
    }
    const posted = await this.post(target, message.html, silent)
    if (!posted.ok) return this.failed(posted.failure, target, routeName)
    this.recordPost(target, posted.messageId)
    return posted
  }

  private failed(failure: TelegramFailure, target: TelegramChatTarget, routeName: string): ChatOutcome {
    return { ok: false, failure, error: explainTelegramFailure(failure, describeChat(target, routeName), routeName).text }
  }

  /**
   * Posts the message, split into parts if needed; the id of the first part is the message's. When
   * a later part fails after the first arrived, the alert counts as delivered (with a warning):
   * sending it all again would repeat what the chat already shows.
   */
  private async post(target: TelegramChatTarget, html: string, silent: boolean): Promise<CallResult> {
    const extra = {
      ...(target.thread_id === undefined ? {} : { message_thread_id: target.thread_id }),
      ...(silent ? { disable_notification: true } : {}),
      link_preview_options: { is_disabled: true },
    }
    let first: number | undefined
    for (const part of splitHtml(html, { maxParts: this.maxParts })) {
      let sent = await this.call(target, { method: 'sendMessage', payload: { text: part, parse_mode: 'HTML', ...extra } })
      if (!sent.ok && sent.failure.kind === 'cant_parse') {
        this.warnParse(target, sent.failure)
        for (const plain of splitPlain(htmlToPlain(part), { maxParts: this.maxParts })) {
          sent = await this.call(target, { method: 'sendMessage', payload: { text: plain, ...extra } })
          if (!sent.ok) break
          first ??= sent.messageId
        }
      } else if (sent.ok) first ??= sent.messageId
      if (!sent.ok && first === undefined) return sent
      if (!sent.ok) {
        const explained = explainTelegramFailure(sent.failure, describeChat(target))
        this.logger.warn({ code: explained.code, chat: String(target.chat_id) }, `the rest of a long alert was not delivered: ${explained.text}`)
        break
      }
    }
    return first === undefined ? { ok: false, failure: { kind: 'bad_request', description: 'empty message' } } : { ok: true, messageId: first }
  }

  /** Edits the first message of an earlier notification; the text is cut to one message. */
  private async edit(target: TelegramChatTarget, messageId: number, html: string): Promise<CallResult> {
    const text = splitHtml(html, { maxParts: 1 })[0] as string
    let result = await this.call(target, { method: 'editMessageText', payload: { message_id: messageId, text, parse_mode: 'HTML', link_preview_options: { is_disabled: true } } })
    if (!result.ok && result.failure.kind === 'cant_parse') {
      this.warnParse(target, result.failure)
      result = await this.call(target, { method: 'editMessageText', payload: { message_id: messageId, text: splitPlain(htmlToPlain(text), { maxParts: 1 })[0] as string } })
    }
    // The same text again (nothing changed since the last edit) is what was wanted.
    if (!result.ok && result.failure.kind === 'not_modified') result = { ok: true, messageId }
    if (result.ok) {
      const record = this.editRecords.get(this.recordKey(target, messageId))
      if (record !== undefined) record.edits++
    }
    return result
  }

  /**
   * One Bot API call within the limits, with 429 waits and migration handled. The payload's
   * chat_id is filled in here (it changes when the group migrates).
   */
  private async call(target: TelegramChatTarget, call: ApiCall): Promise<CallResult> {
    let attempts = 0
    let migrations = 0
    for (;;) {
      const chatId = this.migrated.get(String(target.chat_id)) ?? target.chat_id
      const release = await this.limiter.acquire(chatId)
      let failure: TelegramFailure
      try {
        return { ok: true, messageId: await this.request(call, chatId) }
      } catch (err) {
        failure = classifyTelegramError(err, this.token)
      } finally {
        release()
      }
      if (failure.kind === 'migrated' && failure.migrateTo !== undefined && failure.migrateTo !== chatId && migrations++ < MAX_MIGRATIONS_PER_CALL) {
        this.migrated.set(String(target.chat_id), failure.migrateTo)
        const explained = explainTelegramFailure(failure, describeChat(target), undefined)
        this.logger.warn({ code: explained.code, chat: String(target.chat_id), migrate_to_chat_id: failure.migrateTo }, explained.text)
        continue
      }
      if (failure.kind === 'rate_limited' && ++attempts < this.maxAttempts && (failure.retryAfterMs ?? 0) <= this.maxRetryWaitMs) {
        await new Promise((resolve) => setTimeout(resolve, failure.retryAfterMs))
        continue
      }
      return { ok: false, failure }
    }
  }

  /** The call with a deadline; resolves to the message id. */
  private async request(call: ApiCall, chatId: number | string): Promise<number> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), this.requestTimeoutMs)
    // telegraf types its signal with the abort-controller polyfill; node-fetch accepts Node's own.
    const options = { signal: controller.signal as unknown as NonNullable<Parameters<Telegram['callApi']>[2]>['signal'] }
    try {
      if (call.method === 'sendMessage') return (await this.api.callApi('sendMessage', { ...call.payload, chat_id: chatId }, options)).message_id
      const edited = await this.api.callApi('editMessageText', { ...call.payload, chat_id: chatId }, options)
      // `true` is the answer for inline messages only, which logwarden never edits.
      return edited === true ? (call.payload.message_id ?? 0) : edited.message_id
    } finally {
      clearTimeout(timer)
    }
  }

  private warnParse(target: TelegramChatTarget, failure: TelegramFailure): void {
    const explained = explainTelegramFailure(failure, describeChat(target))
    this.logger.warn({ code: explained.code, chat: String(target.chat_id) }, explained.text)
  }

  private recordKey(target: TelegramChatTarget, messageId: number): string {
    return `${String(this.migrated.get(String(target.chat_id)) ?? target.chat_id)}:${messageId}`
  }

  /**
   * Within the edit window and budget. A message this process did not post (sent before a
   * restart) has no record: the pipeline asked for the edit, so it is taken as recent.
   */
  private mayEdit(target: TelegramChatTarget, messageId: number): boolean {
    const record = this.editRecords.get(this.recordKey(target, messageId))
    if (record === undefined) {
      this.recordPost(target, messageId)
      return true
    }
    return this.clock() - record.sentAt < this.editWindowMs && record.edits < this.editBudget
  }

  private recordPost(target: TelegramChatTarget, messageId: number): void {
    const now = this.clock()
    // Records older than the window are never consulted again: forget them (bounded memory).
    for (const [key, record] of this.editRecords) {
      if (now - record.sentAt < this.editWindowMs) break
      this.editRecords.delete(key)
    }
    this.editRecords.set(this.recordKey(target, messageId), { sentAt: now, edits: 0 })
  }

  private remember(id: string, messageIds: Record<string, number>): void {
    const known = this.delivered.get(id) ?? new Map<string, number>()
    for (const [key, messageId] of Object.entries(messageIds)) known.set(key, messageId)
    this.delivered.delete(id)
    this.delivered.set(id, known)
    if (this.delivered.size > DELIVERED_MEMORY) this.delivered.delete(this.delivered.keys().next().value as string)
  }
}

function describeChat(target: TelegramChatTarget, route?: string): string {
  const topic = target.thread_id === undefined ? '' : ` topic ${target.thread_id}`
  return `telegram chat ${String(target.chat_id)}${topic}${route === undefined ? '' : ` (route "${route}")`}`
}
