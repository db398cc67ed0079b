/**
 * The agent sets V8's old-generation growth for itself (agent/heap.ts) unless the operator set
 * it on the command line or in NODE_OPTIONS.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { HEAP_GROWING_PERCENT, tuneHeap } from '../agent/heap'

t.test('an explicit setting wins, in either spelling and either place', async (t) => {
  t.equal(tuneHeap(['--heap-growing-percent=80'], ''), false, 'command line')
  t.equal(tuneHeap([], '--max-old-space-size=512 --heap_growing_percent=80'), false, 'NODE_OPTIONS')
  t.equal(tuneHeap(['--max-old-space-size=512'], '--enable-source-maps'), true, 'other flags only: set')
})

t.test('set at run time, the setting keeps the heap smaller at its peak', async (t) => {
  // A process that makes old-generation garbage the way JSON.parse does (short unique strings)
  // beside 16 MB that stay alive, with and without the flag set at run time as tuneHeap sets it.
  // The peak is the largest heap any collection found (V8's --trace-gc, before each one).
  // Node warns about a flag it does not know; that is checked too.
  const script = join(__dirname, 'support', 'old-space-churn.js')
  const peak = (flag: string): number => {
    const res = spawnSync(process.execPath, ['--trace-gc', script, flag], { encoding: 'utf8' })
    t.equal(res.status, 0, `churn ${flag || 'with the defaults'}: exits 0 ${res.stderr}`)
    t.notMatch(res.stderr, /unknown|bad option|warning/i, 'no complaint about the flag')
    t.match(res.stdout, /Mark-Compact/, 'full collections happened')
    return Math.max(...[...res.stdout.matchAll(/(?:Scavenge|Mark-Compact) ([\d.]+) \(/g)].map((m) => Number(m[1])))
  }
  const plain = peak('')
  const tuned = peak(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
  t.ok(tuned < plain * 0.85, `the heap peaked at ${tuned} MB with the setting, ${plain} MB without`)
})
