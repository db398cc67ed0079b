/**
 * The access-log parser: Apache and nginx common/combined lines, nginx's `\x22` escapes and a
 * trailing request time, and every line of the real Apache corpus.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { FieldValue } from '../agent/entry'
import { parseAccess } from '../agent/parsers/access'

const FIXTURES = join(__dirname, 'fixtures', 'parsers')
const CORPUS = join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log')
const UTC = { timezone: 'UTC' }

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.length > 0)
}

function fieldsOf(line: string): Record<string, FieldValue> {
  const result = parseAccess(line, UTC)
  if (result.error !== undefined) throw new Error(`unexpected parse error: ${result.error}`)
  return result.fields
}

t.test('every line of the Apache corpus parses', async (t) => {
  const corpus = lines(CORPUS)
  t.equal(corpus.length, 10_000)
  const failed: string[] = []
  const statuses = new Map<FieldValue | undefined, number>()
  for (const line of corpus) {
    const result = parseAccess(line, UTC)
    if (result.error !== undefined || result.fields['@timestamp'] === undefined || result.fields['http.request.method'] === undefined) {
      failed.push(line)
    }
    const status = result.fields['http.response.status_code']
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }
  t.same(failed, [], 'no line failed or lost its time or request')
  t.equal(statuses.get(undefined), undefined, 'every line has a status code')
  t.ok((statuses.get(200) ?? 0) > 9000, 'most lines are 200')
  t.equal(statuses.get(404), 213, 'as many 404s as `grep -c \'" 404 \'` counts')
})

t.test('corpus lines, field by field', async (t) => {
  const corpus = lines(CORPUS)
  t.same(fieldsOf(corpus[0]!), {
    '@timestamp': '2015-05-17T10:05:03.000Z',
    message: corpus[0],
    'client.ip': '83.149.9.216',
    'http.request.method': 'GET',
    'http.version': '1.1',
    'url.original': '/presentations/logstash-monitorama-2013/images/kibana-search.png',
    'url.path': '/presentations/logstash-monitorama-2013/images/kibana-search.png',
    'http.response.status_code': 200,
    'http.response.body.bytes': 203023,
    'http.request.referrer': 'http://semicomplete.com/presentations/logstash-monitorama-2013/',
    'user_agent.original': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36',
  })
  const query = fieldsOf(corpus[31]!) // line 32
  t.equal(query['url.path'], '/blog/tags/puppet')
  t.equal(query['url.query'], 'flav=rss20')
  t.equal(query['user_agent.original'], 'Tiny Tiny RSS/1.11 (http://tt-rss.org/)')
  const http10 = fieldsOf(corpus[42]!) // line 43
  t.equal(http10['http.version'], '1.0')
  t.equal(http10['client.ip'], '207.241.237.225')
  const noBytes = fieldsOf(corpus[76]!) // line 77: 200 - "-"
  t.notOk('http.response.body.bytes' in noBytes, '"-" bytes: no field')
  t.notOk('http.request.referrer' in noBytes, '"-" referrer: no field')
  t.equal(noBytes['@timestamp'], '2015-05-17T11:05:11.000Z')
  t.equal(fieldsOf(corpus[687]!)['http.request.method'], 'HEAD') // line 688
  // Line 8899 was cut inside its user agent: no closing quote.
  const cut = fieldsOf(corpus[8898]!)
  t.equal(cut['user_agent.original'], 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html')
  t.equal(cut['http.response.body.bytes'], 235)
  t.equal(cut['@timestamp'], '2015-05-20T12:05:17.000Z')
})

t.test('nginx: \\x22 escapes, UTF-8 bytes, request time, IPv6, junk requests', async (t) => {
  const [search, login, ipv6, junk, cyrillic, proxy] = lines(join(FIXTURES, 'nginx-access.log'))
  t.same(fieldsOf(search!), {
    '@timestamp': '2024-01-05T12:00:01.000Z',
    message: search,
    'client.ip': '203.0.113.7',
    'http.request.method': 'GET',
    'http.version': '1.1',
    'url.original': '/search?q="red%20boots"&page=2',
    'url.path': '/search',
    'url.query': 'q="red%20boots"&page=2',
    'http.response.status_code': 200,
    'http.response.body.bytes': 5120,
    'http.request.referrer': 'https://shop.example/',
    'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    'event.duration': 42_000_000,
  })
  const l = fieldsOf(login!)
  t.equal(l['user.name'], 'alice')
  t.equal(l['http.version'], '2.0')
  t.equal(l['http.response.status_code'], 401)
  t.equal(l['event.duration'], 3_000_000)
  const v6 = fieldsOf(ipv6!)
  t.equal(v6['client.ip'], '2001:db8::1')
  t.equal(v6['user_agent.original'], 'Mozilla/5.0 "Quoted" Agent')
  t.equal(v6['http.response.body.bytes'], 0)
  const j = fieldsOf(junk!)
  t.notOk('http.request.method' in j, 'a TLS handshake sent to the HTTP port is no request')
  t.notOk('url.original' in j)
  t.equal(j['http.response.status_code'], 400)
  t.equal(fieldsOf(cyrillic!)['url.path'], '/привет', 'escaped UTF-8 bytes are decoded')
  const p = fieldsOf(proxy!)
  t.equal(p['url.original'], 'http://example.com:8080/proxy/path?a=1')
  t.equal(p['url.scheme'], 'http')
  t.equal(p['url.domain'], 'example.com')
  t.equal(p['url.path'], '/proxy/path')
  t.equal(p['url.query'], 'a=1')
  t.equal(p['event.duration'], 10_005_000_000)
})

t.test('Apache: common format, combined, "-" fields, \\" escapes, host names', async (t) => {
  const [common, combined, head, quoted, named] = lines(join(FIXTURES, 'apache-access.log'))
  t.same(fieldsOf(common!), {
    '@timestamp': '2000-10-10T20:55:36.000Z',
    message: common,
    'client.ip': '127.0.0.1',
    'user.name': 'frank',
    'http.request.method': 'GET',
    'http.version': '1.0',
    'url.original': '/apache_pb.gif',
    'url.path': '/apache_pb.gif',
    'http.response.status_code': 200,
    'http.response.body.bytes': 2326,
  }, 'the zone -0700 is applied')
  t.equal(fieldsOf(combined!)['user_agent.original'], 'Mozilla/4.08 [en] (Win98; I ;Nav)')
  t.equal(fieldsOf(combined!)['http.request.referrer'], 'http://www.example.com/start.html')
  const h = fieldsOf(head!)
  t.notOk('user_agent.original' in h, '"-" user agent: no field')
  t.notOk('http.response.body.bytes' in h)
  t.equal(fieldsOf(quoted!)['user_agent.original'], 'Agent "with" quotes')
  const n = fieldsOf(named!)
  t.equal(n['client.address'], 'gateway.example.net', 'a host name is an address, not an ip')
  t.notOk('client.ip' in n)
  t.equal(n['url.original'], '*')
  t.notOk('url.path' in n, "OPTIONS' * is no path")
})

t.test('lines that are not access-log lines', async (t) => {
  for (const line of [
    'just some text',
    '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0"',
    '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" OK 12',
    '{"remote_addr":"127.0.0.1"}',
  ]) {
    const result = parseAccess(line, UTC)
    t.match(result.error, /^LW_PARSE_ACCESS: /, line)
    t.same(result.fields, { message: line })
  }
})

t.test('a bad time keeps the other fields', async (t) => {
  const fields = fieldsOf('127.0.0.1 - - [99/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1')
  t.notOk('@timestamp' in fields)
  t.equal(fields['http.response.status_code'], 200)
})
