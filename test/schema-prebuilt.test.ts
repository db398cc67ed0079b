import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { ValidateFunction } from 'ajv'
import { parse } from 'yaml'
import { compileConfigSchema } from '../agent/config/load'
import { compileRulesSchema } from '../rules/load'

const ROOT = join(__dirname, '..')

/** The validator `npm run build` generated (the test command builds first). */
function generated(rel: string): ValidateFunction {
  return require(join(ROOT, 'dist', rel)) as ValidateFunction
}

/** What a validator makes of a document: its verdict, its errors, and the document with defaults filled in. */
function outcome(validate: ValidateFunction, doc: unknown): unknown {
  const data = structuredClone(doc)
  const ok = validate(data)
  const errors = (validate.errors ?? []).map(({ instancePath, schemaPath, keyword, params, message }) => ({ instancePath, schemaPath, keyword, params, message }))
  return { ok, errors, data }
}

t.test('the generated config validator answers as the schema compiled at run time', async (t) => {
  const prebuilt = generated('agent/config/schema-validator.js')
  const fresh = compileConfigSchema()
  const example = parse(readFileSync(join(ROOT, 'config.example.yaml'), 'utf8')) as Record<string, unknown>
  const minimal = { service: { name: 'x' }, inputs: [{ type: 'file', paths: ['a.log'] }], elasticsearch: { hosts: ['http://127.0.0.1:9200'] } }
  const docs: unknown[] = [
    example,
    minimal,
    {},
    { service: { name: 'x' }, inputs: [{ type: 'file', paths: ['a.log'], timezone: 'Europe/Moskow', formatt: 'json' }] },
    { service: { name: 'x' }, inputs: [{ type: 'file', paths: ['a.log'], multiline: { type: 'pattern', pattern: '([' } }] },
    { service: { name: 'x' }, elasticsearch: { hosts: ['http://x:9200'], index: 'Bad Name', batch: { max_docs: 0 } } },
    { service: 'not a mapping', inputs: 'nor a list' },
  ]
  for (const [i, doc] of docs.entries()) t.same(outcome(prebuilt, doc), outcome(fresh, doc), `document ${i}`)
  t.equal((outcome(prebuilt, minimal) as { ok: boolean }).ok, true, 'a minimal configuration is valid')
  t.equal((outcome(prebuilt, docs[3]) as { ok: boolean }).ok, false, 'a misspelt one is not')
})

t.test('the generated rules validator answers as the schema compiled at run time', async (t) => {
  const prebuilt = generated('rules/schema-validator.js')
  const fresh = compileRulesSchema()
  const packs = join(ROOT, 'rules', 'packs')
  const docs: unknown[] = readdirSync(packs).filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
    .map((f) => parse(readFileSync(join(packs, f), 'utf8')))
  docs.push(
    { rules: [{ id: 'x', type: 'frequency', query: 'a: b' }] },
    { rules: [{ id: 'x', type: 'match', when: { field: 'a', regexx: 'b' }, severty: 'high' }] },
    { rules: [{ id: 'x', type: 'ratio', when: { field: 'a', gt: 'five' }, threshold: 2 }] },
    { rules: 'not a list' },
  )
  for (const [i, doc] of docs.entries()) t.same(outcome(prebuilt, doc), outcome(fresh, doc), `document ${i}`)
  t.equal((outcome(prebuilt, docs[0]) as { ok: boolean }).ok, true, 'a built-in pack is valid')
  t.equal((outcome(prebuilt, docs[docs.length - 1]) as { ok: boolean }).ok, false, 'a list that is not one is not')
})
