/**
 * Elasticsearch is unreachable when the agent starts and comes up later: the agent keeps
 * retrying and, once it answers, everything written meanwhile arrives — once.
 */
import { createServer, connect, type Server } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import {
  agentConfig, allMessages, countDocs, duplicatesIn, expectedMessages, fileInput, startAgent,
  waitForCount, writeLines, sleep, esScenario } from './support/agent-harness'
import type { Agent } from '../agent/agent'
import { closedPort } from './support/cli-process'

/** A plain TCP forwarder to the real Elasticsearch: "the cluster comes up" = this starts listening. */
function forward(port: number, target: URL): Promise<Server> {
  const sockets = new Set<import('node:net').Socket>()
  const srv = createServer((c) => {
    const up = connect(Number(target.port || 80), target.hostname)
    sockets.add(c)
    sockets.add(up)
    c.on('close', () => sockets.delete(c))
    up.on('close', () => sockets.delete(up))
    c.pipe(up).pipe(c)
    c.on('error', () => up.destroy())
    up.on('error', () => c.destroy())
  })
  srv.on('close', () => { for (const so of sockets) so.destroy() })
  const close = srv.close.bind(srv)
  srv.close = (cb?: (err?: Error) => void) => { for (const so of sockets) so.destroy(); return close(cb) }
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)))
}

t.test('Elasticsearch down at start, then up: nothing lost, nothing twice', async (t) => {
  const setup = esScenario(t, 'esdown')
  if (!setup) return
  const { url, s } = setup
  const port = await closedPort()
  const log = join(s.logs, 'app.log')
  writeLines(log, 'early', 0, 500)

  const cfg = agentConfig(s, `http://127.0.0.1:${port}`, [fileInput([join(s.logs, '*.log')])])
  // start() waits for the index template, which waits for Elasticsearch: run it in the background.
  let agent: Agent | undefined
  const starting = startAgent(cfg).then((a) => { agent = a })
  t.teardown(async () => { await starting; await agent?.stop() })
  await sleep(2000)
  writeLines(log, 'while-down', 0, 300)
  t.equal(await countDocs(url, s.index), 0, 'nothing can have arrived while the cluster was down')

  const proxy = await forward(port, new URL(url))
  t.teardown(() => new Promise<void>((r) => proxy.close(() => r())))
  await starting
  writeLines(log, 'after-up', 0, 200)
  await waitForCount(url, s.index, 1000)
  await sleep(500)
  const messages = await allMessages(url, s.index)
  t.same(duplicatesIn(messages), [])
  t.same(messages, [...expectedMessages('early', 0, 500), ...expectedMessages('while-down', 0, 300), ...expectedMessages('after-up', 0, 200)].sort())
})
