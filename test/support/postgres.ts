/**
 * Where the tests find PostgreSQL: the real server that .ci/run starts (or a developer starts
 * with `eval "$(.ci/start-postgres.sh)"`), named by DATABASE_URL. Never a stand-in: the SQL
 * checks and backups must meet the server they will meet in production.
 */

// Type-only: brings in tap's global `tap` namespace (tap.Test) without loading tap here.
import type {} from 'tap'

/** Why a test cannot reach PostgreSQL, and how to give it one. */
const MISSING =
  'DATABASE_URL is not set: start a test PostgreSQL with `eval "$(.ci/start-postgres.sh)"` ' +
  '(stop it with `.ci/stop-services.sh postgres`)'

/**
 * The connection URL of the test database. Without one, a developer's run skips the test
 * (`t.plan(0, reason)`) and CI's run fails it with code LW_TEST_NO_DATABASE: in CI a missing
 * database is a broken pipeline, not a reason to pass quietly. Returns undefined in both
 * cases; the caller returns at once.
 */
export function databaseUrl(t: tap.Test): string | undefined {
  const url = process.env.DATABASE_URL
  if (url !== undefined && url !== '') return url
  if (process.env.CI) {
    t.fail(`LW_TEST_NO_DATABASE: ${MISSING}. CI must run against a real PostgreSQL; .ci/run sets it.`)
  } else {
    t.plan(0, `skipped: ${MISSING}`)
  }
  return undefined
}
