/**
 * Alerts printed as readable plain text, for when no Telegram bot token is configured: the bundled
 * example shows its alerts on a fresh machine, and nobody has to set up a bot to try logwarden.
 * The text is the same message Telegram would get (transports/telegram/format.ts) without markup,
 * framed so that alerts stand out between the agent's JSON log lines on stderr.
 *
 * Each printed alert gets a number, returned as its message id; an edit (a fingerprint firing
 * again) prints the updated alert marked as an update of that number.
 */
import type { Writable } from 'node:stream'
import type { DeliveryResult, Notification, Notifier } from '../../rules/model'
import { formatNotification } from '../telegram/format'
import type { Language } from '../telegram/i18n'

export interface ConsoleNotifierOptions {
  /** Where alerts go; default process.stderr (stdout is kept for command output). */
  stream?: Writable
  language?: Language
  /** IANA zone for times; default UTC. */
  timezone?: string
  kibanaUrl?: string
  kibanaDataView?: string
}

const RULE = '─'.repeat(60)

export class ConsoleNotifier implements Notifier {
  readonly name = 'console'
  private readonly stream: Writable
  private readonly options: Required<Pick<ConsoleNotifierOptions, 'language' | 'timezone'>> & Pick<ConsoleNotifierOptions, 'kibanaUrl' | 'kibanaDataView'>
  private printed = 0

  constructor(options: ConsoleNotifierOptions = {}) {
    this.stream = options.stream ?? process.stderr
    this.options = {
      language: options.language ?? 'en',
      timezone: options.timezone ?? 'UTC',
      ...(options.kibanaUrl === undefined ? {} : { kibanaUrl: options.kibanaUrl }),
      ...(options.kibanaDataView === undefined ? {} : { kibanaDataView: options.kibanaDataView }),
    }
  }

  async send(n: Notification): Promise<DeliveryResult> {
    const { text } = formatNotification(n, this.options)
    const earlier = n.edit?.messageIds.console
    const number = earlier ?? ++this.printed
    const title = earlier === undefined ? `alert #${number} (route ${n.route})` : `alert #${number} updated (route ${n.route})`
    const block = `${RULE}\n${title}\n${text}\n${RULE}\n`
    try {
      await new Promise<void>((resolve, reject) => {
        this.stream.write(block, (err) => (err ? reject(err) : resolve()))
      })
    } catch (err) {
      return { ok: false, messageIds: {}, retryable: true, error: `the console stream refused the alert: ${err instanceof Error ? err.message : String(err)}` }
    }
    return { ok: true, messageIds: { console: number } }
  }
}
