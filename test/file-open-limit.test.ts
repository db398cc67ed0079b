/**
 * `limits.max_open_files: 2` with six files being written at once: the harvesters beyond the
 * limit wait their turn, those holding a descriptor give it up once their file is idle
 * (`close_inactive`), and a file written again after its descriptor was closed is picked up at
 * its checkpoint — every line of every file arrives, exactly once.
 */
import { join } from 'node:path'
import t from 'tap'
import {
  agentConfig, allMessages, duplicatesIn, expectedMessages, fileInput, sleep, startAgent,
  waitForCount, writeLines, esScenario } from './support/agent-harness'

const FILES = 6
const BURSTS = 4
const LINES_PER_BURST = 150

t.test('six files written at once through two descriptors: every line once', async (t) => {
  const setup = esScenario(t, 'openlimit')
  if (!setup) return
  const { url, s } = setup
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')], { close_inactive: 300 })])
  cfg.limits.max_open_files = 2
  const files = Array.from({ length: FILES }, (_, i) => join(s.logs, `f${i}.log`))
  for (const [i, file] of files.entries()) writeLines(file, `f${i}`, 0, 1) // there at the start

  const agent = await startAgent(cfg)
  t.teardown(() => agent.stop())
  // Bursts on every file, with pauses longer than close_inactive between them, so descriptors
  // are released and files are reopened at their checkpoints while the others wait for a slot.
  for (let burst = 0; burst < BURSTS; burst++) {
    for (let k = 0; k < 5; k++) {
      for (const [i, file] of files.entries()) writeLines(file, `f${i}`, 1 + burst * LINES_PER_BURST + k * 30, 30)
      await sleep(20)
    }
    await sleep(600)
  }

  const perFile = 1 + BURSTS * LINES_PER_BURST
  const total = FILES * perFile
  const n = await waitForCount(url, s.index, total, 45_000)
  t.equal(n, total, 'documents == lines written')
  await sleep(500)
  const messages = await allMessages(url, s.index)
  t.same(duplicatesIn(messages), [], 'no line twice')
  t.same(messages, files.flatMap((_, i) => expectedMessages(`f${i}`, 0, perFile)).sort(), 'every line of every file')
  t.equal(agent.sink.stats().duplicates, 0, 'no line was read and sent twice')
})
