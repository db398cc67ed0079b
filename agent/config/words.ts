/** How schema types and choices are named in messages to people (config and rule files alike). */

export const TYPE_WORDS: Record<string, string> = {
  string: 'text',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  null: 'nothing',
}

/** `a, b or c`. */
export function listWords(words: string[]): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`
}

/** `at least 5`, `less than 1`: a JSON Schema bound in words. */
export function boundWords(keyword: string, limit: unknown): string {
  const bound = String(limit)
  switch (keyword) {
    case 'minimum': return `at least ${bound}`
    case 'maximum': return `at most ${bound}`
    case 'exclusiveMinimum': return `more than ${bound}`
    default: return `less than ${bound}`
  }
}
