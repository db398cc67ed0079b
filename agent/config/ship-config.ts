import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { ConfigError, checkConfigText, loadConfig } from './load'
import type { AgentConfig } from './types'

/**
 * The configuration for `logwarden ship`: the user's file when given (its Elasticsearch, service
 * and state settings; its inputs are ignored, the files come from the command line), or the
 * schema's defaults otherwise. `--es` and `--index` override either. Without a file, dead
 * letters go to a state directory under the system temp dir, named in the summary.
 */
export function shipConfig(file: string | undefined, over: { es?: string; index?: string }): AgentConfig {
  let cfg: AgentConfig
  if (file) {
    cfg = loadConfig(file)
  } else {
    const where = join(process.cwd(), '(ship defaults)')
    const text = [
      'service: { name: logwarden-ship }',
      `state_dir: ${JSON.stringify(join(tmpdir(), 'logwarden-ship'))}`,
      'inputs: [{ type: file, paths: ["-"] }]',
      'elasticsearch:',
      '  hosts: ["${ES_URL:-http://127.0.0.1:9200}"]',
    ].join('\n')
    const result = checkConfigText(text, where)
    if (result.config === undefined) throw new ConfigError(where, result.problems)
    cfg = result.config
  }
  if (over.es) cfg.elasticsearch.hosts = [over.es]
  if (over.index) {
    cfg.elasticsearch.index = over.index
    cfg.elasticsearch.data_stream = !over.index.includes('%{+')
    // A template of its own: re-pointing the daemon's template at this index would take it away
    // from the daemon's indices (and Elasticsearch refuses when data streams depend on it).
    cfg.elasticsearch.template_name = templateNameFor(over.index)
  }
  return cfg
}

/** `logwarden-<index without its date pattern>`, e.g. import-%{+yyyy.MM.dd} → logwarden-import. */
export function templateNameFor(index: string): string {
  const base = index.replace(/%\{[^}]*\}/g, '').toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '')
  return `logwarden-${base || 'ship'}`
}
