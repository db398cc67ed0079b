/**
 * `start_position: end`: a file already there at the first start ships only what is written
 * after the start — and a line half-written at that moment is shipped whole, not from its
 * middle; a file that appears later is read from its beginning; and after a restart the
 * checkpoint decides where reading resumes, whatever start_position says.
 */
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  agentConfig, allMessages, duplicatesIn, expectedMessages, fileInput, sleep, startAgent,
  waitForCount, writeLines, esScenario } from './support/agent-harness'

t.test('start_position end: only what is written after the start; a file that appears later from its beginning', async (t) => {
  const setup = esScenario(t, 'startend')
  if (!setup) return
  const { url, s } = setup
  const old = join(s.logs, 'old.log')
  writeLines(old, 'old', 0, 100)
  // The application is in the middle of writing line 100 when the agent starts.
  appendFileSync(old, '{"level":30,"time":1700000000100,"pid":1,"hostname":"h","m')
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')], { start_position: 'end' })])

  const agent = await startAgent(cfg)
  t.teardown(() => agent.stop())
  appendFileSync(old, 'sg":"old 100"}\n')
  writeLines(old, 'old', 101, 50)
  const late = join(s.logs, 'late.log')
  writeLines(late, 'late', 0, 30)

  await waitForCount(url, s.index, 51 + 30, 30_000)
  await sleep(500) // anything more (the 100 lines before the start) would arrive by now
  const messages = await allMessages(url, s.index)
  t.same(messages, [...expectedMessages('old', 100, 51), ...expectedMessages('late', 0, 30)].sort(),
    'the half-written line whole, the lines after it, and all of the late file; nothing from before the start')
})

t.test('after a restart the checkpoint wins over start_position', async (t) => {
  const setup = esScenario(t, 'startendrestart')
  if (!setup) return
  const { url, s } = setup
  const log = join(s.logs, 'app.log')
  writeLines(log, 'before', 0, 40)
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')], { start_position: 'end' })])

  const first = await startAgent(cfg)
  writeLines(log, 'during', 0, 60)
  await waitForCount(url, s.index, 60, 30_000)
  t.ok(await first.stop(), 'the first run stopped with everything acknowledged')

  // Written while the agent is down: `end` would skip these, the checkpoint must not.
  writeLines(log, 'down', 0, 25)
  const second = await startAgent(cfg)
  t.teardown(() => second.stop())
  writeLines(log, 'after', 0, 15)
  await waitForCount(url, s.index, 60 + 25 + 15, 30_000)
  await sleep(500)
  const messages = await allMessages(url, s.index)
  t.same(duplicatesIn(messages), [])
  t.same(messages, [...expectedMessages('during', 0, 60), ...expectedMessages('down', 0, 25), ...expectedMessages('after', 0, 15)].sort(),
    'what was written while the agent was down is shipped; what was there before the first start is not')
  t.equal(second.sink.stats().duplicates, 0, 'the second run re-sent nothing')
})
