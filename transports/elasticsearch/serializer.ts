/**
 * The client's JSON deserializer, with one shortcut: a bulk answer in which nothing failed.
 * Under the sink's `filter_path` such an answer is `{"errors":false,"items":[{"create":
 * {"status":201}}, ...]}`, a thousand or more items that would each become an object only to be
 * counted. It comes back as `{ errors: false, created: N }` instead (classifyBulkResponse takes
 * both forms); anything else is parsed as before.
 */
import { Serializer } from '@elastic/elasticsearch'

const ALL_CREATED = '{"errors":false,"items":['
const STATUS = '"status":'

/** What `deserialize` gives for a bulk answer without failures. */
export interface AllCreated {
  errors: false
  /** Items in the answer: one status each. */
  created: number
}

export class BulkAwareSerializer extends Serializer {
  override deserialize<T = unknown>(json: string): T {
    if (json.startsWith(ALL_CREATED) && json.endsWith(']}')) {
      let created = 0
      for (let at = json.indexOf(STATUS, ALL_CREATED.length); at !== -1; at = json.indexOf(STATUS, at + STATUS.length)) created++
      return { errors: false, created } satisfies AllCreated as T
    }
    return super.deserialize<T>(json)
  }
}
