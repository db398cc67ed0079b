/**
 * `logwarden ship` as a user runs it, against the real Elasticsearch: the 10,000-line Apache
 * corpus arrives whole with its ECS fields, in daily indices dated by each line's own time;
 * shipping it again creates nothing (same ids, 409 = already there); and a line Elasticsearch
 * refuses ends in the dead letters, with exit 3 and a summary that says where.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { runCli, writeScenarioConfig } from './support/cli-process'
import { allDocs, dropEs, es, esUrl, refreshAndCount, uniqueName } from './support/elasticsearch'
import { esScenario } from './support/agent-harness'
import { sourceField } from './support/source-field'
import type { DeadLetter } from '../transports/elasticsearch/dead-letter'

const CORPUS = join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log')

t.test('ship the Apache corpus, then ship it again: 10000 documents, none twice', async (t) => {
  const url = esUrl(t)
  if (!url) return
  const name = uniqueName('shipcmd')
  const pattern = `${name}-*`
  // Without -c, ship installs a template of its own, named after the index.
  t.teardown(() => dropEs(url, pattern, [`logwarden-${name}`]))
  const args = ['ship', '--es', url, '--index', `${name}-%{+yyyy.MM.dd}`, CORPUS]

  const first = await runCli(args)
  t.equal(first.code, 0, 'exit 0', { stderr: first.stderr })
  t.match(first.stdout, /^shipped 10000 entries from 1 file\(s\) in [\d.]+ s: 10000 created, 0 already there, 0 dead-lettered, 0 unparsed/)
  t.equal(await refreshAndCount(url, pattern), 10000, '10000 documents in Elasticsearch')

  const docs = await allDocs(url, pattern)
  t.equal(docs.length, 10000)
  const missing: string[] = []
  const days = new Set<string>()
  for (const { _id, _index, _source: src } of docs) {
    const status = sourceField(src, 'http.response.status_code')
    const ip = sourceField(src, 'client.ip')
    const path = sourceField(src, 'url.path')
    const ts = sourceField(src, '@timestamp')
    const ok = typeof status === 'number' && status >= 100 && status < 600 &&
      typeof ip === 'string' && ip.length > 0 &&
      typeof path === 'string' && path.startsWith('/') &&
      typeof ts === 'string' && ts.startsWith('2015-05-')
    if (!ok) missing.push(`${_id}: ${JSON.stringify(src)}`)
    days.add(_index.slice(name.length + 1))
  }
  t.same(missing.slice(0, 5), [], 'every document has status, client.ip, url.path and a May 2015 @timestamp')
  t.same([...days].sort(), ['2015.05.17', '2015.05.18', '2015.05.19', '2015.05.20'], 'daily indices from each line\'s own date')

  const again = await runCli(args)
  t.equal(again.code, 0, 'exit 0', { stderr: again.stderr })
  t.match(again.stdout, /^shipped 10000 entries from 1 file\(s\) in [\d.]+ s: 0 created, 10000 already there, 0 dead-lettered/)
  t.equal(await refreshAndCount(url, pattern), 10000, 'still 10000 documents')
})

t.test('a line Elasticsearch refuses goes to the dead letters: exit 3, and the summary says where', async (t) => {
  const setup = esScenario(t, 'shipdl')
  if (!setup) return
  const { url, s } = setup
  const config = writeScenarioConfig(s, url, ['paths: ["./unused.log"]'], { top: ['log: { level: warn }'] })
  // The day's index exists already with `n` as a number, so a line with a word there is refused for good.
  const index = s.indexConfig.replace('%{+yyyy.MM.dd}', '2015.05.17')
  await es(url, 'PUT', `/${index}`, { settings: { number_of_replicas: 0 }, mappings: { properties: { n: { type: 'long' } } } })
  const good = '{"level":30,"time":1431856800000,"msg":"fine","n":1}'
  // Not ASCII: the document's tail is the line's UTF-8 bytes, and the raw text is decoded from them.
  const bad = '{"level":30,"time":1431856801000,"msg":"refusé ☕","n":"not a number"}'
  const file = join(s.logs, 'app.log')
  writeFileSync(file, `${good}\n${bad}\n`)

  const res = await runCli(['ship', '-c', config, file])
  t.equal(res.code, 3, 'exit 3', { stderr: res.stderr })
  t.match(res.stdout, /^shipped 2 entries from 1 file\(s\) in [\d.]+ s: 1 created, 0 already there, 1 dead-lettered/)
  const deadLetterFile = join(s.stateDir, 'deadletter.ndjson')
  t.match(res.stderr, `1 entries were refused by Elasticsearch and kept in ${deadLetterFile} and the index ${s.template}-deadletter`)

  const letters = readFileSync(deadLetterFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as DeadLetter)
  t.equal(letters.length, 1)
  t.equal(letters[0]?.raw, bad, 'the refused line is kept as it was')
  t.equal(letters[0]?.index, index)
  t.match(letters[0]?.error.reason, /\[n\]/, 'the reason names the field')
  const docs = await allDocs<{ msg?: string }>(url, index)
  t.same(docs.map((d) => d._source.msg), ['fine'], 'the good line arrived')
})
