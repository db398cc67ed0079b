/**
 * The built CLI (dist/agent/cli.js) as a user runs it: a real process, real exit codes, real
 * signals. Tests that need it run after `npm run build` (what `npm test` does first).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Scenario } from './agent-harness'

export const CLI = join(__dirname, '..', '..', 'dist', 'agent', 'cli.js')

export interface CliExit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliProcess {
  child: ChildProcess
  /** Resolves when the process has exited, with everything it printed. */
  exited: Promise<CliExit>
  /** What it printed so far. */
  stdout(): string
  stderr(): string
}

/** Starts `node dist/agent/cli.js ...args`. A missing build fails loudly instead of as a puzzling exit code. */
export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before this test`)
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<CliExit>((resolve, reject) => {
    child.once('error', reject)
    // 'close', not 'exit': the output streams are drained by then.
    child.once('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err }))
  })
  return { child, exited, stdout: () => out, stderr: () => err }
}

/** Runs the CLI to its end; a process still running after `waitMs` is killed and the call rejects. */
export async function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; waitMs?: number } = {}): Promise<CliExit> {
  const p = startCli(args, opts)
  const timer = setTimeout(() => p.child.kill('SIGKILL'), opts.waitMs ?? 60_000)
  try {
    const res = await p.exited
    if (res.signal === 'SIGKILL') throw new Error(`logwarden ${args.join(' ')} did not finish in time; stderr: ${res.stderr}`)
    return res
  } finally {
    clearTimeout(timer)
  }
}

/** A loopback port nothing listens on: "Elasticsearch is down" (see loopback-port.ts for why not listen(0)). */
export { quietPort as closedPort } from './loopback-port'

export interface ScenarioConfigOptions {
  /** More top-level lines (keys not written here: shutdown_timeout, log, limits, ...). */
  top?: string[]
  /** Install the template at start (the default) or not. */
  setupOnStart?: boolean
}

/**
 * Writes `<scenario dir>/config.yaml` for the scenario's indices and template, so tests never
 * share Elasticsearch names. `input` is the body of the one file input (YAML lines, no dash).
 */
export function writeScenarioConfig(s: Scenario, hosts: string, input: string[], opts: ScenarioConfigOptions = {}): string {
  const file = join(s.dir, 'config.yaml')
  writeFileSync(file, [
    'service: { name: clitest }',
    `state_dir: ${JSON.stringify(s.stateDir)}`,
    'inputs:',
    '  - type: file',
    ...input.map((l) => `    ${l}`),
    'elasticsearch:',
    `  hosts: [${JSON.stringify(hosts)}]`,
    `  index: ${JSON.stringify(s.indexConfig)}`,
    '  batch: { max_docs: 500, interval: 100ms }',
    '  retry: { initial: 100ms, max: 1s }',
    `  template: { name: ${s.template}, replicas: 0, setup_on_start: ${opts.setupOnStart ?? true} }`,
    `  dead_letter: { index: ${s.template}-deadletter }`,
    'checkpoint_interval: 200ms',
    ...(opts.top ?? []),
  ].join('\n') + '\n')
  return file
}
