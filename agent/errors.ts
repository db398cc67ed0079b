/**
 * Errors with stable codes. A code names the kind of failure for people and scripts (grep the
 * logs, match in a test, look up here); the message says what is wrong and the hint what to do.
 * Codes are never renamed or reused: add a new one instead. The table below is the reference —
 * a code that is not in it does not type-check.
 *
 * Printed form (see `LwError.format`): `<where>: <code>: <message>. <hint>`, e.g.
 *   config.yaml:12:5: LW_CONFIG_UNKNOWN_KEY: elasticsearch.hots: unknown key. Did you mean "hosts"?
 */

export const LW_CODES = {
  // ── configuration (agent/config) ────────────────────────────────────────────────────────────
  LW_CONFIG_READ: 'The configuration file cannot be read (missing, a directory, no permission).',
  LW_CONFIG_SYNTAX: 'The file is not valid YAML (indentation, quoting, duplicate key, unknown alias or tag).',
  LW_CONFIG_ENV_UNSET: 'A ${VAR} refers to an environment variable that is not set and has no :-default.',
  LW_CONFIG_ENV_SYNTAX: 'A ${...} expression is malformed (no closing brace, bad variable name).',
  LW_CONFIG_UNKNOWN_KEY: 'A key that is not an option at that place (usually a typo; a suggestion is given).',
  LW_CONFIG_MISSING_KEY: 'A required option is missing.',
  LW_CONFIG_TYPE: 'An option has the wrong kind of value (text where a number is expected, a list where a mapping is).',
  LW_CONFIG_VALUE: 'An option has a value outside what it accepts (not one of the choices, out of range, empty, bad URL or index name, file not found).',
  LW_CONFIG_DURATION: 'A duration is not "500ms" / "2s" / "5m" / "1h" / "1d" or a number of milliseconds, or is zero where time must pass.',
  LW_CONFIG_SIZE: 'A size is not "512KiB" / "5MiB" / "1GiB" or a number of bytes, or is zero.',
  LW_CONFIG_TIMEZONE: 'A timezone is not an IANA zone name known to this Node.js (e.g. Europe/Moscow, UTC).',
  LW_CONFIG_REGEX: 'A regular expression does not compile.',
  LW_CONFIG_CONFLICT: 'Options that cannot be used together, or whose values contradict each other.',
  LW_CONFIG_INVALID: 'The configuration has problems; the error lists each one with its own code and place.',

  // ── inputs and parsing (agent/inputs, agent/framing, agent/parsers) ───────────────────────
  LW_INPUT_NO_MATCH: 'No file matches an input\'s paths yet; the agent keeps watching for them.',
  LW_INPUT_WATCH: 'The file-system watcher failed; the periodic scan (scan_interval) still finds changes.',
  LW_INPUT_OPEN: 'A matched file cannot be opened (permissions, vanished); it is retried at the next scan.',
  LW_INPUT_READ: 'Reading an open file failed; it is retried at the next scan.',
  LW_INPUT_TRUNCATED: 'A file became shorter than the offset already read (copytruncate or rewrite); it is read again from the start.',
  LW_INPUT_COPY: 'A rotated copy (app.log.1, app.log.1.gz) that holds lines not read yet could not be read to its end (a corrupt or cut-short gzip file, removed meanwhile); the lines past the damage are not shipped.',
  LW_INPUT_OPEN_FILES: 'limits.max_open_files is reached; further files wait until an open one is closed.',
  LW_INPUT_LINE_TOO_LONG: 'A line was longer than max_line_bytes; it was cut and flagged `truncated`.',
  LW_PARSE_JSON: 'A line of a json input is not a JSON object; it is shipped as plain text flagged `parse_error`.',
  LW_PARSE_ACCESS: 'A line of an access input is not in Common/Combined Log Format; shipped as plain text flagged `parse_error`.',
  LW_PARSE_PYTHON: 'A line of a python input matches no known Python logging format; shipped as plain text flagged `parse_error`.',

  // ── Elasticsearch (transports/elasticsearch) ────────────────────────────────────────────────
  LW_ES_UNREACHABLE: 'No node answers (connection refused, DNS, timeout); requests are retried with backoff.',
  LW_ES_AUTH: 'The cluster refused the credentials or their privileges (401/403).',
  LW_ES_TLS: 'The TLS handshake failed (unknown CA, wrong host name, expired certificate).',
  LW_ES_SETUP: 'Installing the index template or creating the data stream / dead-letter index failed.',
  LW_ES_BULK_RETRY: 'A bulk request or some of its items failed temporarily (429, 5xx); they are retried.',
  LW_ES_DOC_REJECTED: 'Elasticsearch rejected a document permanently (e.g. mapping conflict); it went to the dead letters.',
  LW_ES_DEAD_LETTER: 'A rejected document could not be written to the dead letters.',

  // ── checkpoints and the state directory (agent/checkpoint) ─────────────────────────────────
  LW_CHECKPOINT_CORRUPT: 'The checkpoint file does not parse or has an unknown version.',
  LW_CHECKPOINT_WRITE: 'The checkpoint could not be written (disk full, permissions); offsets did not move.',
  LW_STATE_LOCKED: 'Another agent is using the same state_dir.',

  // ── alert rules (rules/) ────────────────────────────────────────────────────────────────────
  LW_RULE_READ: 'A rule file or directory cannot be read (missing, no permission), or none was given.',
  LW_RULE_SYNTAX: 'A rule file is not valid YAML (indentation, quoting, duplicate key).',
  LW_RULE_UNKNOWN_KEY: 'A key that is not an option of a rule or condition at that place (usually a typo; a suggestion is given).',
  LW_RULE_MISSING_KEY: 'A rule or condition lacks a key it needs (id, type, threshold, window, ...).',
  LW_RULE_TYPE: 'A rule option has the wrong kind of value (text where a number is expected, a list where a mapping is).',
  LW_RULE_VALUE: 'A rule option has a value outside what it accepts (not one of the choices, out of range, malformed id).',
  LW_RULE_DURATION: 'A rule duration is not "30s" / "5m" / "1h" / "30d" or a number of milliseconds, or is zero where time must pass.',
  LW_RULE_CONDITION: 'A `when` condition is malformed: not exactly one of all / any / not / field, or a field test with no test.',
  LW_RULE_DISABLE_UNKNOWN: 'rules.disable in the configuration names an id no loaded rule has (a typo; the closest id is suggested); the other rules run.',
  LW_RULE_QUERY: 'A `query` string does not parse (Kibana/Lucene syntax).',
  LW_RULE_REGEX: 'A regular expression does not compile, or uses what RE2 cannot run in linear time (lookaround, backreferences).',
  LW_RULE_FIELD: 'A field name looks like a misspelt ECS field (the rule would never match).',
  LW_RULE_TEMPLATE: 'A rule\'s message template is not valid Mustache.',
  LW_RULE_CONFLICT: 'Rule options that cannot be used together, or whose values contradict each other.',
  LW_RULE_DUPLICATE_ID: 'Two rules have the same id; ids must be unique across all rule files.',

  // ── command line and process lifecycle (agent/cli) ─────────────────────────────────────────
  // alerting
  LW_RULES_INVALID: 'A rule file has a problem at load or reload; the last good rules keep running.',
  LW_ALERT_ROUTE: 'A rule names a route that is not configured under `routes:`; its alerts wait in the outbox.',
  LW_ALERTS_INDEX_FULL: 'The alerts index buffer overflowed while Elasticsearch was away; the oldest alert records were dropped (the alerts themselves were delivered).',
  LW_TELEGRAM_AUTH: 'Telegram refused the bot token (401): the token is wrong or was revoked; get a new one from @BotFather.',
  LW_TELEGRAM_FORBIDDEN: 'The bot may not write to a chat (403): it was blocked, removed from the group, or is not an admin of the channel.',
  LW_TELEGRAM_CHAT_NOT_FOUND: 'A configured chat does not exist for this bot (wrong id, or the bot was never added / started by the user).',
  LW_TELEGRAM_THREAD_NOT_FOUND: 'A configured forum topic (thread_id) does not exist in the chat.',
  LW_TELEGRAM_MIGRATED: 'A group was upgraded to a supergroup and has a new id; alerts go there now — update chat_id in the configuration.',
  LW_TELEGRAM_RATE_LIMITED: 'Telegram asked to slow down (429); the alert is retried after retry_after.',
  LW_TELEGRAM_PARSE: 'Telegram could not parse the message HTML; it was sent again as plain text.',
  LW_TELEGRAM_UNAVAILABLE: 'Telegram did not answer or answered 5xx; the alert stays in the outbox and is retried.',
  LW_TELEGRAM_REJECTED: 'Telegram refused a message for another reason (400); the reason is in the message.',
  LW_TELEGRAM_NO_ROUTE: 'A notification names a route the Telegram notifier has no chats for.',
  LW_CLI_USAGE: 'Wrong command-line arguments.',
  LW_SHUTDOWN_TIMEOUT: 'In-flight documents were not acknowledged within shutdown_timeout; they are read again at the next start.',
  LW_INTERNAL: 'A bug in logwarden (a broken internal assumption); please report it with the message.',
} as const

export type LwCode = keyof typeof LW_CODES

export interface LwErrorOptions {
  /** What to do about it, one sentence. */
  hint?: string
  /** Where it happened: `file:line:column`, a file, a URL. */
  where?: string
  cause?: unknown
}

export class LwError extends Error {
  override readonly name = 'LwError'
  readonly code: LwCode
  readonly hint?: string
  readonly where?: string

  /**
   * `message` says what is wrong, starting with the thing it is about (a key path, a file).
   * A string in place of the options is the hint: most errors need nothing else.
   */
  constructor(code: LwCode, message: string, hintOrOptions: string | LwErrorOptions = {}) {
    const options = typeof hintOrOptions === 'string' ? { hint: hintOrOptions } : hintOrOptions
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options.hint !== undefined) this.hint = options.hint
    if (options.where !== undefined) this.where = options.where
  }

  /** One line for people: `<where>: <code>: <message>. <hint>`. */
  format(): string {
    const head = this.where === undefined ? `${this.code}: ` : `${this.where}: ${this.code}: `
    if (this.hint === undefined) return head + this.message
    const stop = /[.?!:]$/.test(this.message) ? ' ' : '. '
    return head + this.message + stop + this.hint
  }

  override toString(): string {
    return this.format()
  }
}
