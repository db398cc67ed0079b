import t from 'tap'
import { checkIndexConfig, compileIndexName, hasDatePattern, indexWildcard } from '../transports/elasticsearch/index-name'

t.test('a plain name is used as it is, whatever the timestamp', async (t) => {
  const name = compileIndexName('logs-app-default')
  t.equal(name('2015-05-17T10:05:03Z'), 'logs-app-default')
  t.equal(name('not a date'), 'logs-app-default')
  t.notOk(hasDatePattern('logs-app-default'))
})

t.test('daily, monthly and yearly patterns take the date from the timestamp', async (t) => {
  t.equal(compileIndexName('app-%{+yyyy.MM.dd}')('2015-05-17T10:05:03.123Z'), 'app-2015.05.17')
  t.equal(compileIndexName('app-%{+yyyy.MM}')('2015-05-17T10:05:03Z'), 'app-2015.05')
  t.equal(compileIndexName('app-%{+yyyy}')('2015-05-17T10:05:03Z'), 'app-2015')
  t.equal(compileIndexName('%{+yyyy-MM-dd}-app')('2015-01-02T00:00:00Z'), '2015-01-02-app')
  t.equal(compileIndexName('app-%{+yyyy}-x-%{+MM_dd}')('2016-02-29T12:00:00Z'), 'app-2016-x-02_29')
})

t.test('the day is the UTC day of the instant, not of the local wall clock', async (t) => {
  const name = compileIndexName('app-%{+yyyy.MM.dd}')
  // 23:30 at UTC-02:00 is 01:30 the next day in UTC.
  t.equal(name('2015-05-17T23:30:00-02:00'), 'app-2015.05.18')
  // 00:30 at UTC+03:00 is still the previous day in UTC.
  t.equal(name('2015-05-18T00:30:00+03:00'), 'app-2015.05.17')
  t.equal(name('2015-05-18T00:30:00.000+00:00'), 'app-2015.05.18')
})

t.test('the same timestamp always gives the same index (a replay lands where the first attempt did)', async (t) => {
  const a = compileIndexName('app-%{+yyyy.MM.dd}')
  const b = compileIndexName('app-%{+yyyy.MM.dd}')
  const stamps = ['2014-12-31T23:59:59.999Z', '2015-01-01T00:00:00Z', '2015-01-01T00:00:00+01:00']
  for (const s of stamps) {
    t.equal(a(s), b(s), s)
    t.equal(a(s), a(s), `${s} cached`)
  }
  t.equal(a(stamps[0] as string), 'app-2014.12.31')
  t.equal(a(stamps[2] as string), 'app-2014.12.31')
})

t.test('unsupported patterns are refused at compile time with a hint', async (t) => {
  for (const bad of ['app-%{+yyyy.MM.dd HH}', 'app-%{+}', 'app-%{+YYYY}', 'app-%{+yyyy/MM}']) {
    t.throws(() => compileIndexName(bad), { name: 'LwError', code: 'LW_CONFIG_VALUE', hint: /yyyy\.MM\.dd/ }, bad)
  }
})

t.test('a data stream cannot have a date pattern', async (t) => {
  t.throws(() => checkIndexConfig({ index: 'logs-%{+yyyy.MM.dd}', data_stream: true }),
    { name: 'LwError', code: 'LW_CONFIG_CONFLICT' })
  t.doesNotThrow(() => checkIndexConfig({ index: 'logs-%{+yyyy.MM.dd}', data_stream: false }))
  t.doesNotThrow(() => checkIndexConfig({ index: 'logs-app-default', data_stream: true }))
})

t.test('the template pattern replaces each date pattern with a wildcard', async (t) => {
  t.equal(indexWildcard('app-%{+yyyy.MM.dd}'), 'app-*')
  t.equal(indexWildcard('app-%{+yyyy}-x-%{+MM}'), 'app-*-x-*')
  t.equal(indexWildcard('logs-app-default'), 'logs-app-default')
  t.ok(hasDatePattern('app-%{+yyyy.MM.dd}'))
})
