/**
 * The official Elasticsearch client, configured from `elasticsearch:` in the config. The client
 * never retries on its own (maxRetries 0): the sink owns retries, so that it alone decides what
 * is sent again, when, and how often, and can count it.
 */
import { readFileSync } from 'node:fs'
import { Client, type ClientOptions } from '@elastic/elasticsearch'
import { BulkAwareSerializer } from './serializer'
import { LwError } from '../../agent/errors'
import type { ElasticsearchConfig } from '../../agent/config/types'

export function createClient(cfg: ElasticsearchConfig): Client {
  const options: ClientOptions = {
    nodes: cfg.hosts,
    maxRetries: 0,
    requestTimeout: cfg.request_timeout,
    // The sink gzips bulk bodies itself (at a cheaper level); other requests are small.
    compression: false,
    // No sniffing: behind a load balancer or in a container the published addresses are often
    // unreachable from here; the configured hosts are the ones that work.
    sniffOnStart: false,
    sniffOnConnectionFault: false,
    // Bulk answers without failures are counted, not parsed item by item.
    Serializer: BulkAwareSerializer,
  }
  if (cfg.api_key) options.auth = { apiKey: cfg.api_key }
  else if (cfg.username !== undefined) options.auth = { username: cfg.username, password: cfg.password ?? '' }

  const tls: NonNullable<ClientOptions['tls']> = {}
  if (cfg.ca_file) tls.ca = readCa(cfg.ca_file)
  if (!cfg.tls_verify) tls.rejectUnauthorized = false
  if (Object.keys(tls).length > 0) options.tls = tls
  return new Client(options)
}

function readCa(path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new LwError('LW_CONFIG_VALUE', `elasticsearch.ca_file: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { hint: 'Point ca_file at the PEM file of the CA that signed the cluster certificate, readable by the logwarden user.', cause: err })
  }
}
