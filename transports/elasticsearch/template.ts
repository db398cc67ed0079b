/**
 * The index templates `logwarden setup` installs: one for the documents (ECS mappings for the
 * fields the parsers produce) and one for the dead-letter index. Installing is idempotent: a
 * hash of the wanted template is kept in its `_meta`, and a template whose hash matches is left
 * alone, so running setup at every start costs one GET per template.
 */
import { createHash } from 'node:crypto'
import type { Client, estypes } from '@elastic/elasticsearch'
import type { ElasticsearchConfig } from '../../agent/config/types'
import { VERSION } from '../../agent/version'
import { checkIndexConfig, indexWildcard } from './index-name'

type Property = estypes.MappingProperty
type TemplateBody = Omit<estypes.IndicesPutIndexTemplateRequest, 'name'>

const keyword = (ignoreAbove = 1024): Property => ({ type: 'keyword', ignore_above: ignoreAbove })
const long: Property = { type: 'long' }
const text: Property = { type: 'text' }
const object = (properties: Record<string, Property>): Property => ({ properties })

/** ECS field types for what the parsers derive (see agent/parsers/). */
const ECS_PROPERTIES: Record<string, Property> = {
  '@timestamp': { type: 'date' },
  message: text,
  log: object({
    level: keyword(),
    offset: long,
    flags: keyword(),
    file: object({ path: keyword() })
  }),
  error: object({
    type: keyword(),
    message: text,
    // Text only: a stack trace easily passes the 32 KiB a keyword term may hold.
    stack_trace: text
  }),
  http: object({
    request: object({ method: keyword(), referrer: keyword(2048) }),
    response: object({ status_code: long, body: object({ bytes: long }) })
  }),
  url: object({
    path: keyword(2048),
    query: keyword(2048),
    original: { type: 'keyword', ignore_above: 2048, fields: { text: { type: 'text' } } }
  }),
  // Access logs written with HostnameLookups carry a name here; keep the document, skip the value.
  client: object({ ip: { type: 'ip', ignore_malformed: true } }),
  user_agent: object({ original: { type: 'keyword', ignore_above: 1024, fields: { text: { type: 'text' } } } }),
  event: object({ action: keyword(), dataset: keyword(), duration: long }),
  service: object({ name: keyword() }),
  host: object({ name: keyword() }),
  process: object({ pid: long }),
  user: object({ name: keyword() })
}

/** The object fields of a mapping, as a tree: `{ http: { request: {}, response: { body: {} } }, ... }`. */
export interface ObjectTree { [name: string]: ObjectTree }

function objectTree(properties: Record<string, Property>): ObjectTree {
  const tree: ObjectTree = {}
  for (const [name, p] of Object.entries(properties)) {
    if ('properties' in p && p.properties) tree[name] = objectTree(p.properties as Record<string, Property>)
  }
  return tree
}

/**
 * Where the template maps objects. A JSON log that puts a plain value at one of these paths
 * (structlog's `"event": "user logged in"`, python-json-logger's `"process": 311`, Docker's
 * `"log": "..."`, `{"http": {"response": "n/a"}}`) would be refused by Elasticsearch;
 * document.ts moves such values aside.
 */
export const ECS_OBJECT_TREE: ObjectTree = objectTree(ECS_PROPERTIES)
export const ECS_OBJECT_ROOTS: ReadonlySet<string> = new Set(Object.keys(ECS_OBJECT_TREE))

function hashed(name: string, body: TemplateBody): estypes.IndicesPutIndexTemplateRequest {
  const configHash = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16)
  return { name, ...body, _meta: { managed_by: 'logwarden', logwarden_version: VERSION, config_hash: configHash } }
}

/** The template for the documents: a data stream, dated indices or one index, as configured. */
export function documentTemplate(cfg: ElasticsearchConfig): estypes.IndicesPutIndexTemplateRequest {
  checkIndexConfig(cfg)
  const body: TemplateBody = {
    index_patterns: [indexWildcard(cfg.index)],
    // Above the built-in `logs-*-*` template (100) so a logs-... data stream gets our mappings.
    priority: 200,
    template: {
      settings: {
        number_of_shards: cfg.number_of_shards,
        number_of_replicas: cfg.number_of_replicas,
        // JSON logs bring their own keys; past the field limit new keys are kept in _source but
        // not mapped, instead of the whole document being refused.
        'mapping.total_fields.ignore_dynamic_beyond_limit': true
      },
      mappings: {
        // A string that looks like a date once must not make the field a date forever.
        date_detection: false,
        dynamic_templates: [{ strings_as_keyword: { match_mapping_type: 'string', mapping: keyword() } }],
        properties: ECS_PROPERTIES
      }
    }
  }
  if (cfg.data_stream) body.data_stream = {}
  return hashed(cfg.template_name, body)
}

/**
 * The dead-letter index: only the envelope is mapped, and the record and the document are
 * stored unindexed, so whatever made the document fail cannot make its dead letter fail.
 */
export function deadLetterTemplate(cfg: ElasticsearchConfig): estypes.IndicesPutIndexTemplateRequest {
  const body: TemplateBody = {
    index_patterns: [cfg.dead_letter_index],
    // Above the document template, in case the dead-letter name also matches its pattern.
    priority: 201,
    template: {
      settings: { number_of_shards: 1, number_of_replicas: cfg.number_of_replicas },
      mappings: {
        dynamic: false,
        properties: {
          '@timestamp': { type: 'date' },
          index: keyword(),
          status: { type: 'short' },
          error: object({ type: keyword(), reason: text }),
          source: object({ id: keyword(), offset: long }),
          raw: { type: 'text', index: false },
          document: { type: 'text', index: false }
        }
      }
    }
  }
  // Named after the index it is for: every agent or `ship` that shares a dead-letter index
  // shares its template, instead of two templates fighting over one pattern.
  return hashed(cfg.dead_letter_index, body)
}

export interface TemplateOutcome {
  name: string
  result: 'created' | 'updated' | 'unchanged'
}

async function install(client: Client, wanted: estypes.IndicesPutIndexTemplateRequest): Promise<TemplateOutcome> {
  const found = await client.indices.getIndexTemplate({ name: wanted.name }, { ignore: [404] })
  const current = found.index_templates?.find((t) => t.name === wanted.name)?.index_template
  if (current !== undefined && current._meta?.config_hash === wanted._meta?.config_hash) {
    return { name: wanted.name, result: 'unchanged' }
  }
  await client.indices.putIndexTemplate(wanted)
  return { name: wanted.name, result: current === undefined ? 'created' : 'updated' }
}

/**
 * Installs (or updates) both templates. Existing indices keep their mappings; the next index
 * (tomorrow's, or the data stream's next backing index) gets the new ones.
 */
export async function setupTemplates(client: Client, cfg: ElasticsearchConfig): Promise<TemplateOutcome[]> {
  return [await install(client, documentTemplate(cfg)), await install(client, deadLetterTemplate(cfg))]
}
