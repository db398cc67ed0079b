/**
 * The files logrotate leaves beside a log (`app.log.1`, `app.log-20240521`, `app.log.1.gz`), read
 * as the log's own bytes: where a harvester finds what it had not read yet when the log was
 * emptied or replaced (see Harvester.findCopy).
 *
 * A gzip copy is what `compress` without `delaycompress` leaves: the copy or the renamed file is
 * compressed at once. It cannot be read from an offset, so it is inflated from its start and the
 * bytes before the offset are skipped: a recovery reads a rotation once, at the speed zlib
 * inflates (several hundred MB/s). Other compressions (bz2, xz, zstd) are not read.
 */
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { createGunzip } from 'node:zlib'

/** What follows `app.log` in the name of a copy logrotate makes: `.1`, `-20240521`, `.2024-05-21`, `.1.gz`. */
const COPY_SUFFIX = /^[.\-_][\w.\-]*$/
const GZIP = /\.gz$/
/** Compressions that cannot be read here. */
const UNREADABLE = /\.(bz2|xz|zst|lz4|zip|Z)$/

/** How a file named `name` beside the log `base` may hold the log's bytes: as they are, gzipped, or not at all. */
export function copyKind(base: string, name: string): 'plain' | 'gzip' | undefined {
  if (name === base || !name.startsWith(base) || !COPY_SUFFIX.test(name.slice(base.length)) || UNREADABLE.test(name)) return undefined
  return GZIP.test(name) ? 'gzip' : 'plain'
}

/**
 * The copy's bytes from offset `from` on, chunk by chunk (a chunk is only valid until the next
 * one is asked for). Ends at the copy's end as it is now. A gzip copy that is corrupt or cut
 * short throws when the reading reaches the damage.
 */
export async function* copyBytes(path: string, kind: 'plain' | 'gzip', from: number, chunkSize: number): AsyncGenerator<Buffer> {
  if (kind === 'plain') {
    const fh = await open(path, 'r')
    try {
      const buf = Buffer.allocUnsafe(chunkSize)
      let pos = from
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, chunkSize, pos)
        if (bytesRead === 0) return
        pos += bytesRead
        yield buf.subarray(0, bytesRead)
      }
    } finally {
      await fh.close().catch(() => undefined)
    }
  }
  const source = createReadStream(path)
  const inflate = createGunzip({ chunkSize })
  // pipe() does not pass the source's errors on (a file gone meanwhile): they end the inflating.
  source.once('error', (err) => inflate.destroy(err))
  source.pipe(inflate)
  try {
    let at = 0
    for await (const chunk of inflate as AsyncIterable<Buffer>) {
      const end = at + chunk.length
      if (end > from) yield from > at ? chunk.subarray(from - at) : chunk
      at = end
    }
  } finally {
    source.destroy()
    inflate.destroy()
  }
}
