// Reads the built-in rule packs ahead of time (rules/load.ts, ReadAhead): their data and the
// positions a clean load asks for, stored next to the compiled loader, so a start need not parse
// their YAML. A pack with problems is left out: its problems are then reported from the YAML.
// Run by `npm run build` after tsc.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const { readAhead, READ_AHEAD_FILE } = require(path.join(root, 'dist', 'rules', 'load.js'))
const packs = path.join(root, 'rules', 'packs')
const out = {}
for (const name of fs.readdirSync(packs).sort()) {
  if (!/\.ya?ml$/.test(name) || /\.test\.ya?ml$/.test(name)) continue
  const file = path.join(packs, name)
  const entry = readAhead(fs.readFileSync(file, 'utf8'), file)
  if (entry === undefined) process.stderr.write(`prebuild-packs: ${name} has problems; it will be read as YAML (run logwarden rules check)\n`)
  else out[name] = entry
}
fs.writeFileSync(path.join(root, 'dist', 'rules', READ_AHEAD_FILE), JSON.stringify(out))
