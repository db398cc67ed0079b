import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { acquireStateLock, CheckpointStore } from '../agent/checkpoint/store'

t.test('saves and loads offsets and sections atomically', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-cp-'))
  const store = new CheckpointStore(dir)
  t.same(store.load(), { version: 1, files: {}, sections: {} }, 'no file yet: empty checkpoint')
  const data = {
    version: 1 as const,
    files: { abc: { id: 'abc', generation: 0, path: '/x.log', dev: 1, ino: 2, offset: 1234, seen: 5 } },
    sections: { alerts: { windows: [1, 2] } },
  }
  store.save(data)
  t.same(store.load(), data)
  t.same(readdirSync(dir).sort(), ['checkpoint.json'], 'the temp file is renamed away')
})

t.test('a corrupt checkpoint is a clear error, not a silent restart from zero', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-cp-'))
  writeFileSync(join(dir, 'checkpoint.json'), '{"version":1,"files":')
  const store = new CheckpointStore(dir)
  t.throws(() => store.load(), { code: 'LW_CHECKPOINT_CORRUPT' })
})

t.test('the state lock excludes a second agent and is taken over from a dead one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-lock-'))
  const release = acquireStateLock(dir)
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), String(process.pid))
  // Another live process holding the lock.
  release()
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
  const deadPid = Number(child.stdout.toString())
  writeFileSync(join(dir, 'lock'), String(deadPid))
  const release2 = acquireStateLock(dir)
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), String(process.pid), 'a lock left by a dead process is taken over')
  release2()
  writeFileSync(join(dir, 'lock'), '1') // pid 1 is always alive
  t.throws(() => acquireStateLock(dir), { code: 'LW_STATE_LOCKED' })
})
