import { writeFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { RuleWatcher, type ReloadResult } from '../rules/reload'

const GOOD = 'rules:\n  - { id: first, type: match, query: "a:1" }\n'
const BAD = 'rules:\n  - { id: first, type: match, query: "a:1" }\n  - { id: second, type: frequncy, query: "b:1" }\n'
const FIXED = 'rules:\n  - { id: first, type: match, query: "a:1" }\n  - { id: second, type: frequency, query: "b:1", threshold: 3, window: 1m }\n'

/** Reload results, awaitable one at a time. */
class Results {
  private readonly queue: ReloadResult[] = []
  private waiting: ((r: ReloadResult) => void) | undefined

  readonly push = (result: ReloadResult): void => {
    if (this.waiting !== undefined) {
      const resolve = this.waiting
      this.waiting = undefined
      resolve(result)
    } else {
      this.queue.push(result)
    }
  }

  next(): Promise<ReloadResult> {
    const queued = this.queue.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    return new Promise((resolve) => (this.waiting = resolve))
  }
}

const ids = (r: ReloadResult): string[] => r.rules.map((c) => c.rule.id)

t.test('a bad edit keeps the last good rules running and reports why; a fix is taken', async (t) => {
  const dir = t.testdir({ 'app.yaml': GOOD })
  const file = join(dir, 'app.yaml')
  const results = new Results()
  const watcher = new RuleWatcher({ paths: [dir], onReload: results.push, debounceMs: 50 })
  t.teardown(() => watcher.close())

  const start = await watcher.start()
  t.match(start, { applied: true, reason: 'start', problems: [] })
  t.same(ids(await results.next()), ['first'])

  writeFileSync(file, BAD)
  const bad = await results.next()
  t.equal(bad.reason, 'change')
  t.equal(bad.applied, false)
  t.same(ids(bad), ['first'], 'the last good rules')
  t.same(ids({ ...bad, rules: watcher.rules }), ['first'], 'are still the running rules')
  t.same(bad.problems.map((p) => p.format().split(dir + '/').join('')), [
    'app.yaml:3:25: LW_RULE_VALUE: rules[1].type: "frequncy" is not a rule type (match, frequency, ratio, absence, new_value). Did you mean "frequency"?',
  ])

  writeFileSync(file, FIXED)
  const fixed = await results.next()
  t.match(fixed, { applied: true, reason: 'change', problems: [] })
  t.same(ids(fixed), ['first', 'second'])
  t.same(watcher.rules.map((c) => c.rule.id), ['first', 'second'])

  writeFileSync(join(dir, 'more.yml'), 'rules:\n  - { id: third, type: match, query: "c:1" }\n')
  t.same(ids(await results.next()), ['first', 'second', 'third'], 'a new file in a watched directory is read')

  writeFileSync(join(dir, 'more.test.yaml'), 'not: a rule file\n')
  unlinkSync(join(dir, 'more.yml'))
  const removed = await results.next()
  t.same(ids(removed), ['first', 'second'], 'a removed file takes its rules with it; a rule-test file is not read')
  t.same(removed.problems, [])
})

t.test('reload() on demand (SIGHUP), without watching', async (t) => {
  const dir = t.testdir({ 'app.yaml': GOOD })
  const results: ReloadResult[] = []
  const watcher = new RuleWatcher({ paths: [join(dir, 'app.yaml')], watch: false, onReload: (r) => results.push(r) })
  await watcher.start()
  writeFileSync(join(dir, 'app.yaml'), BAD)
  const bad = watcher.reload()
  t.match(bad, { applied: false, reason: 'request' })
  t.same(ids(bad), ['first'])
  writeFileSync(join(dir, 'app.yaml'), FIXED)
  t.same(ids(watcher.reload()), ['first', 'second'])
  t.same(results.map((r) => [r.reason, r.applied]), [['start', true], ['request', false], ['request', true]])
  await watcher.close()
})

t.test('the first load takes the rules that are valid, and reports the rest', async (t) => {
  const dir = t.testdir({ 'app.yaml': BAD })
  const watcher = new RuleWatcher({ paths: [dir], watch: false })
  const start = await watcher.start()
  t.equal(start.applied, true)
  t.equal(start.problems.length, 1)
  t.same(ids(start), ['first'])
  await watcher.close()
})
