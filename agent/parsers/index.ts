/**
 * The parsers by format name. `auto` is resolved per file with detectFormat before a parser is
 * chosen; timestamps without a zone are read in the input's zone (validate it with
 * isValidTimeZone when loading the configuration).
 */

import type { Parser } from '../entry'
import { parseAccess } from './access'
import type { ParserFormat } from './detect'
import { parseJson } from './json'
import { parsePlain } from './plain'
import { parsePython } from './python'

export { detectFormat } from './detect'
export type { ParserFormat } from './detect'
export { isValidTimeZone } from './time'

const PARSERS: Record<ParserFormat, Parser> = {
  json: parseJson,
  access: parseAccess,
  python: parsePython,
  plain: parsePlain,
}

export function parserFor(format: ParserFormat): Parser {
  return PARSERS[format]
}
