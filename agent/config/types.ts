/**
 * The validated configuration, as the loader returns it: every default filled in, durations in
 * milliseconds and sizes in bytes (the YAML accepts "5s" / "5MiB"), `${ENV}` already interpolated.
 * agent/config/schema.json is the single source of truth for what the YAML may say; this type
 * mirrors its output after normalisation.
 */

export type InputFormat = 'auto' | 'json' | 'access' | 'python' | 'plain'

export interface MultilineConfig {
  /** python: tracebacks; java: Java/Node stack traces ("at ..." / "Caused by:"); pattern: the generic rule. */
  type: 'python' | 'java' | 'pattern'
  /** For type pattern: a regular expression tested against each line. */
  pattern?: string
  /** For type pattern: true = lines that do NOT match the pattern are the ones joined. */
  negate: boolean
  /** For type pattern: `after` = a matching line continues the previous one; `before` = it continues into the next one. */
  match: 'after' | 'before'
  /** A group with no new line for this long is flushed (ms). */
  timeout: number
  /** A group is closed after this many lines (the rest starts a new group, flagged). */
  max_lines: number
  /** A group is closed after this many bytes. */
  max_bytes: number
}

export interface FileInputConfig {
  type: 'file'
  /** Glob patterns of files to tail. */
  paths: string[]
  /** Globs to leave out (e.g. "*.gz"). */
  exclude: string[]
  format: InputFormat
  /** Where to start in a file seen for the first time at startup; files that appear later are read from the beginning. */
  start_position: 'beginning' | 'end'
  /** IANA zone for timestamps that carry none. */
  timezone: string
  /** Lines longer than this are cut and flagged `truncated` (bytes). */
  max_line_bytes: number
  multiline?: MultilineConfig
  /** ECS `event.dataset` for entries of this input (default: `<service.name>.log`). */
  dataset?: string
  /** Extra fields added to every entry (dotted keys allowed), e.g. `service.name: billing`. */
  fields: Record<string, string | number | boolean>
  /** How often the paths are re-scanned besides file-system events (ms). */
  scan_interval: number
  /** A file not written to for this long has its descriptor closed (it is reopened on change) (ms). */
  close_inactive: number
}

export type InputConfig = FileInputConfig

export interface ElasticsearchConfig {
  /** One or more node URLs. */
  hosts: string[]
  username?: string
  password?: string
  api_key?: string
  /** PEM file of the CA that signed the cluster's certificate. */
  ca_file?: string
  /** false = accept any certificate (testing only). */
  tls_verify: boolean
  /**
   * Where documents go. A plain name (e.g. `logs-logwarden-default`) is a data stream when
   * `data_stream` is true; a name with a date pattern `%{+yyyy.MM.dd}` makes daily indices, the
   * date taken from each entry's @timestamp (so a replay lands in the same index as the original).
   */
  index: string
  data_stream: boolean
  /** Batch limits: a bulk request is sent when any is reached. */
  batch_max_docs: number
  batch_max_bytes: number
  /** ms */
  batch_interval: number
  /** Bulk requests in flight at once. */
  concurrency: number
  /** gzip bulk bodies: true, false, or `auto` — gzip unless every host is loopback (see transports/elasticsearch/compression.ts). */
  compression: boolean | 'auto'
  /** ms; per request */
  request_timeout: number
  /** Retry backoff bounds (ms). */
  retry_initial: number
  retry_max: number
  /** Index template settings installed by `logwarden setup` (and at `run` when `setup_on_start`). */
  template_name: string
  number_of_shards: number
  number_of_replicas: number
  setup_on_start: boolean
  /** Permanent item failures go here (an index) as well as to `<state_dir>/deadletter.ndjson`. */
  dead_letter_index: string
}

export interface RouteConfig {
  chats: Array<{ chat_id: number | string; thread_id?: number }>
  language: 'en' | 'ru' | 'id'
  timezone: string
  silent_below?: 'critical' | 'error' | 'warning' | 'info'
}

export interface ServiceConfig {
  name: string
  environment?: string
}

export interface AgentConfig {
  /** The file the configuration was read from (absolute), for messages. */
  source: string
  service: ServiceConfig
  /** Where checkpoints and local dead letters live (resolved against the config file's directory). */
  state_dir: string
  inputs: InputConfig[]
  elasticsearch: ElasticsearchConfig
  limits: {
    /** Bytes of entries held in memory between reading and Elasticsearch's acknowledgement; reading waits above it. */
    memory_buffer: number
    /** At most this many files open at once; the rest wait their turn. */
    max_open_files: number
  }
  /** How often offsets are persisted (ms). */
  checkpoint_interval: number
  /** On SIGTERM/SIGINT: how long to wait for in-flight documents before persisting and exiting (ms). */
  shutdown_timeout: number
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' }
  /**
   * Built-in packs (true = all) and the user's rule files (resolved against the config file's
   * directory); `disable`: rule ids loaded but never evaluated (see rules/disable.ts), none when absent.
   */
  rules: { builtin: boolean | string[]; paths: string[]; disable?: string[] }
  /** Absent: alerts go to the console. */
  telegram?: { bot_token: string; api_root: string }
  routes: Record<string, RouteConfig>
  kibana?: { url: string }
  alerts: {
    index: string
    /** ms */
    edit_window: number
    edit_budget: number
    per_rule_per_minute: number
  }
}
