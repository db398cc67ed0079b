/**
 * The services CI starts are real: a PostgreSQL that runs SQL and keeps rows, and an
 * Elasticsearch 8 cluster that stores and returns a document. If .ci/run ever stopped starting
 * them (or something answered in their place), this is the test that says so.
 */
import t from 'tap'
import { Client as PgClient } from 'pg'
import { Client as EsClient } from '@elastic/elasticsearch'
import { databaseUrl } from './support/postgres'
import { esUrl, uniqueName } from './support/elasticsearch'

t.test('PostgreSQL runs SQL and keeps rows', async t => {
  const url = databaseUrl(t)
  if (url === undefined) return
  const pg = new PgClient({ connectionString: url })
  await pg.connect()
  t.teardown(() => pg.end())

  const version = await pg.query<{ version: string; db: string }>('select version() as version, current_database() as db')
  t.match(version.rows[0]?.version, /^PostgreSQL \d+/, 'a real PostgreSQL answers')
  t.equal(version.rows[0]?.db, new URL(url).pathname.slice(1), 'connected to the database DATABASE_URL names')

  // Unique per run so two runs against one server (two engineers, say) do not collide.
  const probe = `lw_services_probe_${process.pid}_${Date.now()}`
  await pg.query(`create table ${probe} (id serial primary key, note text not null)`)
  try {
    await pg.query(`insert into ${probe} (note) values ($1), ($2)`, ['first', 'second'])
    const rows = await pg.query<{ id: number; note: string }>(`select id, note from ${probe} order by id`)
    t.same(rows.rows, [{ id: 1, note: 'first' }, { id: 2, note: 'second' }], 'rows come back as written')
  } finally {
    await pg.query(`drop table ${probe}`)
  }
  const gone = await pg.query<{ oid: string | null }>('select to_regclass($1)::text as oid', [probe])
  t.equal(gone.rows[0]?.oid, null, 'the table is gone after drop')
})

t.test('Elasticsearch is a real 8.x cluster that stores documents', async t => {
  const url = esUrl(t)
  if (url === undefined) return
  const es = new EsClient({ node: url })
  const index = uniqueName('services')
  t.teardown(async () => {
    await es.indices.delete({ index, ignore_unavailable: true })
    await es.close()
  })

  const health = await es.cluster.health({ wait_for_status: 'yellow', timeout: '60s' })
  t.ok(['yellow', 'green'].includes(health.status), `cluster health is yellow or green (got ${health.status})`)

  // GET / is not served by the integ-test distribution CI runs, so the version comes from the node itself.
  const nodes = await es.nodes.info({ node_id: '_local' })
  const versions = Object.values(nodes.nodes).map(n => n.version)
  t.equal(versions.length, 1, 'one local node')
  t.match(versions[0], /^8\.\d+\.\d+/, 'Elasticsearch 8.x')

  await es.index({ index, id: 'one', document: { message: 'hello from logwarden' }, refresh: 'wait_for' })
  const doc = await es.get<{ message: string }>({ index, id: 'one' })
  t.same(doc._source, { message: 'hello from logwarden' }, 'the document comes back')
  const found = await es.search({ index, query: { match: { message: 'logwarden' } } })
  t.equal(found.hits.hits.length, 1, 'and is found by a full-text search')
})
