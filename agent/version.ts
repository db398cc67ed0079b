import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** The package version, read once from package.json (two levels up from both agent/ and dist/agent/). */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, rel), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'logwarden' && pkg.version) return pkg.version
    } catch { /* try the next location */ }
  }
  return '0.0.0'
}

export const VERSION = readVersion()
