/**
 * A loopback HTTP proxy in front of the real Elasticsearch that breaks requests on purpose, the
 * way networks and overloaded clusters do: whole-request 429/503, per-item 429 inside a bulk,
 * a connection reset before Elasticsearch sees anything, a response lost after Elasticsearch
 * applied the bulk, a request that never gets an answer. It records every request it saw.
 *
 * Faults are armed for the next N matching requests (default: the next `_bulk`). Per-item faults
 * remove the chosen items from what is forwarded, so Elasticsearch never applies them, and put
 * synthetic 429 items back at their positions in the real answer: the client sees exactly what a
 * partial rejection looks like.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'

export type Fault =
  /** Answer the whole request with `status` (not forwarded), with a Retry-After header if given (seconds). */
  | { kind: 'status'; status: number; retryAfter?: number }
  /** Answer the chosen bulk items with 429 es_rejected_execution_exception; forward only the others. */
  | { kind: 'item-429'; select: (position: number, count: number, id: string) => boolean }
  /** Destroy the connection before forwarding anything. */
  | { kind: 'reset' }
  /** Forward, wait for Elasticsearch's answer, then destroy the connection instead of answering. */
  | { kind: 'drop-response' }
  /** Never answer (forwarding first when `forward`, so Elasticsearch applies it). */
  | { kind: 'hang'; forward?: boolean }

export interface SeenRequest {
  /** 1 for the first request the proxy saw. */
  seq: number
  /** When it arrived (ms since epoch). */
  at: number
  method: string
  path: string
  gzip: boolean
  /** For a bulk: the `_id` of each item, in order. */
  ids: string[]
  /** The fault applied, if any. */
  fault?: Fault['kind']
  /** For a bulk: the ids passed on to Elasticsearch (all of them without a fault, none when not forwarded). */
  forwarded: string[]
}

interface Rule {
  fault: Fault
  left: number
  when: (req: SeenRequest) => boolean
}

interface BulkItem {
  action: string
  id: string
  lines: string[]
}

interface Upstream {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

const isBulk = (req: SeenRequest): boolean => req.method === 'POST' && /(^|\/)_bulk(\?|$)/.test(req.path)

/** Hop-by-hop and length headers: recomputed for what is actually sent. */
const DROP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'host', 'accept-encoding'])

function parseBulk(text: string): BulkItem[] {
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const items: BulkItem[] = []
  for (let i = 0; i < lines.length;) {
    const actionLine = lines[i] as string
    const parsed = JSON.parse(actionLine) as Record<string, { _id?: string }>
    const action = Object.keys(parsed)[0] as string
    const width = action === 'delete' ? 1 : 2
    items.push({ action, id: String(parsed[action]?._id ?? ''), lines: lines.slice(i, i + width) })
    i += width
  }
  return items
}

export class FaultProxy {
  readonly seen: SeenRequest[] = []
  private readonly rules: Rule[] = []
  private readonly sockets = new Set<Socket>()
  private readonly upstream: URL

  private constructor(private readonly server: Server, upstream: string, readonly url: string) {
    this.upstream = new URL(upstream)
  }

  /**
   * Starts a proxy on a free port of `host` (loopback unless given: another address of this
   * machine makes it look remote) in front of `upstream` (e.g. ES_URL).
   */
  static async start(upstream: string, host = '127.0.0.1'): Promise<FaultProxy> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, host, resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('the fault proxy has no TCP address')
    const proxy = new FaultProxy(server, upstream, `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`)
    server.on('connection', (socket) => {
      proxy.sockets.add(socket)
      socket.on('close', () => proxy.sockets.delete(socket))
    })
    server.on('request', (req, res) => { proxy.handle(req, res).catch(() => res.destroy()) })
    return proxy
  }

  /** Arms `fault` for the next `times` requests (default 1) that match `when` (default: bulk requests). */
  inject(fault: Fault, opts: { times?: number; when?: (req: SeenRequest) => boolean } = {}): void {
    this.rules.push({ fault, left: opts.times ?? 1, when: opts.when ?? isBulk })
  }

  /** Disarms every fault: from now on requests pass through. */
  clear(): void {
    this.rules.length = 0
  }

  /** The bulk requests seen so far. */
  bulks(): SeenRequest[] {
    return this.seen.filter(isBulk)
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks)
    const gzip = /gzip/i.test(String(req.headers['content-encoding'] ?? ''))
    const seen: SeenRequest = { seq: this.seen.length + 1, at: Date.now(), method: req.method ?? 'GET', path: req.url ?? '/', gzip, ids: [], forwarded: [] }
    let items: BulkItem[] = []
    if (isBulk(seen)) {
      items = parseBulk((gzip ? gunzipSync(raw) : raw).toString('utf8'))
      seen.ids = items.map((i) => i.id)
    }
    this.seen.push(seen)

    const rule = this.rules.find((r) => r.left > 0 && r.when(seen))
    if (rule === undefined) {
      seen.forwarded = seen.ids
      this.reply(res, await this.forward(req, raw))
      return
    }
    rule.left--
    const fault = rule.fault
    seen.fault = fault.kind
    switch (fault.kind) {
      case 'status': {
        const body = JSON.stringify({ error: { type: 'injected_fault', reason: `status ${fault.status} injected by the fault proxy` }, status: fault.status })
        res.writeHead(fault.status, {
          'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch',
          ...(fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) })
        })
        res.end(body)
        return
      }
      case 'reset':
        req.socket.destroy()
        return
      case 'drop-response':
        seen.forwarded = seen.ids
        await this.forward(req, raw)
        req.socket.destroy()
        return
      case 'hang':
        if (fault.forward === true) {
          seen.forwarded = seen.ids
          await this.forward(req, raw)
        }
        return
      case 'item-429':
        await this.rejectItems(req, res, items, fault.select, seen)
    }
  }

  /** Forwards the items not selected, then answers with the real results and 429s spliced in. */
  private async rejectItems(req: IncomingMessage, res: ServerResponse, items: BulkItem[],
    select: (position: number, count: number, id: string) => boolean, seen: SeenRequest): Promise<void> {
    const rejected = items.map((item, i) => select(i, items.length, item.id))
    const kept = items.filter((_, i) => !rejected[i])
    seen.forwarded = kept.map((i) => i.id)
    let upstream: Upstream
    let realItems: unknown[] = []
    if (kept.length > 0) {
      const body = Buffer.from(kept.map((i) => i.lines.join('\n') + '\n').join(''), 'utf8')
      upstream = await this.forward(req, body, { 'content-encoding': undefined })
      if (upstream.status >= 300) {
        this.reply(res, upstream)
        return
      }
      realItems = (JSON.parse(upstream.body.toString('utf8')) as { items: unknown[] }).items
    } else {
      upstream = { status: 200, headers: { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' }, body: Buffer.alloc(0) }
    }
    const merged: unknown[] = []
    let next = 0
    items.forEach((item, i) => {
      merged.push(rejected[i]
        ? { [item.action]: { _id: item.id, status: 429, error: { type: 'es_rejected_execution_exception', reason: 'rejected by the fault proxy' } } }
        : realItems[next++])
    })
    this.reply(res, { ...upstream, body: Buffer.from(JSON.stringify({ errors: true, took: 0, items: merged }), 'utf8') })
  }

  private forward(req: IncomingMessage, body: Buffer, override: Record<string, string | undefined> = {}): Promise<Upstream> {
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !DROP_HEADERS.has(name)) headers[name] = value
    }
    for (const [name, value] of Object.entries(override)) {
      if (value === undefined) delete headers[name]
      else headers[name] = value
    }
    headers['content-length'] = String(body.length)
    return new Promise((resolve, reject) => {
      const out = httpRequest({
        host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers
      }, (upstream) => {
        const chunks: Buffer[] = []
        upstream.on('data', (chunk: Buffer) => chunks.push(chunk))
        upstream.on('end', () => resolve({ status: upstream.statusCode ?? 502, headers: upstream.headers, body: Buffer.concat(chunks) }))
        upstream.on('error', reject)
      })
      out.on('error', reject)
      out.end(body)
    })
  }

  private reply(res: ServerResponse, upstream: Upstream): void {
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !DROP_HEADERS.has(name)) headers[name] = value
    }
    headers['content-length'] = String(upstream.body.length)
    res.writeHead(upstream.status, headers)
    res.end(upstream.body)
  }
}
