/**
 * What a failed Bot API call means, in one place for the notifier (what to do with the alert) and
 * for `logwarden doctor` (what to tell the user): each Telegram error is classified into a kind,
 * and each kind has a plain-words explanation that names the chat and says what to do.
 *
 * The bot token is a secret (design invariant 8): telegraf's errors can carry the request URL,
 * which contains it, so every text that leaves this module goes through `scrubToken`.
 */
import { TelegramError } from 'telegraf'

/**
 * Stable codes of Telegram delivery failures (for LW_CODES in agent/errors.ts):
 *   LW_TELEGRAM_AUTH           the token is wrong or revoked (401)
 *   LW_TELEGRAM_FORBIDDEN      the bot may not write to the chat: blocked, removed, not admin (403)
 *   LW_TELEGRAM_CHAT_NOT_FOUND the chat id is wrong or the bot was never in it
 *   LW_TELEGRAM_THREAD_NOT_FOUND the forum topic (thread_id) does not exist
 *   LW_TELEGRAM_MIGRATED       a group became a supergroup with a new id (a warning: delivery goes on)
 *   LW_TELEGRAM_RATE_LIMITED   429 Too Many Requests, retried after retry_after
 *   LW_TELEGRAM_PARSE          Telegram could not parse the message HTML (re-sent as plain text)
 *   LW_TELEGRAM_UNAVAILABLE    5xx, network error or timeout: retried later
 *   LW_TELEGRAM_REJECTED       any other refusal (400 Bad Request, 404 from a wrong api_root)
 *   LW_TELEGRAM_NO_ROUTE       a notification names a route that is not configured
 */
export type TelegramCode =
  | 'LW_TELEGRAM_AUTH' | 'LW_TELEGRAM_FORBIDDEN' | 'LW_TELEGRAM_CHAT_NOT_FOUND' | 'LW_TELEGRAM_THREAD_NOT_FOUND'
  | 'LW_TELEGRAM_MIGRATED' | 'LW_TELEGRAM_RATE_LIMITED' | 'LW_TELEGRAM_PARSE' | 'LW_TELEGRAM_UNAVAILABLE'
  | 'LW_TELEGRAM_REJECTED' | 'LW_TELEGRAM_NO_ROUTE'

export type TelegramFailureKind =
  | 'unauthorized' | 'forbidden' | 'chat_not_found' | 'thread_not_found' | 'migrated' | 'rate_limited'
  | 'cant_parse' | 'not_modified' | 'edit_target_gone' | 'too_long' | 'bad_request' | 'bad_endpoint'
  | 'server' | 'network' | 'timeout'

export interface TelegramFailure {
  kind: TelegramFailureKind
  /** Telegram's error_code (HTTP status), when it answered. */
  status?: number
  /** Telegram's description or the network error, with the token scrubbed. */
  description: string
  /** For 429: how long Telegram asks to wait. */
  retryAfterMs?: number
  /** For a migrated group: its new (supergroup) id. */
  migrateTo?: number
}

/** Failures that may go away by themselves: the alert stays in the outbox and is sent again. */
export function isRetryable(f: TelegramFailure): boolean {
  return f.kind === 'rate_limited' || f.kind === 'server' || f.kind === 'network' || f.kind === 'timeout'
}

/** Telegram's default wait when a 429 carries no retry_after. */
const DEFAULT_RETRY_AFTER_MS = 5_000

export function classifyTelegramError(err: unknown, token: string): TelegramFailure {
  if (err instanceof TelegramError) {
    const status = err.code
    const description = scrubToken(err.description ?? '', token)
    const params = err.parameters
    if (status === 429) {
      const seconds = params?.retry_after
      return { kind: 'rate_limited', status, description, retryAfterMs: typeof seconds === 'number' ? seconds * 1000 : DEFAULT_RETRY_AFTER_MS }
    }
    if (typeof params?.migrate_to_chat_id === 'number') return { kind: 'migrated', status, description, migrateTo: params.migrate_to_chat_id }
    if (status === 401) return { kind: 'unauthorized', status, description }
    if (status === 403) return { kind: 'forbidden', status, description }
    if (status === 404) return { kind: 'bad_endpoint', status, description }
    if (status >= 500) return { kind: 'server', status, description }
    const d = description.toLowerCase()
    if (d.includes("can't parse entities")) return { kind: 'cant_parse', status, description }
    if (d.includes('message is not modified')) return { kind: 'not_modified', status, description }
    if (/message to edit not found|message can't be edited|message_id_invalid/.test(d)) return { kind: 'edit_target_gone', status, description }
    if (/chat not found|peer_id_invalid|chat_id is empty/.test(d)) return { kind: 'chat_not_found', status, description }
    if (/message thread not found|topic_closed|topic_deleted|thread not found/.test(d)) return { kind: 'thread_not_found', status, description }
    if (/too long/.test(d)) return { kind: 'too_long', status, description }
    return { kind: 'bad_request', status, description }
  }
  const e = err instanceof Error ? err : new Error(String(err))
  if (e.name === 'AbortError') return { kind: 'timeout', description: 'no answer in time' }
  return { kind: 'network', description: scrubToken(e.message, token) }
}

/**
 * Removes the bot token from a text: the exact token, its secret half, and anything shaped like a
 * token in a Bot API URL (`/bot123456:AA.../`).
 */
export function scrubToken(text: string, token: string): string {
  let out = text
  if (token !== '') {
    out = out.split(token).join('<token>')
    const secret = token.slice(token.indexOf(':') + 1)
    if (secret.length >= 8) out = out.split(secret).join('<token>')
  }
  return out.replace(/bot\d+:[A-Za-z0-9_-]{8,}/g, 'bot<token>')
}

export interface Explanation {
  code: TelegramCode
  /** One line: what happened and what to do, e.g. for doctor. */
  text: string
}

/**
 * Plain words for a failure: `<code>: <what it means>. <what to do>`. `chat` names the chat as the
 * user configured it (`chat -100123 (route "ops")`); `route` is the config path to fix.
 */
export function explainTelegramFailure(f: TelegramFailure, chat: string, route?: string): Explanation {
  const where = route === undefined ? 'the configuration' : `routes.${route}`
  const said = f.status === undefined ? f.description : `${f.status} ${f.description}`
  const line = (code: TelegramCode, what: string, todo: string): Explanation => ({ code, text: `${code}: ${chat}: ${what}. ${todo}` })
  switch (f.kind) {
    case 'unauthorized':
      return line('LW_TELEGRAM_AUTH', `Telegram rejected the bot token (${said}): it is wrong or was revoked`,
        'Copy the token from @BotFather (/mybots → your bot → API Token) into telegram.token.')
    case 'forbidden': {
      const d = f.description.toLowerCase()
      const todo = d.includes('blocked by the user')
        ? 'The user blocked the bot: ask them to open the bot and press Start (or Restart), or remove this chat from ' + where + '.'
        : d.includes("can't initiate conversation") || d.includes('initiate')
          ? 'A bot cannot write first: the user must open the bot in Telegram and press Start.'
          : d.includes('kicked') || d.includes('not a member')
            ? 'The bot is not in this chat any more: add it back to the group (for a channel, as an administrator who may post).'
            : d.includes('not enough rights')
              ? 'Give the bot the right to send messages in this chat (make it an administrator in a channel).'
              : 'Add the bot to the chat and allow it to post, or remove this chat from ' + where + '.'
      return line('LW_TELEGRAM_FORBIDDEN', `Telegram does not let the bot write there (${said})`, todo + ' Alerts for it stay in the outbox until then.')
    }
    case 'chat_not_found':
      return line('LW_TELEGRAM_CHAT_NOT_FOUND', `Telegram does not know this chat, or the bot is not in it (${said})`,
        `Check chat_id in ${where} (group ids are negative; supergroup and channel ids start with -100) and add the bot to the chat; for a private chat the user must press Start in the bot first.`)
    case 'thread_not_found':
      return line('LW_TELEGRAM_THREAD_NOT_FOUND', `the forum topic does not exist in this chat (${said})`,
        `Check thread_id in ${where}: the topic may have been deleted or closed; remove thread_id to post in the General topic.`)
    case 'migrated':
      return line('LW_TELEGRAM_MIGRATED', `the group was upgraded to a supergroup and has a new id ${f.migrateTo ?? '?'}`,
        `Alerts now go to the new id; replace the chat_id with ${f.migrateTo ?? 'the new id'} in ${where}.`)
    case 'rate_limited':
      return line('LW_TELEGRAM_RATE_LIMITED', `Telegram asks to slow down (${said}), retry after ${Math.ceil((f.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS) / 1000)} s`,
        'Nothing to do: alerts are kept and sent after the wait; many of them for one chat means rules fire too often (raise realert or group them).')
    case 'cant_parse':
      return line('LW_TELEGRAM_PARSE', `Telegram could not parse the message HTML (${said})`,
        'The message is sent as plain text instead; if it comes from a rule template, fix the template\'s tags (only Telegram\'s tags are allowed).')
    case 'too_long':
    case 'not_modified':
    case 'edit_target_gone':
    case 'bad_request':
      return line('LW_TELEGRAM_REJECTED', `Telegram refused the request (${said})`, 'This is unexpected; please report it with this message.')
    case 'bad_endpoint':
      return line('LW_TELEGRAM_REJECTED', `the Bot API answered ${said}`,
        'The token is malformed (it looks like 123456789:AA...), or telegram.api_root points to something that is not the Bot API.')
    case 'server':
      return line('LW_TELEGRAM_UNAVAILABLE', `Telegram's servers failed (${said})`, 'Nothing to do: alerts are kept and sent again later.')
    case 'timeout':
      return line('LW_TELEGRAM_UNAVAILABLE', 'Telegram did not answer in time', 'Alerts are kept and sent again later; if it lasts, check the network or proxy to api.telegram.org.')
    case 'network':
      return line('LW_TELEGRAM_UNAVAILABLE', `Telegram cannot be reached (${f.description})`,
        'Alerts are kept and sent again later; check the network, DNS, firewall or proxy to api.telegram.org, or telegram.api_root.')
  }
}
