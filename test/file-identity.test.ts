import { appendFileSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { identify, HEAD_BYTES } from '../agent/inputs/file/identity'

async function idOf(path: string): Promise<string | undefined> {
  const fh = await open(path, 'r')
  try {
    return (await identify(fh, await fh.stat()))?.id
  } finally {
    await fh.close()
  }
}

t.test('identity waits for a complete first line, then stays fixed as the file grows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-id-'))
  const f = join(dir, 'app.log')
  writeFileSync(f, 'partial first li')
  t.equal(await idOf(f), undefined, 'no newline and under HEAD_BYTES: not identified yet')
  appendFileSync(f, 'ne\n')
  const id = await idOf(f)
  t.type(id, 'string')
  appendFileSync(f, 'second line\n'.repeat(500))
  t.equal(await idOf(f), id, 'growth does not change the identity')
  renameSync(f, f + '.1')
  t.equal(await idOf(f + '.1'), id, 'a rename keeps the identity')
})

t.test('a long first line without newline is identified by its first HEAD_BYTES', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-id-'))
  const f = join(dir, 'big.log')
  writeFileSync(f, 'x'.repeat(HEAD_BYTES + 10))
  t.type(await idOf(f), 'string')
})

t.test('a copy, and a file recreated on the same inode with the same first line, are different files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-id-'))
  const f = join(dir, 'app.log')
  writeFileSync(f, 'starting app v1\nmore\n')
  const id1 = await idOf(f)
  copyFileSync(f, f + '.copy')
  t.not(await idOf(f + '.copy'), id1, 'a copy has its own identity')
  const ino = statSync(f).ino
  rmSync(f)
  rmSync(f + '.copy')
  await new Promise((r) => setTimeout(r, 20))
  writeFileSync(f, 'starting app v1\nother\n')
  const id2 = await idOf(f)
  t.not(id2, id1, `recreated file differs (inode ${statSync(f).ino === ino ? 'reused' : 'new'})`)
})
