import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { LwError } from '../errors'

/** One tracked file in the checkpoint. */
export interface FileCheckpoint {
  /** The file identity (see inputs/file/identity.ts) without the generation suffix. */
  id: string
  /** Bumped each time the file is truncated in place, so offsets restarting at 0 get fresh document ids. */
  generation: number
  path: string
  dev: number
  ino: number
  /** Every byte before this offset has been acknowledged by Elasticsearch (or dead-lettered). */
  offset: number
  /**
   * Records before this offset have been evaluated by the rules (it can be ahead of `offset`
   * when Elasticsearch lagged): after a restart they are shipped again if needed but not
   * evaluated twice, so windows and counts stay right. Absent: same as `offset`.
   */
  rules_offset?: number
  /** ms since epoch of the last time the file was seen; old entries are pruned. */
  seen: number
  /** The hash of the file's first line (FileIdentity.head): a copy of the file starts with it. */
  head?: string
  /**
   * The last bytes read (base64) and the offset they end at: should the file be emptied by
   * copytruncate while the agent is away, the copy that holds them is where the unread rest is.
   */
  tail?: string
  tail_end?: number
}

export interface CheckpointData {
  version: 1
  files: Record<string, FileCheckpoint>
  /** Later components (alert state) keep their own sections here so they move atomically with the offsets. */
  sections: Record<string, unknown>
}

export const CHECKPOINT_FILE = 'checkpoint.json'

export function emptyCheckpoint(): CheckpointData {
  return { version: 1, files: {}, sections: {} }
}

/**
 * Checkpoints are written the way a crash cannot tear: to a temp file, fsynced, renamed over the
 * old one, and the directory fsynced so the rename itself is durable. A reader therefore sees
 * either the previous complete checkpoint or the new complete one.
 */
export class CheckpointStore {
  readonly file: string
  private readonly tmp: string

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true })
    this.file = join(dir, CHECKPOINT_FILE)
    this.tmp = this.file + '.tmp'
  }

  load(): CheckpointData {
    let text: string
    try {
      text = readFileSync(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyCheckpoint()
      throw err
    }
    try {
      const data = JSON.parse(text) as Partial<CheckpointData>
      if (data.version !== 1 || typeof data.files !== 'object' || data.files === null) throw new Error('unknown layout')
      return { version: 1, files: data.files, sections: data.sections ?? {} }
    } catch (err) {
      throw new LwError('LW_CHECKPOINT_CORRUPT',
        `${this.file}: the checkpoint cannot be read (${(err as Error).message})`,
        'Move the file aside to start over (files are then read according to start_position; documents already in Elasticsearch are not duplicated).')
    }
  }

  save(data: CheckpointData): void {
    const body = JSON.stringify(data)
    const fd = openSync(this.tmp, 'w', 0o600)
    try {
      writeSync(fd, body)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(this.tmp, this.file)
    const dfd = openSync(this.dir, 'r')
    try { fsyncSync(dfd) } finally { closeSync(dfd) }
  }
}

/**
 * One agent per state directory: two agents sharing offsets would each advance them past the
 * other's unacknowledged entries. The lock names its owner's pid; a lock left by a process that
 * no longer exists (kill -9) is taken over.
 */
export function acquireStateLock(dir: string): () => void {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => { try { unlinkSync(file) } catch { /* already gone */ } }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number(readFileSafe(file))
      if (owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new LwError('LW_STATE_LOCKED', `${dir} is in use by another logwarden (pid ${owner})`,
          'Stop that agent, or give this one its own state_dir.')
      }
      try { unlinkSync(file) } catch { /* raced with another starter; retry */ }
    }
  }
  throw new LwError('LW_STATE_LOCKED', `${dir}: could not take the state lock`, 'Check that no other logwarden uses this state_dir.')
}

function readFileSafe(file: string): string {
  try { return readFileSync(file, 'utf8') } catch { return '' }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
