// tsc copies only .ts/.json it imports; the config schema is also read at run time by path
// (editors and `check-config` point at it), so copy the non-TS assets beside the compiled code.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const assets = ['agent/config/schema.json']
for (const rel of assets) {
  const src = path.join(__dirname, '..', rel)
  if (!fs.existsSync(src)) continue
  const dst = path.join(__dirname, '..', 'dist', rel)
  fs.mkdirSync(path.dirname(dst), { recursive: true })
  fs.copyFileSync(src, dst)
}
