/**
 * A traceback that is the last thing in a quiet file is shipped once its multiline group has
 * been idle for `multiline.timeout` — it does not wait for the next log line — and arrives as one
 * document with its error fields.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { allDocs } from './support/elasticsearch'
import { agentConfig, fileInput, startAgent, waitForCount, esScenario } from './support/agent-harness'
import { sourceField } from './support/source-field'

t.test('the last traceback of a quiet file ships after multiline.timeout', async (t) => {
  const setup = esScenario(t, 'mlidle')
  if (!setup) return
  const { url, s } = setup
  const cfg = agentConfig(s, url, [fileInput([join(s.logs, '*.log')], {
    format: 'python',
    multiline: { type: 'python', negate: false, match: 'after', timeout: 300, max_lines: 500, max_bytes: 1024 * 1024 },
  })])
  const agent = await startAgent(cfg)
  t.teardown(() => agent.stop())
  writeFileSync(join(s.logs, 'app.log'), [
    '2025-03-14 09:15:01,204 - worker - INFO - started',
    '2025-03-14 09:15:02,318 - worker - ERROR - job 7 failed',
    'Traceback (most recent call last):',
    '  File "/app/jobs.py", line 12, in run',
    '    total / count',
    'ZeroDivisionError: division by zero',
  ].join('\n') + '\n')

  t.equal(await waitForCount(url, s.index, 2, 15_000), 2, 'both records arrived, the last without a line after it')
  const failed = (await allDocs(url, s.index)).map((d) => d._source).filter((d) => sourceField(d, 'message') === 'job 7 failed')
  t.equal(failed.length, 1, 'the record and its traceback are one document')
  t.equal(sourceField(failed[0] ?? {}, 'error.type'), 'ZeroDivisionError')
  t.match(sourceField(failed[0] ?? {}, 'error.stack_trace'), /^Traceback \(most recent call last\):\n {2}File "\/app\/jobs\.py"/)
})
