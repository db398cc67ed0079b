#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander'
import { Agent } from './agent'
import { loadConfig } from './config/load'
import { shipConfig } from './config/ship-config'
import type { AgentConfig, FileInputConfig, InputFormat } from './config/types'
import { LwError } from './errors'
import { tuneHeap } from './heap'
import { createLogger } from './logger'
import { shipFiles } from './ship'
import { formatStatus, readStatus } from './status'
import { VERSION } from './version'
import { createClient } from '../transports/elasticsearch/client'
import { gzipsBodies } from '../transports/elasticsearch/compression'
import type { TelegramRoute } from '../transports/telegram/notifier'
import { setupTemplates } from '../transports/elasticsearch/template'

/**
 * Exit codes, as a shell user expects them:
 *   0  success
 *   1  the command ran and failed (Elasticsearch unreachable for `setup`, an I/O error)
 *   2  usage or configuration error (nothing was started)
 *   3  `ship` finished, but some entries went to the dead letters (they are not lost: see the message)
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, deadLetters: 3 } as const

function fail(err: unknown): never {
  if (err instanceof LwError) {
    process.stderr.write(`logwarden: ${err.message}\n`)
    if (err.hint && !err.message.includes(err.hint)) process.stderr.write(`  ${err.hint}\n`)
    process.exit(err.code.startsWith('LW_CONFIG') || err.code.startsWith('LW_CLI') ? EXIT.usage : EXIT.failed)
  }
  process.stderr.write(`logwarden: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(EXIT.failed)
}

function load(file: string): AgentConfig {
  try {
    return loadConfig(file)
  } catch (err) {
    fail(err)
  }
}

async function run(opts: { config: string }): Promise<void> {
  tuneHeap()
  const cfg = load(opts.config)
  const log = createLogger(cfg.log.level)
  const agent = new Agent(cfg, log)
  let signalled = false
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      log.warn({ signal: sig }, 'second signal: exiting now; unacknowledged entries are read again at the next start')
      process.exit(EXIT.failed)
    }
    signalled = true
    log.info({ signal: sig, timeout_ms: cfg.shutdown_timeout }, 'stopping: no more reading, flushing what is in flight')
    // A hard stop past the deadline, whatever hangs: offsets on disk are always safe to resume from.
    setTimeout(() => process.exit(EXIT.failed), cfg.shutdown_timeout + 5000).unref()
    agent.stop().then((clean) => {
      if (clean) log.info('stopped; every entry read was acknowledged')
      else log.warn('stopped at the deadline; entries not yet acknowledged will be read again at the next start')
      process.exit(EXIT.ok)
    }, fail)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading the rule files')
    agent.reloadRules()
  })
  try {
    await agent.start()
  } catch (err) {
    await agent.stop().catch(() => undefined)
    fail(err)
  }
}

function checkConfig(opts: { config: string }): void {
  const cfg = load(opts.config)
  const paths = cfg.inputs.flatMap((i) => i.paths)
  const es = cfg.elasticsearch
  const gzip = gzipsBodies(es)
  const why = es.compression !== 'auto' ? '' : gzip ? ': compression auto, a host is not this machine' : ': compression auto, every host is this machine'
  process.stdout.write(`${cfg.source}: OK — ${cfg.inputs.length} input(s) (${paths.join(', ')}), Elasticsearch ${es.hosts.join(', ')} → ${es.index} (${gzip ? 'gzip' : 'no gzip'}${why})\n`)
}

async function setup(opts: { config: string }): Promise<void> {
  const cfg = load(opts.config)
  const client = createClient(cfg.elasticsearch)
  try {
    for (const { name, result } of await setupTemplates(client, cfg.elasticsearch)) {
      process.stdout.write(`index template ${name}: ${result}\n`)
    }
  } catch (err) {
    const e = err as Error & { meta?: { statusCode?: number } }
    process.stderr.write(`logwarden: LW_ES_SETUP: could not install the index templates at ${cfg.elasticsearch.hosts.join(', ')}: ${e.message}\n` +
      '  Check that Elasticsearch is running and reachable, and that the user may manage index templates.\n')
    process.exitCode = EXIT.failed
  } finally {
    await client.close().catch(() => undefined)
  }
}

interface ShipFlags {
  config?: string
  es?: string
  index?: string
  format: InputFormat
  timezone?: string
  progress: boolean
}

async function ship(files: string[], flags: ShipFlags): Promise<void> {
  tuneHeap()
  let cfg: AgentConfig
  try {
    cfg = shipConfig(flags.config, { es: flags.es, index: flags.index })
  } catch (err) {
    fail(err)
  }
  const log = createLogger(cfg.log.level === 'info' ? 'warn' : cfg.log.level)
  const base: FileInputConfig | undefined = cfg.inputs[0]
  const input: FileInputConfig = {
    type: 'file', paths: files, exclude: [], format: flags.format,
    start_position: 'beginning', timezone: flags.timezone ?? base?.timezone ?? 'UTC',
    max_line_bytes: base?.max_line_bytes ?? 1024 * 1024, multiline: base?.multiline,
    dataset: base?.dataset, fields: base?.fields ?? {}, scan_interval: 10000, close_inactive: 300000,
  }
  const tty = flags.progress && process.stderr.isTTY === true
  const started = Date.now()
  const result = await shipFiles(files, cfg, input, log, {
    progress: tty
      ? (read, total, entries) => {
          const pct = total > 0 ? Math.floor((read / total) * 100) : 100
          const width = 30
          const bar = '#'.repeat(Math.round((pct / 100) * width)).padEnd(width, '.')
          const rate = Math.round(entries / Math.max(0.001, (Date.now() - started) / 1000))
          process.stderr.write(`\r[${bar}] ${pct}%  ${(read / 1048576).toFixed(1)}/${(total / 1048576).toFixed(1)} MiB  ${entries} entries  ${rate}/s `)
        }
      : undefined,
  }).catch(fail)
  if (tty) process.stderr.write('\n')
  process.stdout.write(
    `shipped ${result.entries} entries from ${result.files} file(s) in ${result.seconds.toFixed(1)} s: ` +
    `${result.created} created, ${result.duplicates} already there, ${result.deadLettered} dead-lettered, ${result.parseErrors} unparsed (shipped as plain text)\n`)
  if (result.deadLettered > 0) {
    process.stderr.write(`logwarden: ${result.deadLettered} entries were refused by Elasticsearch and kept in ${cfg.state_dir}/deadletter.ndjson and the index ${cfg.elasticsearch.dead_letter_index}, each with the reason.\n`)
    process.exitCode = EXIT.deadLetters
  }
}

/**
 * The rules side (engine, query parser, RE2, templates), loaded by the commands that use it: an
 * agent without rules never does.
 */
function alerting(): Promise<typeof import('./alerting')> {
  return import('./alerting')
}

/** `rules check [PATH...]`: the given files, else those of `-c`, else the built-in packs. */
async function checkRules(paths: string[], opts: { config?: string }): Promise<void> {
  const { packsDir, rulePaths } = await alerting()
  const targets = paths.length > 0 ? paths : opts.config ? rulePaths(load(opts.config)) : [packsDir()]
  const result = (await import('../rules/check')).rulesCheck(targets)
  process.stdout.write(result.output.endsWith('\n') ? result.output : result.output + '\n')
  if (!result.ok) process.exitCode = EXIT.failed
}

async function testRules(paths: string[]): Promise<void> {
  const { packsDir } = await alerting()
  process.exitCode = await (await import('../rules/test-runner')).ruleTestsCli(paths.length > 0 ? paths : [packsDir()])
}

/** `status`: read from the state directory; a running agent is not disturbed. */
function showStatus(opts: { config: string; json?: boolean }): void {
  const st = readStatus(load(opts.config))
  if (opts.json === true) process.stdout.write(JSON.stringify(st, null, 2) + '\n')
  else process.stdout.write(formatStatus(st).join('\n') + '\n')
  // A blocked alert needs a person (a chat to fix): scripts and monitors can tell from the exit code.
  if (st.alerts.some((a) => a.state === 'blocked')) process.exitCode = EXIT.failed
}

/** The Telegram checks, loaded with telegraf only by the commands that use them. */
function telegramDoctor(): Promise<typeof import('../transports/telegram/doctor')> {
  return import('../transports/telegram/doctor')
}

function telegramRoutes(cfg: AgentConfig): Record<string, TelegramRoute> {
  const routes: Record<string, TelegramRoute> = {}
  for (const [name, r] of Object.entries(cfg.routes)) routes[name] = { ...r }
  return routes
}

async function sendTestAlert(opts: { config: string }): Promise<void> {
  const cfg = load(opts.config)
  const log = createLogger('warn')
  const { notifiers } = (await alerting()).buildNotifiers(cfg, log)
  let ok = true
  for (const [route, list] of Object.entries(notifiers)) {
    for (const notifier of list) {
      const report = await (await telegramDoctor()).testAlert(notifier, [route])
      for (const line of report.lines) process.stdout.write(`${line}\n`)
      ok &&= report.ok
    }
  }
  if (!ok) process.exitCode = EXIT.failed
}

async function runDoctor(opts: { config: string }): Promise<void> {
  const cfg = load(opts.config)
  if (!cfg.telegram) {
    process.stdout.write('No telegram: section in the configuration: alerts are printed on the console (stderr).\n' +
      'To deliver them to Telegram, add telegram.bot_token (from @BotFather) and chats under routes:.\n')
    return
  }
  const report = await (await telegramDoctor()).doctor({ token: cfg.telegram.bot_token, apiRoot: cfg.telegram.api_root, routes: telegramRoutes(cfg) })
  for (const line of report.lines) process.stdout.write(`${line}\n`)
  if (!report.ok) process.exitCode = EXIT.failed
}

export function buildCli(): Command {
  const program = new Command('logwarden')
    .description('Tails application logs, ships every entry to Elasticsearch, and alerts on rules.')
    .version(VERSION, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
  program.command('run')
    .description('run the agent: tail the configured files and ship every entry')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .action(run)
  program.command('check-config')
    .description('validate a configuration file and exit (0 = valid, 2 = errors, each with file:line:column)')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .action(checkConfig)
  program.command('setup')
    .description('install the index templates (ECS mappings) in Elasticsearch; safe to run again')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .action(setup)
  program.command('ship')
    .description('import existing files once and exit when Elasticsearch has acknowledged every entry')
    .argument('<file...>', 'files to import')
    .option('-c, --config <file>', 'configuration file for Elasticsearch, service and state_dir settings')
    .option('--es <url>', 'Elasticsearch URL (overrides the configuration)')
    .option('--index <name>', 'index or data stream (overrides the configuration)')
    .addOption(new Option('--format <format>', 'log format').choices(['auto', 'json', 'access', 'python', 'plain']).default('auto'))
    .option('--timezone <zone>', 'IANA zone for timestamps without one')
    .option('--no-progress', 'no progress bar')
    .action(ship)
  const rules = program.command('rules').description('check and test alert rule files')
  rules.command('check')
    .description('validate rule files (exit 1 on any problem, each with file:line:column); default: the configured rules, else the built-in packs')
    .argument('[path...]', 'rule files or directories')
    .option('-c, --config <file>', 'check the rules this configuration loads')
    .action(checkRules)
  rules.command('test')
    .description('run rule unit tests (*.test.yaml), in the manner of promtool test rules; default: the built-in packs\' tests')
    .argument('[file...]', 'rule test files or directories')
    .action(testRules)
  program.command('test-alert')
    .description('send a sample alert to every route (Telegram, or the console without a bot token)')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .action(sendTestAlert)
  program.command('status')
    .description('what the agent of this configuration has shipped and what waits: files, dead letters, undelivered alerts (exit 1 when an alert is blocked)')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .option('--json', 'print the status as JSON')
    .action(showStatus)
  program.command('doctor')
    .description('check the Telegram bot token and every configured chat, and explain what is wrong')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .action(runDoctor)
  return program
}

async function main(argv: string[]): Promise<void> {
  const program = buildCli()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successes; everything else commander rejects is a usage error.
      process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage)
    }
    fail(err)
  }
}

if (require.main === module) void main(process.argv)
