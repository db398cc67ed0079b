/**
 * Keeps the running rules in step with the rule files: watches them (chokidar) and reloads on a
 * change, or when asked (`reload()`, which the agent calls on SIGHUP).
 *
 * A reload is all or nothing: when the files have any problem, the rules that were running keep
 * running, and the problems are reported through `onReload`, so a bad edit never leaves the
 * agent without rules or with half of them. Only the very first load, with nothing running
 * before it, takes the rules that loaded even when others had problems.
 */
import path from 'node:path'
import chokidar, { type FSWatcher } from 'chokidar'
import type { LwError } from '../agent/errors'
import type { CompiledRule } from './compiled'
import { isRuleFileName, loadRules } from './load'

/** The keep-alive timer's period: it does nothing, it only holds the event loop while watching. */
const KEEP_ALIVE_MS = 2 ** 30

export interface ReloadResult {
  /** true: `rules` are now the running rules; false: there were problems and the last good rules kept running. */
  applied: boolean
  /** The running rules after this reload. */
  rules: CompiledRule[]
  problems: LwError[]
  /** The rule files read. */
  files: string[]
  /** What started it. */
  reason: 'start' | 'change' | 'request'
}

export interface RuleWatcherOptions {
  /** Rule files and directories (directories are searched recursively for *.yaml / *.yml, *.test.yaml left out). */
  paths: string[]
  /** Called after every load: with the new rules, or with the problems that kept the old ones. */
  onReload?: (result: ReloadResult) => void
  /** Watch the files for changes (default true); false: only `reload()` reloads. */
  watch?: boolean
  /** Changes closer together than this (ms) make one reload: an editor writes a file in several steps. Default 200. */
  debounceMs?: number
}

export class RuleWatcher {
  private current: CompiledRule[] = []
  private loaded = false
  private watcher: FSWatcher | undefined
  /** Keeps the process alive while watching (see start). */
  private keepAlive: NodeJS.Timeout | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly paths: string[]
  private readonly debounceMs: number

  constructor(private readonly options: RuleWatcherOptions) {
    this.paths = [...options.paths]
    this.debounceMs = options.debounceMs ?? 200
  }

  /** The running rules: the last load without problems (or the first load). */
  get rules(): CompiledRule[] {
    return this.current
  }

  /** Loads the rules and, unless `watch: false`, starts watching; resolves once the watcher is ready. */
  async start(): Promise<ReloadResult> {
    const result = this.load('start')
    if (this.options.watch === false || this.paths.length === 0) return result
    const watcher = chokidar.watch(this.paths, {
      ignoreInitial: true,
      // chokidar 3.6 can leave an fs.watch handle open when close() lands while it is adding a
      // new path (chokidar#1482); unpersistent, such a handle cannot keep the process alive after
      // close(). While open, `keepAlive` holds the process as a persistent watcher would.
      persistent: false,
      // Dot-files (editor swap files) never hold rules; rule-test files are left out below.
      ignored: (file: string) => {
        const name = path.basename(file)
        return name.startsWith('.') || name === 'node_modules'
      },
    })
    this.watcher = watcher
    this.keepAlive = setInterval(() => undefined, KEEP_ALIVE_MS)
    watcher.on('all', (_event, file) => {
      if (isRuleFileName(path.basename(file)) || this.paths.includes(file)) this.schedule()
    })
    // A watcher failure must not stop the agent: `reload()` (SIGHUP) still works.
    watcher.on('error', () => undefined)
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
    return result
  }

  /** Reloads now (SIGHUP). */
  reload(): ReloadResult {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    return this.load('request')
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    clearInterval(this.keepAlive)
    this.keepAlive = undefined
    await this.watcher?.close()
    this.watcher = undefined
  }

  private schedule(): void {
    if (this.closed) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (!this.closed) this.load('change')
    }, this.debounceMs)
  }

  private load(reason: ReloadResult['reason']): ReloadResult {
    const { rules, problems, files } = loadRules(this.paths)
    const applied = problems.length === 0 || !this.loaded
    if (applied) this.current = rules
    this.loaded = true
    const result: ReloadResult = { applied, rules: this.current, problems, files, reason }
    this.options.onReload?.(result)
    return result
  }
}
