/**
 * Loopback ports for servers a test stops and starts again, or for "nothing listens here".
 *
 * They are taken below the kernel's ephemeral range. A port from `listen(0)` that is closed again
 * can be handed to the next `listen(0)` of a test running in parallel — a fault proxy that
 * forwards to the real Elasticsearch, another Telegram stand-in — and then "the cluster is down"
 * or "Telegram is offline" is no longer true. That happened once in CI. `listen(0)` never hands
 * out a port below the range, so a port found free there stays free unless someone asks for it
 * by number.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

const LOWEST = 10_000

/** A loopback port that is free now and that no `listen(0)` will take. */
export async function quietPort(): Promise<number> {
  const high = ephemeralLow()
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (high - LOWEST))
    if (await isFree(port)) return port
  }
  throw new Error(`quietPort: no free loopback port between ${LOWEST} and ${high}`)
}

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return low > LOWEST + 1000 ? low : 32_768
  } catch {
    return 32_768 // Linux's default; where it differs, a collision makes a test fail, never pass
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}
