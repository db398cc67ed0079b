/**
 * A graceful stop in the middle of a stream, more lines written while the agent is down, and a
 * restart: the agent resumes exactly at its checkpoint — the count in Elasticsearch equals the
 * lines written, and the second run sends nothing twice (no 409s at all).
 */
import { join } from 'node:path'
import t from 'tap'
import {
  agentConfig, allMessages, duplicatesIn, expectedMessages, fileInput, startAgent,
  waitForCount, writeLines, sleep, esScenario } from './support/agent-harness'

t.test('restart resumes exactly at the checkpoint', async (t) => {
  const setup = esScenario(t, 'restart')
  if (!setup) return
  const { url, s } = setup
  const a = join(s.logs, 'a.log')
  const b = join(s.logs, 'b.log')
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')])])

  const first = await startAgent(cfg)
  for (let i = 0; i < 10; i++) {
    writeLines(a, 'a', i * 150, 150)
    writeLines(b, 'b', i * 100, 100)
    await sleep(20)
  }
  // Stop while entries are still in flight: the offsets must cover only what was acknowledged.
  t.ok(await first.stop(), 'graceful stop acknowledged everything it read')

  writeLines(a, 'a', 1500, 700)
  writeLines(b, 'b', 1000, 300)

  const second = await startAgent(cfg)
  t.teardown(() => second.stop())
  const total = 1500 + 700 + 1000 + 300
  await waitForCount(url, s.index, total)
  await sleep(500)
  const messages = await allMessages(url, s.index)
  t.equal(messages.length, total, 'documents == lines written')
  t.same(duplicatesIn(messages), [])
  t.same(messages, [...expectedMessages('a', 0, 2200), ...expectedMessages('b', 0, 1300)].sort())
  t.equal(second.sink.stats().duplicates, 0, 'the second run re-sent nothing (no 409 answers)')
})
