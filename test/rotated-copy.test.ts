/**
 * The rotated files beside a log, read as the log's own bytes from an offset: as they are, or
 * inflated when logrotate gzipped them (agent/inputs/file/rotated-copy.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { copyBytes, copyKind } from '../agent/inputs/file/rotated-copy'

async function collect(path: string, kind: 'plain' | 'gzip', from: number, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = []
  // Chunks are only valid until the next one: copied as they come.
  for await (const c of copyBytes(path, kind, from, chunk)) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

t.test('which names beside app.log are rotations, and how they are read', async (t) => {
  t.equal(copyKind('app.log', 'app.log.1'), 'plain')
  t.equal(copyKind('app.log', 'app.log-20240521'), 'plain')
  t.equal(copyKind('app.log', 'app.log.2024-05-21'), 'plain')
  t.equal(copyKind('app.log', 'app.log.1.gz'), 'gzip')
  t.equal(copyKind('app.log', 'app.log-20240521.gz'), 'gzip')
  t.equal(copyKind('app.log', 'app.log'), undefined, 'not the log itself')
  t.equal(copyKind('app.log', 'app.log.1.xz'), undefined, 'xz is not read')
  t.equal(copyKind('app.log', 'app.log.1.bz2'), undefined, 'bz2 is not read')
  t.equal(copyKind('app.log', 'app.log.1.zst'), undefined, 'zstd is not read')
  t.equal(copyKind('app.log', 'other.log.1'), undefined, 'another log')
  t.equal(copyKind('app.log', 'app.logger'), undefined, 'a name that only starts the same')
})

t.test('the bytes from an offset, plain and gzipped, in small and large chunks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-rotated-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let text = ''
  for (let i = 0; i < 5000; i++) text += `{"msg":"line ${i}"}\n`
  const bytes = Buffer.from(text)
  const plain = join(dir, 'app.log.1')
  const gz = join(dir, 'app.log.1.gz')
  writeFileSync(plain, bytes)
  // Two gzip members one after the other, as `cat a.gz b.gz` makes: one stream of bytes.
  writeFileSync(gz, Buffer.concat([gzipSync(bytes.subarray(0, 30_000)), gzipSync(bytes.subarray(30_000))]))
  for (const from of [0, 1, 12_345, 30_000, bytes.length - 1, bytes.length]) {
    for (const chunk of [1000, 64 * 1024]) {
      t.same(await collect(plain, 'plain', from, chunk), bytes.subarray(from), `plain from ${from}, chunks of ${chunk}`)
      t.same(await collect(gz, 'gzip', from, chunk), bytes.subarray(from), `gzip from ${from}, chunks of ${chunk}`)
    }
  }
})

t.test('stopping early closes the file; a corrupt or cut-short gzip file throws when reading reaches the damage', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lw-rotated-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bytes = Buffer.from('x'.repeat(200_000) + '\n')
  const gz = join(dir, 'app.log.1.gz')
  writeFileSync(gz, gzipSync(bytes))
  for await (const first of copyBytes(gz, 'gzip', 0, 1000)) {
    t.equal(first.length, 1000, 'the first chunk')
    break
  }
  const whole = gzipSync(bytes)
  writeFileSync(gz, whole.subarray(0, whole.length >> 1))
  await t.rejects(collect(gz, 'gzip', 0, 1000), 'cut short')
  writeFileSync(gz, Buffer.from('\x1f\x8b\x08 not really gzip'))
  await t.rejects(collect(gz, 'gzip', 0, 1000), 'not gzip')
  await t.rejects(collect(join(dir, 'gone.gz'), 'gzip', 0, 1000), { code: 'ENOENT' }, 'removed meanwhile')
})
