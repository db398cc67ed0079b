/**
 * kill -9 of the agent in the middle of a stream, then a restart: the checkpoint on disk is
 * whole (atomic rename), it covers only acknowledged entries, and the replay of the rest is
 * harmless (create + deterministic _id) — Elasticsearch ends with exactly the lines written.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { allMessages, countDocs, duplicatesIn, expectedMessages, waitForCount, writeLines, sleep, esScenario } from './support/agent-harness'

const CLI = join(__dirname, '..', 'dist', 'agent', 'cli.js')

function startCli(config: string): ChildProcess {
  return spawn(process.execPath, [CLI, 'run', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] })
}

t.test('kill -9 mid-stream, restart: documents == lines, no duplicates', async (t) => {
  const setup = esScenario(t, 'kill9')
  if (!setup) return
  const { url, s } = setup
  const config = join(s.dir, 'config.yaml')
  writeFileSync(config, [
    'service: { name: kill9 }',
    `state_dir: ${JSON.stringify(s.stateDir)}`,
    'inputs:',
    '  - type: file',
    `    paths: [${JSON.stringify(join(s.logs, '*.log'))}]`,
    '    scan_interval: 300ms',
    'elasticsearch:',
    `  hosts: [${JSON.stringify(url)}]`,
    `  index: ${JSON.stringify(s.indexConfig)}`,
    '  batch: { max_docs: 300, interval: 50ms }',
    `  template: { name: ${s.template}, replicas: 0 }`,
    `  dead_letter: { index: ${s.template}-deadletter }`,
    'checkpoint_interval: 100ms',
    'log: { level: warn }',
  ].join('\n'))
  const log = join(s.logs, 'app.log')
  const total = 12_000
  let written = 0
  const writer = (async () => {
    while (written < total) {
      writeLines(log, 'k', written, 200)
      written += 200
      await sleep(15)
    }
  })()

  let kills = 0
  let child = startCli(config)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  // Kill it twice while lines keep coming, each time once some documents have arrived.
  for (const threshold of [2000, 6000]) {
    while ((await countDocs(url, s.index)) < threshold) await sleep(100)
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    kills++
    child = startCli(config)
  }
  await writer
  const n = await waitForCount(url, s.index, total, 90_000)
  await sleep(1000)
  const messages = await allMessages(url, s.index)
  t.equal(kills, 2)
  t.equal(n, total, 'documents == lines written')
  t.same(duplicatesIn(messages), [], 'no duplicates')
  t.same(messages, expectedMessages('k', 0, total).sort())
  child.kill('SIGTERM')
  const code = await new Promise((r) => child.once('exit', (c) => r(c)))
  t.equal(code, 0, 'SIGTERM exits 0')
})
