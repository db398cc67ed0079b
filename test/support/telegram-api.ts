/**
 * A loopback stand-in of the Telegram Bot API (https://core.telegram.org/bots/api), the only fake
 * in the project: Telegram cannot be reached from the test machine, so telegraf is pointed at this
 * server with its `apiRoot` option and talks real HTTP to it.
 *
 * It speaks the wire protocol: `POST /bot<token>/<method>` with a JSON, urlencoded or
 * multipart/form-data body (files for sendDocument), answers `{ ok: true, result }` or Telegram's
 * error shape `{ ok: false, error_code, description, parameters? }` with the same HTTP status. It
 * validates what real Telegram validates that matters to logwarden: the token, that the chat
 * exists and the bot may write there, forum topics, text length (4096 characters after entity
 * parsing, 1024 for captions) and the HTML of parse_mode HTML (unsupported or unclosed tags are
 * "can't parse entities"), and "message is not modified" on an edit with the same text.
 *
 * State that real Telegram has and tests set up: chats (`addChat`), a group upgraded to a
 * supergroup (`migrateChat`), a bot blocked by a user or removed from a group (`blockBot`), the
 * update queue for getUpdates long polling (`pushUpdate`, `pushMessage`, `pushCallbackQuery`), and
 * an outage (`goOffline` / `goOnline`: nothing listens on the port in between). One-shot faults
 * (`inject`) answer the next matching requests with Telegram's real failures: 429 with
 * `retry_after`, can't parse entities, migrate_to_chat_id, 403 blocked, 401, chat not found, 5xx,
 * or no answer at all.
 *
 * Every request is recorded (`calls`) with its parsed parameters, files, arrival time and answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { quietPort } from './loopback-port'

export interface StandinChat {
  id: number
  type: 'private' | 'group' | 'supergroup' | 'channel'
  title?: string
  username?: string
  first_name?: string
  /** A supergroup with topics; `topics` are the message_thread_id values that exist. */
  is_forum?: boolean
  topics?: number[]
}

export type Fault =
  /** 429 "Too Many Requests: retry after N" with parameters.retry_after = N (seconds). */
  | { kind: 'retry_after'; seconds: number }
  /** 400 "Bad Request: can't parse entities: ..." whatever the text is. */
  | { kind: 'parse_entities' }
  /** 400 "Bad Request: group chat was upgraded to a supergroup chat" with parameters.migrate_to_chat_id. */
  | { kind: 'migrate'; to: number }
  /** 403 "Forbidden: bot was blocked by the user". */
  | { kind: 'blocked' }
  /** 401 "Unauthorized" (a revoked token). */
  | { kind: 'unauthorized' }
  /** 400 "Bad Request: chat not found". */
  | { kind: 'chat_not_found' }
  /** A 5xx answer (default 500). */
  | { kind: 'server_error'; status?: number }
  /** Accept the request and never answer. */
  | { kind: 'hang' }

export interface FaultTarget {
  /** Only these methods (default: any). */
  method?: string | string[]
  /** Only requests for this chat_id (default: any). */
  chatId?: number | string
  /** How many matching requests get the fault (default 1). */
  times?: number
  /** Let this many matching requests through first (default 0): "the second part of a message fails". */
  after?: number
}

export interface RecordedFile {
  field: string
  filename: string
  contentType: string
  content: Buffer
}

export interface RecordedCall {
  /** 1 for the first request. */
  seq: number
  /** Arrival time, ms since the epoch. */
  at: number
  method: string
  /** The parameters as sent: from the JSON body, the form fields, and the query string. */
  params: Record<string, unknown>
  files: RecordedFile[]
  body: 'json' | 'urlencoded' | 'multipart' | 'none'
  /** The HTTP status answered; undefined while unanswered (a hung request stays so). */
  status?: number
  description?: string
  fault?: Fault['kind']
}

export interface StoredMessage {
  chatId: number
  messageId: number
  threadId?: number
  /** The text as a user sees it (tags removed, entities decoded); the caption for a document. */
  text: string
  /** The text as sent (HTML source with parse_mode HTML). */
  source: string
  parseMode?: string
  silent: boolean
  date: number
  edits: number
  fromBot: boolean
  document?: RecordedFile
}

interface ChatState {
  chat: StandinChat
  nextMessageId: number
  messages: Map<number, StoredMessage>
  migratedTo?: number
  blocked: boolean
}

interface ArmedFault {
  fault: Fault
  target: FaultTarget
  left: number
  pass: number
}

interface Poller {
  res: ServerResponse
  call: RecordedCall
  offset: number
  limit: number
  timer: NodeJS.Timeout
}

type Update = Record<string, unknown> & { update_id: number }

/** Telegram's answer to a failed call. */
class ApiError extends Error {
  constructor(readonly code: number, readonly description: string, readonly parameters?: Record<string, number>) {
    super(description)
  }
}

const MAX_TEXT = 4096
const MAX_CAPTION = 1024
const HTML_TAGS = new Set(['b', 'strong', 'i', 'em', 'u', 'ins', 's', 'strike', 'del', 'span', 'tg-spoiler', 'a', 'code', 'pre', 'blockquote', 'tg-emoji', 'tg-time'])
const NOT_MODIFIED = 'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message'

export const TEST_USER = { id: 1001, is_bot: false, first_name: 'Tester', username: 'tester', language_code: 'en' }

export class TelegramApiStandin {
  readonly token: string
  readonly calls: RecordedCall[] = []
  /** Commands set with setMyCommands, by scope type and language ("default/" without either). */
  readonly commands = new Map<string, Array<{ command: string; description: string }>>()
  private readonly chats = new Map<number, ChatState>()
  private readonly faults: ArmedFault[] = []
  private readonly updates: Update[] = []
  private readonly callbackQueries = new Set<string>()
  private readonly sockets = new Set<Socket>()
  private readonly botUser: { id: number; is_bot: true; first_name: string; username: string; can_join_groups: boolean; can_read_all_group_messages: boolean; supports_inline_queries: boolean }
  private nextUpdateId = 1
  private nextCallbackId = 1
  private poller: Poller | undefined
  private server: Server
  private port = 0

  private constructor(token: string, chats: StandinChat[]) {
    this.token = token
    this.botUser = {
      id: Number(/^(\d+):/.exec(token)?.[1] ?? 1), is_bot: true, first_name: 'Logwarden Test', username: 'logwarden_test_bot',
      can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false,
    }
    for (const chat of chats) this.addChat(chat)
    this.server = this.createServer()
  }

  /**
   * Starts on 127.0.0.1, on a port no `listen(0)` can take while the stand-in is offline (see
   * loopback-port.ts). The token is the only one accepted; others get 401.
   */
  static async start(options: { token?: string; chats?: StandinChat[] } = {}): Promise<TelegramApiStandin> {
    const standin = new TelegramApiStandin(options.token ?? '123456789:TEST-standin-token_abcdefghijklmnopqrs', options.chats ?? [])
    for (let attempt = 1; ; attempt++) {
      try {
        await standin.listen(await quietPort())
        return standin
      } catch (err) {
        // Another test may ask for the same free port between the check and the listen.
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw err
        standin.server = standin.createServer()
      }
    }
  }

  /** For telegraf's `apiRoot` option. */
  get apiRoot(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get bot(): { id: number; username: string } {
    return { id: this.botUser.id, username: this.botUser.username }
  }

  addChat(chat: StandinChat): void {
    this.chats.set(chat.id, { chat, nextMessageId: 1, messages: new Map(), blocked: false })
  }

  /** The group `from` was upgraded to the supergroup `to`: requests for `from` now fail with migrate_to_chat_id. */
  migrateChat(from: number, to: number): void {
    const old = this.chatState(from)
    old.migratedTo = to
    if (!this.chats.has(to)) this.addChat({ id: to, type: 'supergroup', ...(old.chat.title === undefined ? {} : { title: old.chat.title }) })
  }

  /** The user blocked the bot (private chat) or removed it (group): requests for the chat get 403. */
  blockBot(chatId: number, blocked = true): void {
    this.chatState(chatId).blocked = blocked
  }

  /** Arms a fault for the next matching request(s). */
  inject(fault: Fault, target: FaultTarget = {}): void {
    this.faults.push({ fault, target, left: target.times ?? 1, pass: target.after ?? 0 })
  }

  /** Messages in a chat, oldest first (the bot's and pushed users' messages). */
  messages(chatId: number): StoredMessage[] {
    return [...this.chatState(chatId).messages.values()]
  }

  /** Recorded calls of one method, in arrival order. */
  callsOf(method: string): RecordedCall[] {
    const m = method.toLowerCase()
    return this.calls.filter((c) => c.method.toLowerCase() === m)
  }

  /** Queues an update for getUpdates (update_id is assigned); returns its id. */
  pushUpdate(update: Record<string, unknown>): number {
    const full: Update = { ...update, update_id: this.nextUpdateId++ }
    this.updates.push(full)
    this.answerPoller()
    return full.update_id
  }

  /** A user writes `text` in a chat (a `/command` gets its bot_command entity, as Telegram adds it). */
  pushMessage(chatId: number, text: string, from: Record<string, unknown> = TEST_USER): { updateId: number; messageId: number } {
    const state = this.chatState(chatId)
    const messageId = state.nextMessageId++
    const date = Math.floor(Date.now() / 1000)
    state.messages.set(messageId, { chatId, messageId, text, source: text, silent: false, date, edits: 0, fromBot: false })
    const command = /^\/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?/.exec(text)
    const message: Record<string, unknown> = { message_id: messageId, from, chat: publicChat(state.chat), date, text }
    if (command) message.entities = [{ type: 'bot_command', offset: 0, length: command[0].length }]
    return { updateId: this.pushUpdate({ message }), messageId }
  }

  /** A user presses an inline button with `data` under the bot's message; returns the callback query id. */
  pushCallbackQuery(chatId: number, messageId: number, data: string, from: Record<string, unknown> = TEST_USER): string {
    const state = this.chatState(chatId)
    const stored = state.messages.get(messageId)
    if (stored === undefined) throw new Error(`stand-in: no message ${messageId} in chat ${chatId}`)
    const id = String(this.nextCallbackId++)
    this.callbackQueries.add(id)
    const message = { message_id: messageId, from: this.botUser, chat: publicChat(state.chat), date: stored.date, text: stored.text }
    this.pushUpdate({ callback_query: { id, from, message, chat_instance: String(chatId), data } })
    return id
  }

  /** An outage: the port stops listening and open connections (hung requests too) are cut. */
  async goOffline(): Promise<void> {
    await this.shutdown()
  }

  /** Back after an outage, on the same port. */
  async goOnline(): Promise<void> {
    this.server = this.createServer()
    await this.listen(this.port)
  }

  async close(): Promise<void> {
    await this.shutdown()
  }

  // ── HTTP ─────────────────────────────────────────────────────────────────────────────────────

  private createServer(): Server {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) reply(res, 500, { ok: false, error_code: 500, description: `stand-in bug: ${String(err)}` })
      })
    })
    server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
    return server
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', () => {
        this.port = (this.server.address() as AddressInfo).port
        resolve()
      })
    })
  }

  private async shutdown(): Promise<void> {
    if (this.poller !== undefined) clearTimeout(this.poller.timer)
    this.poller = undefined
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    await closed
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now()
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const route = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname)
    const { params, files, body } = await readParams(req, url)
    const call: RecordedCall = { seq: this.calls.length + 1, at, method: route?.[2] ?? url.pathname, params, files, body }
    this.calls.push(call)
    const answer = (status: number, payload: Record<string, unknown>): void => {
      call.status = status
      if (typeof payload.description === 'string') call.description = payload.description
      reply(res, status, payload)
    }
    if (route === null) return answer(404, { ok: false, error_code: 404, description: 'Not Found' })
    if (route[1] !== this.token) return answer(401, { ok: false, error_code: 401, description: 'Unauthorized' })

    const fault = this.takeFault(call.method, params)
    if (fault !== undefined) {
      call.fault = fault.kind
      if (fault.kind === 'hang') return // the connection stays open until the client gives up or the stand-in closes
      const err = faultError(fault)
      return answer(err.code, errorBody(err))
    }
    try {
      const result = this.dispatch(call.method.toLowerCase(), new Params(params, files), res, call)
      if (result === LONG_POLL) return
      answer(200, { ok: true, result })
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      answer(err.code, errorBody(err))
    }
  }

  private takeFault(method: string, params: Record<string, unknown>): Fault | undefined {
    for (const armed of this.faults) {
      if (armed.left <= 0) continue
      const methods = armed.target.method === undefined ? undefined : [armed.target.method].flat().map((m) => m.toLowerCase())
      if (methods !== undefined && !methods.includes(method.toLowerCase())) continue
      if (armed.target.chatId !== undefined && String(params.chat_id) !== String(armed.target.chatId)) continue
      if (armed.pass > 0) {
        armed.pass--
        continue
      }
      armed.left--
      return armed.fault
    }
    return undefined
  }

  // ── methods ──────────────────────────────────────────────────────────────────────────────────

  private dispatch(method: string, p: Params, res: ServerResponse, call: RecordedCall): unknown {
    switch (method) {
      case 'getme': return this.botUser
      case 'getchat': return this.getChat(p)
      case 'sendmessage': return this.sendMessage(p)
      case 'editmessagetext': return this.editMessageText(p)
      case 'senddocument': return this.sendDocument(p)
      case 'getupdates': return this.getUpdates(p, res, call)
      case 'answercallbackquery': return this.answerCallbackQuery(p)
      case 'setmycommands': return this.setMyCommands(p)
      case 'deletewebhook': return true
      default: throw new ApiError(404, 'Not Found')
    }
  }

  private getChat(p: Params): Record<string, unknown> {
    // A user who blocked the bot can still be looked up; a group that removed it cannot.
    const state = this.writableChat(p, true)
    return { ...publicChat(state.chat), accent_color_id: 0, max_reaction_count: 11 }
  }

  private sendMessage(p: Params): Record<string, unknown> {
    const state = this.writableChat(p)
    const threadId = this.thread(state, p)
    const source = p.str('text') ?? ''
    if (source.trim() === '') throw new ApiError(400, 'Bad Request: message text is empty')
    const parseMode = p.str('parse_mode')
    const text = visibleText(source, parseMode)
    if (text.length > MAX_TEXT) throw new ApiError(400, 'Bad Request: message is too long')
    const stored = this.store(state, { text, source, silent: p.bool('disable_notification'), ...(threadId === undefined ? {} : { threadId }), ...(parseMode === undefined ? {} : { parseMode }) })
    return this.messageObject(state, stored)
  }

  private editMessageText(p: Params): Record<string, unknown> {
    const state = this.writableChat(p)
    const messageId = p.int('message_id')
    if (messageId === undefined) throw new ApiError(400, 'Bad Request: message identifier is not specified')
    const stored = state.messages.get(messageId)
    if (stored === undefined || !stored.fromBot) throw new ApiError(400, 'Bad Request: message to edit not found')
    const source = p.str('text') ?? ''
    if (source.trim() === '') throw new ApiError(400, 'Bad Request: message text is empty')
    const parseMode = p.str('parse_mode')
    const text = visibleText(source, parseMode)
    if (text.length > MAX_TEXT) throw new ApiError(400, 'Bad Request: message is too long')
    if (source === stored.source && parseMode?.toLowerCase() === stored.parseMode?.toLowerCase()) throw new ApiError(400, NOT_MODIFIED)
    stored.text = text
    stored.source = source
    if (parseMode === undefined) delete stored.parseMode
    else stored.parseMode = parseMode
    stored.edits++
    return { ...this.messageObject(state, stored), edit_date: Math.floor(Date.now() / 1000) }
  }

  private sendDocument(p: Params): Record<string, unknown> {
    const state = this.writableChat(p)
    const threadId = this.thread(state, p)
    const file = p.file('document')
    const reference = p.str('document')
    if (file === undefined && (reference === undefined || reference === '')) throw new ApiError(400, 'Bad Request: there is no document in the request')
    if (file !== undefined && file.content.length === 0) throw new ApiError(400, 'Bad Request: file must be non-empty')
    const source = p.str('caption') ?? ''
    const parseMode = p.str('parse_mode')
    const text = source === '' ? '' : visibleText(source, parseMode)
    if (text.length > MAX_CAPTION) throw new ApiError(400, 'Bad Request: message caption is too long')
    const stored = this.store(state, {
      text, source, silent: p.bool('disable_notification'),
      ...(threadId === undefined ? {} : { threadId }), ...(parseMode === undefined ? {} : { parseMode }), ...(file === undefined ? {} : { document: file }),
    })
    const name = file?.filename ?? reference ?? 'document'
    const document = { file_id: `doc-${state.chat.id}-${stored.messageId}`, file_unique_id: `u${state.chat.id}_${stored.messageId}`, file_name: name, mime_type: file?.contentType ?? 'application/octet-stream', file_size: file?.content.length ?? 0 }
    const message: Record<string, unknown> = { ...this.messageObject(state, stored), document }
    delete message.text
    if (text !== '') message.caption = text
    return message
  }

  private getUpdates(p: Params, res: ServerResponse, call: RecordedCall): unknown {
    const offset = p.int('offset') ?? 0
    const limit = Math.min(100, Math.max(1, p.int('limit') ?? 100))
    const timeout = Math.max(0, p.int('timeout') ?? 0)
    // Updates below the offset are confirmed: Telegram forgets them.
    if (offset > 0) while (this.updates.length > 0 && (this.updates[0] as Update).update_id < offset) this.updates.shift()
    // A newer getUpdates ends a waiting one, as Telegram does when two bot instances poll.
    if (this.poller !== undefined) {
      const old = this.poller
      this.poller = undefined
      clearTimeout(old.timer)
      const conflict = new ApiError(409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running')
      this.finishPoll(old, conflict.code, errorBody(conflict))
    }
    const ready = this.pending(offset, limit)
    if (ready.length > 0 || timeout === 0) return ready
    const poller: Poller = {
      res, call, offset, limit,
      timer: setTimeout(() => {
        if (this.poller === poller) this.poller = undefined
        this.finishPoll(poller, 200, { ok: true, result: [] })
      }, timeout * 1000),
    }
    res.on('close', () => {
      if (this.poller === poller) {
        clearTimeout(poller.timer)
        this.poller = undefined
      }
    })
    this.poller = poller
    return LONG_POLL
  }

  private answerCallbackQuery(p: Params): true {
    const id = p.str('callback_query_id')
    if (id === undefined || !this.callbackQueries.delete(id)) throw new ApiError(400, 'Bad Request: query is too old and response timeout expired or query ID is invalid')
    return true
  }

  private setMyCommands(p: Params): true {
    const commands = p.json('commands')
    if (!Array.isArray(commands)) throw new ApiError(400, 'Bad Request: parameter "commands" is required')
    const checked: Array<{ command: string; description: string }> = []
    for (const c of commands as Array<Record<string, unknown>>) {
      const command = typeof c.command === 'string' ? c.command : ''
      const description = typeof c.description === 'string' ? c.description : ''
      if (!/^[a-z0-9_]{1,32}$/.test(command)) throw new ApiError(400, 'Bad Request: BOT_COMMAND_INVALID')
      if (description.length < 1 || description.length > 256) throw new ApiError(400, 'Bad Request: BOT_COMMAND_DESCRIPTION_INVALID')
      checked.push({ command, description })
    }
    const scope = p.json('scope') as { type?: string } | undefined
    this.commands.set(`${scope?.type ?? 'default'}/${p.str('language_code') ?? ''}`, checked)
    return true
  }

  // ── helpers ──────────────────────────────────────────────────────────────────────────────────

  private chatState(chatId: number): ChatState {
    const state = this.chats.get(chatId)
    if (state === undefined) throw new Error(`stand-in: no chat ${chatId}; addChat it first`)
    return state
  }

  /** The chat named by chat_id, if the bot may write there (`lookup`: read); Telegram's errors otherwise. */
  private writableChat(p: Params, lookup = false): ChatState {
    const raw = p.str('chat_id')
    if (raw === undefined || raw === '') throw new ApiError(400, 'Bad Request: chat_id is empty')
    const state = raw.startsWith('@')
      ? [...this.chats.values()].find((s) => s.chat.username !== undefined && `@${s.chat.username}`.toLowerCase() === raw.toLowerCase())
      : /^-?\d+$/.test(raw) ? this.chats.get(Number(raw)) : undefined
    if (state === undefined) throw new ApiError(400, 'Bad Request: chat not found')
    if (state.migratedTo !== undefined) throw new ApiError(400, 'Bad Request: group chat was upgraded to a supergroup chat', { migrate_to_chat_id: state.migratedTo })
    if (state.blocked && !(lookup && state.chat.type === 'private')) throw new ApiError(403, state.chat.type === 'private' ? 'Forbidden: bot was blocked by the user' : `Forbidden: bot was kicked from the ${state.chat.type === 'group' ? 'group' : state.chat.type === 'channel' ? 'channel' : 'supergroup'} chat`)
    return state
  }

  private thread(state: ChatState, p: Params): number | undefined {
    const threadId = p.int('message_thread_id')
    if (threadId === undefined) return undefined
    if (!state.chat.is_forum || !(state.chat.topics ?? []).includes(threadId)) throw new ApiError(400, 'Bad Request: message thread not found')
    return threadId
  }

  private store(state: ChatState, m: Omit<StoredMessage, 'chatId' | 'messageId' | 'date' | 'edits' | 'fromBot'>): StoredMessage {
    const stored: StoredMessage = { ...m, chatId: state.chat.id, messageId: state.nextMessageId++, date: Math.floor(Date.now() / 1000), edits: 0, fromBot: true }
    state.messages.set(stored.messageId, stored)
    return stored
  }

  private messageObject(state: ChatState, m: StoredMessage): Record<string, unknown> {
    const message: Record<string, unknown> = { message_id: m.messageId, from: this.botUser, chat: publicChat(state.chat), date: m.date, text: m.text }
    if (m.threadId !== undefined) {
      message.message_thread_id = m.threadId
      message.is_topic_message = true
    }
    return message
  }

  private pending(offset: number, limit: number): Update[] {
    return this.updates.filter((u) => u.update_id >= offset).slice(0, limit)
  }

  private answerPoller(): void {
    const poller = this.poller
    if (poller === undefined) return
    const ready = this.pending(poller.offset, poller.limit)
    if (ready.length === 0) return
    this.poller = undefined
    clearTimeout(poller.timer)
    this.finishPoll(poller, 200, { ok: true, result: ready })
  }

  private finishPoll(poller: Poller, status: number, payload: Record<string, unknown>): void {
    poller.call.status = status
    if (typeof payload.description === 'string') poller.call.description = payload.description
    reply(poller.res, status, payload)
  }
}

const LONG_POLL = Symbol('long poll')

/** Typed access to parameters that arrive as JSON values or as form strings. */
class Params {
  constructor(private readonly values: Record<string, unknown>, private readonly files: RecordedFile[]) {}

  str(name: string): string | undefined {
    const v = this.values[name]
    return v === undefined || v === null ? undefined : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)
  }

  int(name: string): number | undefined {
    const s = this.str(name)
    if (s === undefined || s === '') return undefined
    if (!/^-?\d+$/.test(s)) throw new ApiError(400, `Bad Request: invalid ${name} specified`)
    return Number(s)
  }

  bool(name: string): boolean {
    const s = this.str(name)
    return s === 'true' || s === '1'
  }

  json(name: string): unknown {
    const v = this.values[name]
    if (typeof v !== 'string') return v
    try {
      return JSON.parse(v) as unknown
    } catch {
      throw new ApiError(400, `Bad Request: can't parse ${name} JSON object`)
    }
  }

  file(field: string): RecordedFile | undefined {
    return this.files.find((f) => f.field === field)
  }
}

async function readParams(req: IncomingMessage, url: URL): Promise<{ params: Record<string, unknown>; files: RecordedFile[]; body: RecordedCall['body'] }> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const raw = Buffer.concat(chunks)
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams)
  const files: RecordedFile[] = []
  const type = (req.headers['content-type'] ?? '').toLowerCase()
  if (raw.length === 0) return { params, files, body: 'none' }
  if (type.startsWith('application/json')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw.toString('utf8'))
    } catch {
      parsed = undefined
    }
    if (typeof parsed === 'object' && parsed !== null) Object.assign(params, parsed)
    return { params, files, body: 'json' }
  }
  if (type.startsWith('application/x-www-form-urlencoded')) {
    Object.assign(params, Object.fromEntries(new URLSearchParams(raw.toString('utf8'))))
    return { params, files, body: 'urlencoded' }
  }
  if (type.startsWith('multipart/form-data')) {
    // undici's multipart parser (the one behind fetch's Response.formData) reads the body.
    const form = await new Response(raw, { headers: { 'content-type': type } }).formData()
    for (const [field, value] of form) {
      if (typeof value === 'string') params[field] = value
      else files.push({ field, filename: value.name, contentType: value.type, content: Buffer.from(await value.arrayBuffer()) })
    }
    return { params, files, body: 'multipart' }
  }
  return { params, files, body: 'none' }
}

function reply(res: ServerResponse, status: number, payload: Record<string, unknown>): void {
  if (res.writableEnded || res.destroyed) return // the client gave up (a poll aborted by bot.stop())
  const body = JSON.stringify(payload)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function errorBody(err: ApiError): Record<string, unknown> {
  return { ok: false, error_code: err.code, description: err.description, ...(err.parameters === undefined ? {} : { parameters: err.parameters }) }
}

function faultError(fault: Exclude<Fault, { kind: 'hang' }>): ApiError {
  switch (fault.kind) {
    case 'retry_after': return new ApiError(429, `Too Many Requests: retry after ${fault.seconds}`, { retry_after: fault.seconds })
    case 'parse_entities': return new ApiError(400, 'Bad Request: can\'t parse entities: Unsupported start tag "injected" at byte offset 0')
    case 'migrate': return new ApiError(400, 'Bad Request: group chat was upgraded to a supergroup chat', { migrate_to_chat_id: fault.to })
    case 'blocked': return new ApiError(403, 'Forbidden: bot was blocked by the user')
    case 'unauthorized': return new ApiError(401, 'Unauthorized')
    case 'chat_not_found': return new ApiError(400, 'Bad Request: chat not found')
    case 'server_error': {
      const status = fault.status ?? 500
      return new ApiError(status, status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Unavailable' : 'Internal Server Error')
    }
  }
}

function publicChat(chat: StandinChat): Record<string, unknown> {
  const out: Record<string, unknown> = { id: chat.id, type: chat.type }
  if (chat.title !== undefined) out.title = chat.title
  if (chat.username !== undefined) out.username = chat.username
  if (chat.first_name !== undefined) out.first_name = chat.first_name
  if (chat.is_forum === true) out.is_forum = true
  return out
}

/** The text a user sees: with parse_mode HTML, the markup checked the way Telegram checks it. */
function visibleText(source: string, parseMode: string | undefined): string {
  if (parseMode === undefined || parseMode === '') return source
  if (parseMode.toLowerCase() !== 'html') throw new ApiError(400, 'Bad Request: unsupported parse_mode')
  return parseTelegramHtml(source)
}

const byteOffset = (s: string, i: number): number => Buffer.byteLength(s.slice(0, i))

/**
 * Telegram's HTML parse mode, independently of transports/telegram (a shared bug must not pass
 * both): supported tags only, properly nested and closed, attributes quoted or bare, the named
 * entities &lt; &gt; &amp; &quot; and numeric ones; an `&` that starts no entity is literal.
 */
export function parseTelegramHtml(source: string): string {
  const fail = (detail: string): ApiError => new ApiError(400, `Bad Request: can't parse entities: ${detail}`)
  const stack: string[] = []
  let out = ''
  let i = 0
  while (i < source.length) {
    const c = source[i] as string
    if (c === '<') {
      const rest = source.slice(i)
      if (rest.startsWith('</')) {
        const end = /^<\/([a-zA-Z0-9-]*)\s*>/.exec(rest)
        if (end === null) throw fail(`Unclosed end tag at byte offset ${byteOffset(source, i)}`)
        const name = (end[1] ?? '').toLowerCase()
        const open = stack.pop()
        if (open === undefined) throw fail(`Unexpected end tag at byte offset ${byteOffset(source, i)}`)
        if (open !== name) throw fail(`Unmatched end tag at byte offset ${byteOffset(source, i)}, expected "</${open}>", found "</${name}>"`)
        i += end[0].length
        continue
      }
      const start = /^<([a-zA-Z][a-zA-Z0-9-]*)/.exec(rest)
      if (start === null) throw fail(`Unexpected end of name token at byte offset ${byteOffset(source, i + 1)}`)
      const name = (start[1] ?? '').toLowerCase()
      if (!HTML_TAGS.has(name)) throw fail(`Unsupported start tag "${name}" at byte offset ${byteOffset(source, i)}`)
      const tag = /^<[a-zA-Z][a-zA-Z0-9-]*((?:\s+[a-zA-Z][a-zA-Z0-9-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*>/.exec(rest)
      if (tag === null) throw fail(`Unclosed start tag at byte offset ${byteOffset(source, i)}`)
      const attrs = tag[1] ?? ''
      if (name === 'span' && !/\bclass\s*=\s*["']?tg-spoiler\b/.test(attrs)) throw fail(`Tag "span" must have class "tg-spoiler" at byte offset ${byteOffset(source, i)}`)
      stack.push(name)
      i += tag[0].length
      continue
    }
    if (c === '&') {
      const entity = /^&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(lt|gt|amp|quot));/.exec(source.slice(i, i + 12))
      if (entity !== null) {
        const code = entity[1] !== undefined ? Number(entity[1]) : entity[2] !== undefined ? parseInt(entity[2], 16) : undefined
        out += code !== undefined ? String.fromCodePoint(Math.min(code, 0x10ffff)) : ({ lt: '<', gt: '>', amp: '&', quot: '"' } as Record<string, string>)[entity[3] as string]
        i += entity[0].length
        continue
      }
    }
    out += c
    i++
  }
  if (stack.length > 0) throw fail(`Can't find end tag corresponding to start tag "${stack[stack.length - 1] ?? ''}"`)
  return out
}
