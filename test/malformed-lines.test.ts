/**
 * Bad input never stops the agent and never disappears: broken JSON, binary bytes, a 5 MB line
 * and invalid UTF-8 all arrive in Elasticsearch, flagged, between intact neighbours.
 */
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { agentConfig, fileInput, startAgent, waitForCount, esScenario } from './support/agent-harness'

interface Doc { message?: string; msg?: string; 'log.flags'?: string[]; log?: { flags?: string[] }; 'logwarden.parse_error'?: string; 'logwarden.line_bytes'?: number; 'log.offset'?: number }

t.test('malformed lines arrive flagged', async (t) => {
  const setup = esScenario(t, 'malformed')
  if (!setup) return
  const { url, s } = setup
  const log = join(s.logs, 'app.log')
  const big = 'B'.repeat(5 * 1024 * 1024)
  appendFileSync(log, Buffer.concat([
    Buffer.from('{"level":30,"time":1700000000000,"msg":"good one"}\n'),
    Buffer.from('{"level":50,"time":1700000000001,"msg":"broken json",\n'),
    Buffer.from([0x00, 0x01, 0x02, 0xff, 0x10, 0x41, 0x0a]),
    Buffer.from(`{"level":30,"msg":"${big}"}\n`),
    Buffer.from('invalid utf8 here: '), Buffer.from([0xc3, 0x28, 0xe2, 0x82]), Buffer.from(' end\n'),
    Buffer.from('{"level":30,"time":1700000000002,"msg":"good two"}\n'),
  ]))
  const agent = await startAgent(agentConfig(s, url, [fileInput([log], { format: 'json', max_line_bytes: 1024 * 1024 })]))
  t.teardown(() => agent.stop())
  t.equal(await waitForCount(url, s.index, 6), 6, 'all six lines arrived')
  const res = await fetch(`${url}/${s.index}/_search`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ size: 10, sort: [{ 'log.offset': 'asc' }] }),
  })
  const docs = ((await res.json()) as { hits: { hits: Array<{ _source: Doc }> } }).hits.hits.map((h) => h._source)
  const flags = (d: Doc): string[] => d['log.flags'] ?? d.log?.flags ?? []
  t.equal(docs[0]!.msg, 'good one')
  t.same(flags(docs[0]!), [])
  t.ok(flags(docs[1]!).includes('parse_error'), 'broken JSON is flagged parse_error')
  t.match(docs[1]!['logwarden.parse_error'], /JSON/i, 'with the reason')
  t.match(docs[1]!.message, /broken json/)
  t.ok(flags(docs[2]!).includes('binary'), 'binary bytes are flagged')
  t.ok(flags(docs[3]!).includes('truncated'), 'the 5 MB line is cut and flagged')
  t.ok(docs[3]!['logwarden.line_bytes']! > 5 * 1024 * 1024, 'with its original length')
  t.ok((docs[3]!.message ?? '').length <= 1024 * 1024)
  t.ok(flags(docs[4]!).includes('invalid_utf8'), 'invalid UTF-8 is flagged')
  t.match(docs[4]!.message, /^invalid utf8 here: \uFFFD.*end$/, 'replaced by U+FFFD, the rest kept')
  t.equal(docs[5]!.msg, 'good two', 'the line after all of them is intact')
})
