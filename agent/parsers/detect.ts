/**
 * Picks a file's format from its first lines when the input says `format: auto`. Runs once per
 * file, so it simply tries the parsers on each sample line and counts.
 */

import type { InputFormat } from '../config/types'
import { parseAccess } from './access'
import { isRecord } from './fields'
import { parsePython } from './python'

/** A format a parser exists for: what `auto` resolves to. */
export type ParserFormat = Exclude<InputFormat, 'auto'>

/**
 * Lines that continue a record rather than start one: stack frames and the exception and
 * chaining lines of Python and Java traces. They say nothing about the format of the records
 * and, in a file full of tracebacks, would otherwise outvote the record lines.
 */
const CONTINUATION = /^(?:\s|Traceback \(most recent call last\)|During handling of the above exception|The above exception was the direct cause|Caused by: |[\w$.]+(?:Error|Exception|Exit|Interrupt|Warning|Throwable)(?::|$))/

const UTC = { timezone: 'UTC' }

function classify(line: string): ParserFormat | undefined {
  if (line.length === 0 || CONTINUATION.test(line)) return undefined
  if (line.charCodeAt(0) === 123) { // '{'
    try {
      if (isRecord(JSON.parse(line))) return 'json'
    } catch {
      // Not JSON after all: one of the text formats may still match.
    }
  }
  if (parseAccess(line, UTC).error === undefined) return 'access'
  if (parsePython(line, UTC).error === undefined) return 'python'
  return 'plain'
}

/**
 * The format most of the sample's record lines are in. A structured format wins over plain when
 * it matches at least a third of them: plain lines in a structured file are startup banners and
 * stray prints, while a structured format matching that often by accident does not happen.
 * Ties between structured formats go to json, then access, then python. No record lines: plain.
 */
export function detectFormat(sampleLines: string[]): ParserFormat {
  let json = 0
  let access = 0
  let python = 0
  let plain = 0
  for (const line of sampleLines) {
    switch (classify(line)) {
      case 'json': json++; break
      case 'access': access++; break
      case 'python': python++; break
      case 'plain': plain++; break
      case undefined: break
    }
  }
  const best = Math.max(json, access, python)
  if (best === 0 || best * 2 < plain) return 'plain'
  if (json === best) return 'json'
  if (access === best) return 'access'
  return 'python'
}
