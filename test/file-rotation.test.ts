/**
 * Every rotation mode against the real agent and the real Elasticsearch: whatever happens to the
 * files, the documents in Elasticsearch are exactly the lines written — none lost, none twice.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, truncateSync, copyFileSync, writeFileSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { CHECKPOINT_FILE, type CheckpointData } from '../agent/checkpoint/store'
import { esUrl } from './support/elasticsearch'
import {
  agentConfig, allMessages, dropScenario, duplicatesIn, expectedMessages, fileInput, scenario, startAgent,
  waitForCount, writeLines, sleep,
} from './support/agent-harness'

interface Ctx {
  log: string
  url: string
  index: string
  stateDir: string
  /** Stops the agent, runs `meanwhile` (what happens to the files while it is away), starts it again. */
  restart(meanwhile: () => void): Promise<void>
}

/** What logrotate's `compress` leaves of a rotated file: `dest` gzipped, its mtime kept (gzip keeps it). */
function gzipTo(src: string, dest: string): void {
  writeFileSync(dest, gzipSync(readFileSync(src)))
  const { atime, mtime } = statSync(src)
  utimesSync(dest, atime, mtime)
}

/** logrotate's copytruncate: the file copied to app.log.1 (logrotate names copies outside *.log), then emptied in place. */
function copytruncate(log: string): void {
  copyFileSync(log, log.replace('app.log', 'app.log.1'))
  truncateSync(log, 0)
}

async function run(t: tap.Test, name: string, body: (ctx: Ctx) => Promise<string[]>): Promise<void> {
  const url = esUrl(t)
  if (!url) return
  const s = scenario(name)
  mkdirSync(s.logs, { recursive: true })
  const log = join(s.logs, 'app.log')
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')])])
  let agent = await startAgent(cfg)
  t.teardown(async () => { await agent.stop(); await dropScenario(url, s) })
  const restart = async (meanwhile: () => void): Promise<void> => {
    await agent.stop()
    meanwhile()
    agent = await startAgent(cfg)
  }
  const expected = await body({ log, url, index: s.index, stateDir: s.stateDir, restart })
  const count = await waitForCount(url, s.index, expected.length)
  await sleep(500) // anything extra (a duplicate) would arrive now
  const messages = await allMessages(url, s.index)
  t.equal(messages.length, expected.length, `${name}: documents == lines written (count ${count})`)
  t.same(duplicatesIn(messages), duplicatesIn([...expected].sort()), 'no line shipped twice (only lines written twice appear twice)')
  t.same(messages, [...expected].sort(), 'every line arrived')
}

t.test('rename rotation (create): the old file is read to its end, the new one from its start', (t) => run(t, 'rename', async ({ log, url, index }) => {
  writeLines(log, 'before', 0, 1000)
  await waitForCount(url, index, 1000)
  renameSync(log, log.replace('app.log', 'app.1.old')) // out of the glob
  // The application has not reopened yet: it still writes to the renamed file.
  writeLines(log.replace('app.log', 'app.1.old'), 'late', 0, 50)
  writeLines(log, 'after', 0, 700)
  return [...expectedMessages('before', 0, 1000), ...expectedMessages('late', 0, 50), ...expectedMessages('after', 0, 700)]
}))

t.test('rename rotation within the glob: the renamed file is followed, not read again', (t) => run(t, 'rename-glob', async ({ log, url, index }) => {
  writeLines(log, 'first', 0, 800)
  await waitForCount(url, index, 800)
  renameSync(log, log.replace('app.log', 'app-1.log')) // still matches *.log
  writeLines(log.replace('app.log', 'app-1.log'), 'late', 0, 20)
  writeLines(log, 'second', 0, 400)
  return [...expectedMessages('first', 0, 800), ...expectedMessages('late', 0, 20), ...expectedMessages('second', 0, 400)]
}))

t.test('copytruncate: the file is copied aside and truncated in place', (t) => run(t, 'copytruncate', async ({ log, url, index }) => {
  writeLines(log, 'before', 0, 1000)
  await waitForCount(url, index, 1000)
  copytruncate(log)
  await sleep(300)
  writeLines(log, 'after', 0, 600)
  return [...expectedMessages('before', 0, 1000), ...expectedMessages('after', 0, 600)]
}))

/**
 * 20,000 lines at once, copied aside by `copy` and truncated a moment later: the agent cannot
 * have read them all, and those it had not read are only in the copy (logrotate names it outside
 * the glob).
 */
function copytruncateBehind(copy: (log: string) => void): (ctx: Ctx) => Promise<string[]> {
  return async ({ log, url, index }) => {
    writeLines(log, 'early', 0, 100)
    await waitForCount(url, index, 100)
    writeLines(log, 'burst', 0, 20_000)
    copy(log)
    truncateSync(log, 0)
    await sleep(300)
    writeLines(log, 'after', 0, 300)
    return [...expectedMessages('early', 0, 100), ...expectedMessages('burst', 0, 20_000), ...expectedMessages('after', 0, 300)]
  }
}

t.test('copytruncate while the agent is behind: what it had not read yet comes from the copy', (t) =>
  run(t, 'copytruncate-behind', copytruncateBehind((log) => copyFileSync(log, log.replace('app.log', 'app.log.1')))))

// logrotate's copytruncate with `compress` and no `delaycompress`: the copy is app.log.1.gz by the
// time the agent looks (made here before the truncation, so the test does not race it).
t.test('copytruncate with compress while the agent is behind: what it had not read comes from the gzipped copy', (t) =>
  run(t, 'copytruncate-gzip', copytruncateBehind((log) => gzipTo(log, log.replace('app.log', 'app.log.1.gz')))))

t.test('copytruncate while the agent was stopped: what it had not read comes from the copy at the next start', (t) => run(t, 'copytruncate-away', async ({ log, url, index, stateDir, restart }) => {
  writeLines(log, 'before', 0, 500)
  await waitForCount(url, index, 500)
  // While the agent is stopped (a deploy at midnight): more lines, then logrotate's copytruncate,
  // then the application writes on into the emptied file.
  await restart(() => {
    writeLines(log, 'unread', 0, 700)
    copytruncate(log)
    writeLines(log, 'after', 0, 300)
  })
  await waitForCount(url, index, 1500)
  await sleep(500) // a checkpoint is written every 200 ms
  // The recovery is done once: its entry no longer points at a copy, the file's new one does.
  const files = Object.values((JSON.parse(readFileSync(join(stateDir, CHECKPOINT_FILE), 'utf8')) as CheckpointData).files).filter((f) => f.path === log)
  t.equal(files.length, 2, 'the old content and the new one, two identities at one path')
  t.equal(files.filter((f) => f.tail !== undefined).length, 1, 'only the file as it is now keeps its last bytes')
  return [...expectedMessages('before', 0, 500), ...expectedMessages('unread', 0, 700), ...expectedMessages('after', 0, 300)]
}))

t.test('rename rotation while the agent was stopped: the unread rest is read from the renamed file at the next start', (t) => run(t, 'rename-away', async ({ log, url, index, restart }) => {
  writeLines(log, 'before', 0, 300)
  await waitForCount(url, index, 300)
  await restart(() => {
    writeLines(log, 'unread', 0, 400)
    renameSync(log, log.replace('app.log', 'app.log.1')) // logrotate's default: outside the glob
    writeLines(log, 'after', 0, 100)
  })
  return [...expectedMessages('before', 0, 300), ...expectedMessages('unread', 0, 400), ...expectedMessages('after', 0, 100)]
}))

t.test('rename rotation with compress while the agent was stopped: the unread rest comes from the .gz, not from an older one or a corrupt one', (t) => run(t, 'rename-away-gzip', async ({ log, url, index, restart }) => {
  writeLines(log, 'banner', 0, 1)
  writeLines(log, 'before', 0, 300)
  await waitForCount(url, index, 301)
  await restart(() => {
    // Older rotations beside it: one with the same first line (and longer than what was read),
    // one that is not gzip at all; both sort as newer, so both are looked at first.
    const older = log.replace('app.log', 'app.log.2')
    writeLines(older, 'banner', 0, 1)
    writeLines(older, 'old', 0, 3_000)
    gzipTo(older, `${older}.gz`)
    rmSync(older)
    writeFileSync(log.replace('app.log', 'app.log.3.gz'), Buffer.from('\x1f\x8b\x08 not really gzip'))
    writeLines(log, 'unread', 0, 400)
    renameSync(log, log.replace('app.log', 'app.log.1'))
    gzipTo(log.replace('app.log', 'app.log.1'), log.replace('app.log', 'app.log.1.gz'))
    rmSync(log.replace('app.log', 'app.log.1'))
    const future = new Date(Date.now() + 60_000)
    utimesSync(`${older}.gz`, future, future)
    utimesSync(log.replace('app.log', 'app.log.3.gz'), future, future)
    writeLines(log, 'banner', 0, 1)
    writeLines(log, 'after', 0, 100)
  })
  return ['banner 0', ...expectedMessages('before', 0, 300), ...expectedMessages('unread', 0, 400), 'banner 0', ...expectedMessages('after', 0, 100)]
}))

t.test('copytruncate while the agent was stopped, rewritten with the same first line: the copy first, then the new generation', (t) => run(t, 'copytruncate-away-same-head', async ({ log, url, index, restart }) => {
  writeLines(log, 'banner', 0, 1)
  writeLines(log, 'before', 0, 400)
  await waitForCount(url, index, 401)
  await restart(() => {
    writeLines(log, 'unread', 0, 600)
    copytruncate(log)
    writeLines(log, 'banner', 0, 1) // the application writes its banner again: the same identity
    writeLines(log, 'after', 0, 200)
  })
  return ['banner 0', ...expectedMessages('before', 0, 400), ...expectedMessages('unread', 0, 600), 'banner 0', ...expectedMessages('after', 0, 200)]
}))

t.test('emptied while the agent was stopped, no copy: an older rotation with the same first line is not taken for one', (t) => run(t, 'truncate-away-no-copy', async ({ log, url, index, restart }) => {
  // Yesterday's rotation: it starts with the same line and is longer than anything read today.
  writeLines(log.replace('app.log', 'app.log.1'), 'banner', 0, 1)
  writeLines(log.replace('app.log', 'app.log.1'), 'old', 0, 5_000)
  writeLines(log, 'banner', 0, 1)
  writeLines(log, 'today', 0, 200)
  await waitForCount(url, index, 201)
  await restart(() => {
    writeLines(log, 'unread', 0, 100)
    truncateSync(log, 0) // `> app.log`: no copy, so the unread lines are gone
    writeLines(log, 'after', 0, 50)
  })
  // Nothing of the older rotation: just what was read before and the new lines.
  return ['banner 0', ...expectedMessages('today', 0, 200), ...expectedMessages('after', 0, 50)]
}))

t.test('truncation with no copy: an older rotation that starts with the same line is not read as the copy', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const s = scenario('truncate-old-rotation')
  mkdirSync(s.logs, { recursive: true })
  const log = join(s.logs, 'app.log')
  // Yesterday's rotation: the same first line, and longer than anything read today.
  writeLines(log.replace('app.log', 'app.log.1'), 'banner', 0, 1)
  writeLines(log.replace('app.log', 'app.log.1'), 'old', 0, 30_000)
  writeLines(log, 'banner', 0, 1)
  const agent = await startAgent(agentConfig(s, url, [fileInput([join(s.logs, '*.log')])]))
  t.teardown(async () => { await agent.stop(); await dropScenario(url, s) })
  writeLines(log, 'early', 0, 100)
  await waitForCount(url, s.index, 101)
  // Emptied in place (`> app.log`) while the agent is behind: no copy was made.
  writeLines(log, 'burst', 0, 20_000)
  truncateSync(log, 0)
  await sleep(300)
  writeLines(log, 'banner', 0, 1)
  writeLines(log, 'after', 0, 300)
  await waitForCount(url, s.index, 402)
  await sleep(1000)
  const messages = await allMessages(url, s.index)
  t.same(messages.filter((m) => m.startsWith('old ')), [], 'nothing of the older rotation')
  t.same(messages.filter((m) => m.startsWith('after ')), expectedMessages('after', 0, 300).sort(), 'the lines after the truncation')
  t.same(duplicatesIn(messages.filter((m) => m !== 'banner 0')), [], 'nothing twice')
})

t.test('truncation in place, rewritten with the same first line: new lines get new ids, not 409s', (t) => run(t, 'truncate', async ({ log, url, index }) => {
  writeLines(log, 'line', 0, 500, false)
  await waitForCount(url, index, 500)
  truncateSync(log, 0)
  await sleep(300)
  // Same first line as before the truncation ("line 0"), so the head fingerprint is identical.
  writeLines(log, 'line', 0, 1, false)
  writeLines(log, 'again', 0, 299, false)
  return [...expectedMessages('line', 0, 500), 'line 0', ...expectedMessages('again', 0, 299)]
}))

t.test('delete and recreate (inode reuse, same first line)', (t) => run(t, 'recreate', async ({ log, url, index }) => {
  writeFileSync(log, 'starting app v1\n')
  writeLines(log, 'one', 0, 400, false)
  await waitForCount(url, index, 401)
  const ino = statSync(log).ino
  rmSync(log)
  writeFileSync(log, 'starting app v1\n')
  t.comment(`inode ${statSync(log).ino === ino ? 'was reused' : 'is new'}`)
  writeLines(log, 'two', 0, 300, false)
  return ['starting app v1', ...expectedMessages('one', 0, 400), 'starting app v1', ...expectedMessages('two', 0, 300)]
}))

t.test('a file that appears after start is read from its beginning, appends keep coming', (t) => run(t, 'new-file', async ({ log }) => {
  await sleep(200)
  writeLines(log, 'x', 0, 100)
  for (let i = 0; i < 10; i++) {
    writeLines(log, 'y', i * 20, 20)
    await sleep(30)
  }
  appendFileSync(log, '')
  return [...expectedMessages('x', 0, 100), ...expectedMessages('y', 0, 200)]
}))
