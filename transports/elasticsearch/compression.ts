/**
 * Whether bulk bodies are gzipped. `compression: auto` (the default) gzips unless every host is
 * this machine: over loopback no byte crosses a network, so gzip would only spend CPU twice on
 * the same host (here to deflate, in Elasticsearch to inflate) to save nothing. Measured with the
 * benchmark's bodies, gzip costs about 1.3 CPU-seconds per million documents (level 3) and takes
 * them to a seventeenth of their size: worth it on any real network, wasted on loopback.
 */
import { BlockList, isIP } from 'node:net'
import type { ElasticsearchConfig } from '../../agent/config/types'

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
// BlockList matches IPv4-mapped IPv6 (::ffff:127.0.0.1) against the IPv4 subnet too.
LOOPBACK.addAddress('::1', 'ipv6')

/**
 * True when the host of `url` is this machine: 127.0.0.0/8, ::1, `localhost` or a name under
 * `.localhost` (which RFC 6761 reserves for loopback). Anything else, or a URL that does not parse,
 * is taken as remote.
 */
export function isLoopbackUrl(url: string): boolean {
  let host: string
  try {
    host = new URL(url).hostname
  } catch {
    return false
  }
  const bare = host.startsWith('[') ? host.slice(1, -1) : host
  const family = isIP(bare)
  if (family !== 0) return LOOPBACK.check(bare, family === 6 ? 'ipv6' : 'ipv4')
  const name = bare.endsWith('.') ? bare.slice(0, -1) : bare
  return name === 'localhost' || name.endsWith('.localhost')
}

/** What `compression` means for these hosts: true or false as written; `auto` is gzip unless every host is loopback. */
export function gzipsBodies(cfg: Pick<ElasticsearchConfig, 'compression' | 'hosts'>): boolean {
  if (cfg.compression !== 'auto') return cfg.compression
  return !cfg.hosts.every(isLoopbackUrl)
}
