/**
 * `logwarden doctor` and `logwarden test-alert` for Telegram.
 *
 * doctor asks Telegram about the configuration without posting anything: getMe checks the token,
 * getChat each configured chat (is the id right, is the bot in it, has the group moved, does a
 * configured topic make sense). Every problem comes back as a line in plain words: what Telegram
 * said, what it means, and what to change.
 *
 * testAlert posts a sample alert through the real notifier to every route, so the whole path
 * (formatting, limits, topics, silent delivery) is tried, and reports each route's outcome.
 */
import { hostname } from 'node:os'
import { Telegram } from 'telegraf'
import type { DeliveryResult, Notification, Notifier } from '../../rules/model'
import { classifyTelegramError, explainTelegramFailure } from './errors'
import type { TelegramRoute } from './notifier'

export interface DoctorOptions {
  token: string
  apiRoot?: string
  routes: Record<string, TelegramRoute>
  /** Per call; default 15 s. */
  timeoutMs?: number
}

export interface DoctorReport {
  /** Every check passed. */
  ok: boolean
  /** One line per check, starting with ✓ or ✗. */
  lines: string[]
}

interface ChatInfo {
  id: number
  type: string
  title?: string
  username?: string
  first_name?: string
  is_forum?: boolean
}

export async function doctor(options: DoctorOptions): Promise<DoctorReport> {
  const api = new Telegram(options.token, options.apiRoot === undefined ? {} : { apiRoot: options.apiRoot })
  const timeoutMs = options.timeoutMs ?? 15_000
  const lines: string[] = []
  let ok = true

  try {
    const me = await withDeadline(timeoutMs, (signal) => api.callApi('getMe', {}, { signal }))
    lines.push(`✓ token: the bot is @${me.username} (id ${me.id}).`)
  } catch (err) {
    const failure = classifyTelegramError(err, options.token)
    lines.push(`✗ token: ${explainTelegramFailure(failure, 'telegram.token').text}`)
    // With a bad token every chat check fails the same way: say so once.
    if (failure.kind === 'unauthorized' || failure.kind === 'bad_endpoint') {
      lines.push('✗ chats: not checked, the token has to work first.')
      return { ok: false, lines }
    }
    ok = false
  }

  const seen = new Map<string, Promise<ChatInfo>>()
  for (const [routeName, route] of Object.entries(options.routes)) {
    if (route.chats.length === 0) {
      ok = false
      lines.push(`✗ route "${routeName}": no chats: alerts for this route go nowhere. Add at least one chat_id under routes.${routeName}.chats.`)
      continue
    }
    for (const target of route.chats) {
      const subject = `route "${routeName}" → chat ${String(target.chat_id)}${target.thread_id === undefined ? '' : ` topic ${target.thread_id}`}`
      const key = String(target.chat_id)
      let pending = seen.get(key)
      if (pending === undefined) {
        pending = withDeadline(timeoutMs, (signal) => api.callApi('getChat', { chat_id: target.chat_id }, { signal })) as Promise<ChatInfo>
        seen.set(key, pending)
      }
      try {
        const chat = await pending
        const problem = topicProblem(chat, target.thread_id, routeName)
        if (problem !== undefined) {
          ok = false
          lines.push(`✗ ${subject}: ${problem}`)
        } else lines.push(`✓ ${subject}: ${describe(chat)}.${chat.type === 'private' ? ' (A private chat receives alerts only while the user has not blocked the bot; test-alert shows it.)' : ''}`)
      } catch (err) {
        ok = false
        lines.push(`✗ ${subject}: ${explainTelegramFailure(classifyTelegramError(err, options.token), `chat ${String(target.chat_id)}`, routeName).text}`)
      }
    }
  }
  return { ok, lines }
}

function topicProblem(chat: ChatInfo, threadId: number | undefined, routeName: string): string | undefined {
  if (threadId === undefined) return undefined
  if (chat.is_forum === true) return undefined
  return `thread_id ${threadId} is set but ${describe(chat)} has no topics: Telegram would refuse every alert. Remove thread_id from routes.${routeName}, or turn on Topics in the group's settings.`
}

function describe(chat: ChatInfo): string {
  const name = chat.title ?? (chat.username !== undefined ? `@${chat.username}` : chat.first_name) ?? String(chat.id)
  return `"${name}" (${chat.type}${chat.is_forum === true ? ' with topics' : ''})`
}

/** Runs a Bot API call that is abandoned after `ms`. */
async function withDeadline<T>(ms: number, run: (signal: NonNullable<Parameters<Telegram['callApi']>[2]>['signal']) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), ms)
  try {
    // telegraf types its signal with the abort-controller polyfill; node-fetch accepts Node's own.
    return await run(controller.signal as unknown as NonNullable<Parameters<Telegram['callApi']>[2]>['signal'])
  } finally {
    clearTimeout(timer)
  }
}

export interface TestAlertReport {
  ok: boolean
  lines: string[]
  results: Record<string, DeliveryResult>
}

/** Sends `sampleNotification` to each route through `notifier` (Telegram or console). */
export async function testAlert(notifier: Notifier, routes: string[], now: number = Date.now()): Promise<TestAlertReport> {
  const results: Record<string, DeliveryResult> = {}
  const lines: string[] = []
  for (const route of routes) {
    const result = await notifier.send(sampleNotification(route, now))
    results[route] = result
    const ids = Object.entries(result.messageIds).map(([chat, id]) => `${chat} #${id}`).join(', ')
    if (result.ok) lines.push(`✓ route "${route}": test alert delivered${ids === '' ? '' : ` (${ids})`}.`)
    else {
      lines.push(`✗ route "${route}": test alert not delivered${ids === '' ? '' : ` (delivered to ${ids})`}:`)
      for (const line of (result.error ?? 'no reason given').split('\n')) lines.push(`    ${line}`)
    }
  }
  return { ok: Object.values(results).every((r) => r.ok), lines, results }
}

/** A sample alert that looks like a real one (every part of the layout filled in) and says what it is. */
export function sampleNotification(route: string, now: number): Notification {
  const id = `test-alert:${route}:${now}`
  return {
    id,
    route,
    ruleId: 'logwarden.test_alert',
    ruleName: 'logwarden test alert',
    severity: 'warning',
    state: 'firing',
    fingerprint: id,
    event: {
      id,
      ruleId: 'logwarden.test_alert',
      severity: 'warning',
      state: 'firing',
      fingerprint: id,
      groupKey: {},
      at: now,
      count: 1,
      fields: {
        '@timestamp': new Date(now).toISOString(),
        'service.name': 'logwarden',
        'service.environment': 'test',
        'host.name': hostname(),
        'http.request.method': 'GET',
        'url.path': '/logwarden/test-alert',
        'http.response.status_code': 500,
        'error.type': 'TestAlert',
        'error.message': 'Sent by `logwarden test-alert`: this route works, nothing is wrong.',
      },
      summary: 'A test alert: if you can read this, alerts for this route arrive here.',
    },
    more: 0,
    total: 1,
    firstAt: now,
    lastAt: now,
    labels: {},
  }
}
