/**
 * A batch does not wait for `batch.interval` once every file has been read to its end: nothing
 * more is coming soon, so what is queued goes out when a request slot is free. With files still
 * being read, batches fill as usual.
 */
import { join } from 'node:path'
import t from 'tap'
import { agentConfig, allMessages, expectedMessages, fileInput, startAgent, waitForCount, writeLines, esScenario } from './support/agent-harness'

t.test('caught up: a part-filled batch is sent at once, not after batch.interval', async (t) => {
  const setup = esScenario(t, 'caughtup')
  if (!setup) return
  const { url, s } = setup
  const log = join(s.logs, 'app.log')
  // An interval far longer than the test may wait: only the caught-up rule can send these.
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')])], { batch_interval: 600_000, batch_max_docs: 10_000 })
  const agent = await startAgent(cfg)
  t.teardown(() => agent.stop())

  writeLines(log, 'first', 0, 7)
  await waitForCount(url, s.index, 7, 20_000)
  writeLines(log, 'then', 0, 5)
  await waitForCount(url, s.index, 12, 20_000)
  t.same(await allMessages(url, s.index), [...expectedMessages('first', 0, 7), ...expectedMessages('then', 0, 5)].sort(),
    'both small writes arrived, each well before the ten-minute batch interval')
})
