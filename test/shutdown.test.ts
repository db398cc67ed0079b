/**
 * The daemon's graceful shutdown, as a service manager drives it (spawned `logwarden run`):
 * SIGTERM while Elasticsearch is unreachable still exits 0 within shutdown_timeout, with a
 * checkpoint that has not moved past anything unacknowledged; SIGINT on a healthy run exits 0
 * and the next start sends nothing Elasticsearch already has.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { CheckpointData } from '../agent/checkpoint/store'
import { CHECKPOINT_FILE } from '../agent/checkpoint/store'
import { closedPort, startCli, writeScenarioConfig, type CliExit, type CliProcess } from './support/cli-process'
import { es } from './support/elasticsearch'
import {
  allMessages, duplicatesIn, expectedMessages, scenario, sleep, waitForCount, writeLines, type Scenario, esScenario } from './support/agent-harness'

const SHUTDOWN_TIMEOUT_MS = 2000
/** Process start-up and exit on a busy 2-core machine, on top of shutdown_timeout. */
const MARGIN_MS = 8000

function config(s: Scenario, hosts: string, setupOnStart: boolean): string {
  return writeScenarioConfig(s, hosts, [`paths: [${JSON.stringify(join(s.logs, '*.log'))}]`, 'scan_interval: 300ms'], {
    top: [`shutdown_timeout: ${SHUTDOWN_TIMEOUT_MS}ms`, 'log: { level: info }'], setupOnStart,
  })
}

/** Polls the process's stderr for `text`; fails if the process exits or the wait runs out first. */
async function stderrSays(p: CliProcess, text: string, waitMs = 20_000): Promise<void> {
  const until = Date.now() + waitMs
  while (!p.stderr().includes(text)) {
    if (p.child.exitCode !== null) throw new Error(`logwarden exited (${p.child.exitCode}) before saying ${text}: ${p.stderr()}`)
    if (Date.now() > until) throw new Error(`logwarden did not say ${text} in ${waitMs} ms: ${p.stderr()}`)
    await sleep(50)
  }
}

/** Sends `signal` and waits for the exit; a process still running after `boundMs` is killed and reported. */
async function stop(p: CliProcess, signal: NodeJS.Signals, boundMs: number): Promise<CliExit & { inTime: boolean }> {
  p.child.kill(signal)
  let inTime = true
  const timer = setTimeout(() => { inTime = false; p.child.kill('SIGKILL') }, boundMs)
  const res = await p.exited
  clearTimeout(timer)
  return { ...res, inTime }
}

function checkpoint(s: Scenario): CheckpointData {
  return JSON.parse(readFileSync(join(s.stateDir, CHECKPOINT_FILE), 'utf8')) as CheckpointData
}

for (const setupOnStart of [false, true]) {
  const when = setupOnStart ? 'waiting to install the template' : 'with documents in flight'
  t.test(`SIGTERM while Elasticsearch is unreachable (${when}) exits 0 within shutdown_timeout`, async (t) => {
    const s = scenario('sigtermdown')
    mkdirSync(s.logs, { recursive: true })
    writeLines(join(s.logs, 'app.log'), 'down', 0, 200)
    const cli = startCli(['run', '-c', config(s, `http://127.0.0.1:${await closedPort()}`, setupOnStart)])
    t.teardown(() => { if (cli.child.exitCode === null) cli.child.kill('SIGKILL') })
    await stderrSays(cli, 'LW_ES_UNREACHABLE')

    const res = await stop(cli, 'SIGTERM', SHUTDOWN_TIMEOUT_MS + MARGIN_MS)
    t.ok(res.inTime, `exited within shutdown_timeout + ${MARGIN_MS} ms`)
    t.equal(res.code, 0, 'exit 0', { stderr: res.stderr })
    t.ok(existsSync(join(s.stateDir, CHECKPOINT_FILE)), 'the checkpoint was written')
    const offsets = Object.values(checkpoint(s).files).map((f) => f.offset)
    // Reading (and so the rules) goes on while the template waits; nothing was acknowledged, so
    // the offset has not moved either way (the file may not even be in the checkpoint yet when
    // the signal comes right after start).
    t.ok(offsets.every((o) => o === 0), `nothing was acknowledged, so no offset moved (${JSON.stringify(offsets)})`)
    if (offsets.length > 0) t.match(res.stderr, /stopped at the deadline; entries not yet acknowledged will be read again|every entry read was acknowledged/)
  })
}

t.test('SIGINT on a healthy run exits 0; the restart sends nothing twice', async (t) => {
  const setup = esScenario(t, 'sigint')
  if (!setup) return
  const { url, s } = setup
  const log = join(s.logs, 'app.log')
  const cfg = config(s, url, true)
  writeLines(log, 'i', 0, 500)

  const first = startCli(['run', '-c', cfg])
  t.teardown(() => { if (first.child.exitCode === null) first.child.kill('SIGKILL') })
  await waitForCount(url, s.index, 500, 30_000)
  writeLines(log, 'i', 500, 300) // likely still in flight when the signal comes
  const stopped = await stop(first, 'SIGINT', SHUTDOWN_TIMEOUT_MS + MARGIN_MS)
  t.ok(stopped.inTime, 'exited within shutdown_timeout + margin')
  t.equal(stopped.code, 0, 'exit 0', { stderr: stopped.stderr })
  t.match(stopped.stderr, /stopped; every entry read was acknowledged/)

  writeLines(log, 'i', 800, 200)
  const second = startCli(['run', '-c', cfg])
  t.teardown(() => { if (second.child.exitCode === null) second.child.kill('SIGKILL') })
  t.equal(await waitForCount(url, s.index, 1000, 30_000), 1000)
  await sleep(500)
  const messages = await allMessages(url, s.index)
  t.same(duplicatesIn(messages), [])
  t.same(messages, expectedMessages('i', 0, 1000).sort(), 'every line once')
  // A document sent again would be refused as already there: Elasticsearch counts those.
  const stats = await es<{ _all: { primaries: { indexing: { index_failed_due_to_version_conflict: number } } } }>(
    url, 'GET', `/${s.index},-${s.template}-deadletter/_stats/indexing`)
  t.equal(stats._all.primaries.indexing.index_failed_due_to_version_conflict, 0, 'the restart re-sent nothing')

  const end = await stop(second, 'SIGINT', SHUTDOWN_TIMEOUT_MS + MARGIN_MS)
  t.equal(end.code, 0, 'exit 0', { stderr: end.stderr })
})
