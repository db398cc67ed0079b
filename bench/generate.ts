import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const PATHS = ['/api/orders', '/api/users/42', '/api/cart', '/health', '/api/payments', '/static/app.js', '/api/search?q=shoes&page=2']
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE']
const AGENTS = ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0', 'okhttp/4.12.0', 'curl/8.4.0']

/**
 * Writes `count` pino-http-shaped JSON lines of about 320 bytes: mostly 2xx requests, ~3% 5xx,
 * ~1% errors with a stack trace (escaped newlines, one line each) — the mix the benchmark ships.
 * Deterministic (a fixed LCG), so runs are comparable.
 */
export async function generatePinoLines(file: string, count: number): Promise<number> {
  const out = createWriteStream(file)
  let seed = 12345
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff }
  let bytes = 0
  let chunk = ''
  const t0 = 1_763_700_000_000
  for (let i = 0; i < count; i++) {
    const r = rnd()
    const status = r < 0.03 ? 500 + Math.floor(rnd() * 4) : r < 0.1 ? 404 : 200
    const method = METHODS[i % METHODS.length]!
    const path = PATHS[i % PATHS.length]!
    let line: string
    if (r > 0.99) {
      line = `{"level":50,"time":${t0 + i},"pid":4242,"hostname":"web-1","reqId":"req-${i}","err":{"type":"TypeError","message":"Cannot read properties of undefined (reading 'id')","stack":"TypeError: Cannot read properties of undefined (reading 'id')\\n    at handler (/app/src/orders.js:41:17)\\n    at Layer.handle (/app/node_modules/express/lib/router/layer.js:95:5)"},"msg":"request failed"}`
    } else {
      line = `{"level":${status >= 500 ? 50 : 30},"time":${t0 + i},"pid":4242,"hostname":"web-1","reqId":"req-${i}","req":{"method":"${method}","url":"${path}","remoteAddress":"10.0.${i % 250}.${(i >> 8) % 250}","headers":{"user-agent":"${AGENTS[i % AGENTS.length]}"}},"res":{"statusCode":${status}},"responseTime":${Math.floor(rnd() * 300)},"msg":"request completed"}`
    }
    chunk += line + '\n'
    if (chunk.length > 1 << 20) {
      bytes += chunk.length
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
      chunk = ''
    }
  }
  bytes += chunk.length
  out.write(chunk)
  await new Promise<void>((resolve, reject) => { out.on('error', reject); out.end(() => resolve()) })
  return bytes
}

/**
 * 1,000 rules of the kinds people write, over the fields the benchmark lines have and fields
 * they mostly lack (so the rule index can leave those rules out): path prefixes, status codes,
 * methods, error types, user agents, event actions; match and frequency rules.
 */
export function writeGeneratedRules(dir: string, count: number): void {
  mkdirSync(dir, { recursive: true })
  let out = 'rules:\n'
  for (let i = 0; i < count; i++) {
    const kind = i % 5
    const type = i % 2 === 0 ? 'match' : 'frequency'
    const extra = type === 'frequency' ? '\n    threshold: 50\n    window: 1m' : ''
    let cond: string
    if (kind === 0) cond = `query: 'url.path: /api/svc${i}/*'`
    else if (kind === 1) cond = `when: { all: [ { field: http.response.status_code, equals: ${400 + (i % 200)} }, { field: http.request.method, equals: ${['GET', 'POST', 'PUT'][i % 3]} } ] }`
    else if (kind === 2) cond = `when: { field: error.type, equals: Error${i} }`
    else if (kind === 3) cond = `when: { field: user_agent.original, contains: bot-${i} }`
    else cond = `when: { field: event.action, equals: action-${i} }`
    out += `  - id: gen-${i}\n    name: generated rule ${i}\n    type: ${type}\n    severity: info\n    ${cond}${extra}\n`
  }
  writeFileSync(join(dir, 'generated.yaml'), out)
}
