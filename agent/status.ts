/**
 * `logwarden status`: what the agent of a configuration has done and what waits, read from its
 * state directory (the checkpoint and the dead letters) without disturbing a running agent —
 * the checkpoint is replaced atomically, so it is always read whole.
 *
 * It answers what an operator asks: is the agent running; how far is each file shipped; did
 * Elasticsearch refuse anything; are alerts stuck — above all those Telegram refuses for good
 * (a blocked bot, a wrong chat), which wait in the outbox until someone fixes the chat.
 */
import { existsSync, openSync, readSync, closeSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import bytes from 'bytes'
import type { AgentConfig } from './config/types'
import { CHECKPOINT_FILE, CheckpointStore, type FileCheckpoint } from './checkpoint/store'

export interface FileStatus {
  path: string
  /** Bytes acknowledged by Elasticsearch (or dead-lettered). */
  shipped: number
  /** The file's size now, when the path still leads to the checkpointed file. */
  size?: number
  /** `current`: the file is at its path; `replaced`: another file is there now (rotated); `gone`: nothing is. */
  state: 'current' | 'replaced' | 'gone'
  /** When the agent last saw the file (ms since epoch). */
  seen: number
}

export interface AlertStatus {
  state: 'pending' | 'failed' | 'blocked'
  route: string
  notifier: string
  ruleId: string
  ruleName: string
  severity: string
  attempts: number
  queuedAt: number
  error?: string
  nextAttemptAt?: number
}

export interface AgentStatus {
  stateDir: string
  /** The pid holding the state lock, when that process is alive. */
  runningPid?: number
  /** When the checkpoint was last written (ms since epoch); undefined when there is none yet. */
  checkpointAt?: number
  files: FileStatus[]
  deadLetters: number
  deadLetterFile: string
  alerts: AlertStatus[]
}

/** Reads the state of the agent that runs with `cfg`. */
export function readStatus(cfg: AgentConfig): AgentStatus {
  const dir = cfg.state_dir
  const deadLetterFile = join(dir, 'deadletter.ndjson')
  const status: AgentStatus = { stateDir: dir, files: [], deadLetters: countLines(deadLetterFile), deadLetterFile, alerts: [] }
  const pid = lockOwner(join(dir, 'lock'))
  if (pid !== undefined) status.runningPid = pid
  const file = join(dir, CHECKPOINT_FILE)
  if (!existsSync(file)) return status
  status.checkpointAt = statSync(file).mtimeMs
  const data = new CheckpointStore(dir).load()
  status.files = Object.values(data.files).map(fileStatus).sort((a, b) => a.path.localeCompare(b.path))
  status.alerts = alertsOf(data.sections['alerting'])
  return status
}

function fileStatus(f: FileCheckpoint): FileStatus {
  const out: FileStatus = { path: f.path, shipped: f.offset, state: 'gone', seen: f.seen }
  try {
    const st = statSync(f.path)
    if (st.ino === f.ino && st.dev === f.dev) {
      out.state = 'current'
      out.size = st.size
    } else {
      out.state = 'replaced'
    }
  } catch {
    // Deleted, or renamed away by rotation: the checkpoint keeps it until it is pruned.
  }
  return out
}

interface OutboxRecordShape {
  route?: unknown
  notifier?: unknown
  state?: unknown
  attempts?: unknown
  queuedAt?: unknown
  error?: unknown
  nextAttemptAt?: unknown
  notification?: { ruleId?: unknown; ruleName?: unknown; severity?: unknown }
}

/** The outbox records of the alerting section (see rules/alerts/outbox.ts, OutboxState). */
function alertsOf(section: unknown): AlertStatus[] {
  const records = (section as { alerts?: { outbox?: { records?: unknown } } } | undefined)?.alerts?.outbox?.records
  if (!Array.isArray(records)) return []
  const out: AlertStatus[] = []
  for (const r of records as OutboxRecordShape[]) {
    const state = r.state === 'failed' || r.state === 'blocked' ? r.state : 'pending'
    const alert: AlertStatus = {
      state, route: String(r.route ?? ''), notifier: String(r.notifier ?? ''),
      ruleId: String(r.notification?.ruleId ?? ''), ruleName: String(r.notification?.ruleName ?? ''),
      severity: String(r.notification?.severity ?? ''), attempts: Number(r.attempts ?? 0), queuedAt: Number(r.queuedAt ?? 0),
    }
    if (typeof r.error === 'string') alert.error = r.error
    if (typeof r.nextAttemptAt === 'number') alert.nextAttemptAt = r.nextAttemptAt
    out.push(alert)
  }
  // What needs a person first.
  const order = { blocked: 0, failed: 1, pending: 2 }
  return out.sort((a, b) => order[a.state] - order[b.state] || a.queuedAt - b.queuedAt)
}

function lockOwner(file: string): number | undefined {
  let pid: number
  try {
    pid = Number(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
  if (!(pid > 0)) return undefined
  try {
    process.kill(pid, 0)
    return pid
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined
  }
}

/** Lines in a file, read in chunks (a dead-letter file can be large); 0 when there is none. */
function countLines(file: string): number {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return 0
  }
  try {
    const buf = Buffer.allocUnsafe(64 * 1024)
    let lines = 0
    let n: number
    while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
      for (let i = buf.indexOf(10); i !== -1 && i < n; i = buf.indexOf(10, i + 1)) lines++
    }
    return lines
  } finally {
    closeSync(fd)
  }
}

function time(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
}

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 120) return `${s} s ago`
  if (s < 7200) return `${Math.round(s / 60)} min ago`
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86_400)} days ago`
}

function size(n: number): string {
  return bytes.format(n, { unitSeparator: ' ' }) ?? `${n} B`
}

/** The status as text for a person. */
export function formatStatus(st: AgentStatus, now: number = Date.now()): string[] {
  const lines: string[] = []
  lines.push(st.runningPid !== undefined ? `Agent: running (pid ${st.runningPid}), state in ${st.stateDir}` : `Agent: not running, state in ${st.stateDir}`)
  if (st.checkpointAt === undefined) {
    lines.push('Checkpoint: none yet (the agent has not run with this state_dir, or has not saved one)')
  } else {
    lines.push(`Checkpoint: saved ${time(st.checkpointAt)} (${ago(st.checkpointAt, now)})`)
  }

  lines.push('', `Files (${st.files.length}):`)
  if (st.files.length === 0) lines.push('  none')
  for (const f of st.files) {
    if (f.state === 'current' && f.size !== undefined) {
      const left = f.size - f.shipped
      lines.push(left > 0
        ? `  ${f.path}: ${size(f.shipped)} of ${size(f.size)} shipped, ${size(left)} to go`
        : `  ${f.path}: all ${size(f.shipped)} shipped`)
    } else if (f.state === 'replaced') {
      lines.push(`  ${f.path}: ${size(f.shipped)} shipped of the file that was here (rotated; another file is at this path now)`)
    } else {
      lines.push(`  ${f.path}: ${size(f.shipped)} shipped; the file is gone (renamed or deleted), last seen ${ago(f.seen, now)}`)
    }
  }

  lines.push('', st.deadLetters === 0
    ? 'Dead letters: none'
    : `Dead letters: ${st.deadLetters} entries Elasticsearch refused, kept with the reason in ${st.deadLetterFile} (and copied to the dead-letter index)`)

  const blocked = st.alerts.filter((a) => a.state === 'blocked').length
  const failed = st.alerts.filter((a) => a.state === 'failed').length
  lines.push('', st.alerts.length === 0
    ? 'Alerts waiting for delivery: none'
    : `Alerts waiting for delivery: ${st.alerts.length} (${blocked} blocked, ${failed} failed, ${st.alerts.length - blocked - failed} queued)`)
  for (const a of st.alerts) {
    const what = `"${a.ruleName}" (${a.ruleId}, ${a.severity}) to route ${a.route} via ${a.notifier}, queued ${time(a.queuedAt)}, ${a.attempts} attempt(s)`
    if (a.state === 'blocked') lines.push(`  blocked: ${what}`, `    ${a.error ?? 'refused for good'}`, '    It is kept, and tried again when the agent restarts or reloads its rules (SIGHUP); `logwarden doctor` explains what the chat needs.')
    else if (a.state === 'failed') lines.push(`  failed: ${what}`, `    ${a.error ?? 'failed'}${a.nextAttemptAt !== undefined ? `; next attempt ${time(a.nextAttemptAt)}` : ''}`)
    else lines.push(`  queued: ${what}`)
  }
  return lines
}
