/**
 * A loopback stand-in for Elasticsearch's bulk endpoint that only counts documents, so the
 * benchmark measures the agent and not the cluster. Runs in its own process (its CPU is not the
 * agent's). Answers what the agent asks at start (health, index templates) and every bulk with
 * one `create` item of status 201 per document, as Elasticsearch answers under the agent's
 * filter_path when nothing failed (the agent parses that answer, as it would a real one).
 * The benchmark reads the count, and when the last documents came, from `GET /_bench/count`;
 * `?index=NAME` counts only the requests whose first action names that index, so the alerts the
 * agent writes to its alerts index are not taken for shipped lines (each writer sends its own
 * bulk requests).
 */
import { createServer } from 'node:http'
import { gunzip } from 'node:zlib'

/** Output in large steps: a batch inflates in one or two. */
const INFLATE = { chunkSize: 4 * 1024 * 1024 }

const ITEM = '{"create":{"status":201}},'
let docs = 0
let requests = 0
/** Documents, and when the last came, by the index the first action of their request names. */
const byIndex = new Map<string, { count: number; lastAt: number }>()
const INDEX = /"_index":"([^"]*)"/
/** When the last documents were counted (epoch ms): the benchmark's end, exact to the request rather than to its polling. */
let lastAt = 0
const server = createServer((req, res) => {
  /** `text` is JSON already (the bulk answer is built as text: it is long, and always the same items). */
  const send = (status: number, text: string): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
  const reply = (status: number, body: unknown): void => send(status, JSON.stringify(body))
  const url = req.url ?? '/'
  if (url.startsWith('/_bulk')) {
    requests++
    // The body is gathered and inflated in one call: a stream inflates in 16 KiB steps, each a
    // round trip to the thread pool, and this process shares the machine with the agent.
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') gunzip(body, INFLATE, (err, plain) => answer(err === null ? plain : undefined))
      else answer(body)
    })
    const answer = (plain: Buffer | undefined): void => {
      if (plain === undefined) return reply(400, { error: 'the body is not gzip' })
      let newlines = 0
      let i = -1
      while ((i = plain.indexOf(10, i + 1)) !== -1) newlines++
      const n = newlines >> 1
      docs += n
      const first = INDEX.exec(plain.toString('latin1', 0, Math.max(0, plain.indexOf(10))))
      const index = first?.[1] ?? ''
      lastAt = performance.timeOrigin + performance.now()
      const seen = byIndex.get(index) ?? { count: 0, lastAt: 0 }
      byIndex.set(index, { count: seen.count + n, lastAt })
      send(200, '{"errors":false,"items":[' + ITEM.repeat(n).slice(0, -1) + ']}')
    }
    return
  }
  req.resume()
  req.on('end', () => {
    if (url.startsWith('/_bench/count')) {
      const index = new URL(url, 'http://sink').searchParams.get('index')
      const one = index === null ? { count: docs, lastAt } : byIndex.get(index) ?? { count: 0, lastAt: 0 }
      return reply(200, { ...one, requests })
    }
    if (url.startsWith('/_cluster/health')) return reply(200, { status: 'green', cluster_name: 'bench' })
    if (url.startsWith('/_index_template') || url.startsWith('/_component_template')) return reply(200, { acknowledged: true })
    reply(200, { acknowledged: true })
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = server.address() as { port: number }
  process.stdout.write(`listening ${addr.port}\n`)
})
