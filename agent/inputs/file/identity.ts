import { createHash } from 'node:crypto'
import type { Stats } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'

/** Bytes of the file head that take part in the fingerprint: the first line, capped here. */
export const HEAD_BYTES = 1024

export interface FileIdentity {
  /** 16 characters, URL-safe; stable for the life of the file's content stream. */
  id: string
  dev: number
  ino: number
  /** A hash of the head alone (no inode): recognises a copy of the file (copytruncate). */
  head: string
}

/**
 * Which file is this, across renames and restarts?
 *
 * Filebeat's filestream and Vector's file source each pick one signal, and each has a loss case:
 * device/inode alone confuses a new file that reuses a freed inode (ext4 hands the same inode
 * straight back after delete-and-recreate) with the old one, so the new file is read from the old
 * offset; a head checksum alone confuses two files that start with the same line (a startup
 * banner). We combine both with the birth time (statx, real on ext4/xfs/btrfs): a rename keeps
 * all three; a recreated file differs in birth time even on a reused inode; a copy differs in
 * inode. The head is the first line (up to HEAD_BYTES), so the identity is fixed as soon as the
 * first line is complete and does not change as the file grows.
 *
 * Returns null while the file has no complete first line yet (and is shorter than HEAD_BYTES):
 * there is nothing to ship before that, and identifying it early would fingerprint a line that is
 * still being written.
 */
export async function identify(fh: FileHandle, st: Stats, head: Buffer = Buffer.allocUnsafe(HEAD_BYTES)): Promise<FileIdentity | null> {
  const first = await headOf(fh, head)
  return first === null ? null : identityOf(st, first)
}

export function identityOf(st: Pick<Stats, 'dev' | 'ino' | 'birthtimeMs'>, head: Buffer): FileIdentity {
  const h = createHash('sha256')
  h.update(`${st.dev}:${st.ino}:${Math.floor(st.birthtimeMs)}:`)
  h.update(head)
  return { id: h.digest('base64url').slice(0, 16), dev: st.dev, ino: st.ino, head: headHash(head) }
}

/** The hash of a file's head (its first line, up to HEAD_BYTES) alone. */
export function headHash(head: Buffer): string {
  return createHash('sha256').update(head).digest('base64url').slice(0, 16)
}

/** The head of an open file as identify() takes it: its first line, or HEAD_BYTES; null when there is no complete first line. */
export async function headOf(fh: FileHandle, head: Buffer = Buffer.allocUnsafe(HEAD_BYTES)): Promise<Buffer | null> {
  const { bytesRead } = await fh.read(head, 0, HEAD_BYTES, 0)
  return headIn(head.subarray(0, bytesRead))
}

/** The head in a file's first bytes (`start`: up to HEAD_BYTES of them, fewer only if the file is that short). */
export function headIn(start: Buffer): Buffer | null {
  const nl = start.indexOf(10)
  if (nl >= 0) return start.subarray(0, nl + 1)
  return start.length === HEAD_BYTES ? start : null
}

/** The id used for documents: a truncated-and-rewritten file restarts its offsets, so it gets a new generation. */
export function sourceIdOf(id: string, generation: number): string {
  return generation === 0 ? id : `${id}.${generation}`
}
