// Makes old-generation garbage as JSON.parse does with short unique string values (it keeps
// them as unique strings, in the old generation), while a steady 16 MB stays alive. A flag given
// as the first argument is set at run time, as agent/heap.ts does.
'use strict'
if (process.argv[2]) require('node:v8').setFlagsFromString(process.argv[2])
const live = []
for (let i = 0; i < 16 * 1024; i++) live.push('x'.repeat(1000) + i)
let sink = 0
for (let i = 0; i < 3_000_000; i++) {
  const o = JSON.parse(`{"id":"r-${i}","n":${i}}`)
  sink += o.id.length
}
process.stdout.write(`done ${sink} ${live.length}\n`)
