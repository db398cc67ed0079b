import pino from 'pino'

export type Logger = pino.Logger

/**
 * The agent's own log: JSON lines on stderr (stdout stays free for command output such as
 * `ship` summaries). Secrets never reach it: config values are not logged, and errors from the
 * Elasticsearch client are reduced to their message before they are logged.
 */
export function createLogger(level: string = process.env.LOGWARDEN_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { name: 'logwarden' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }))
}
