/**
 * Text with no known structure: the record is the message. When framing joined a stack trace to
 * its first line (Node's or Java's `    at ...` frames, or a Python traceback), the exception is
 * picked out as `error.*`; a single line costs one indexOf.
 */

import type { FieldValue, ParseContext, ParseResult } from '../entry'
import { exceptionOf, type ExceptionInfo } from './python'

/** `TypeError`, `java.lang.IllegalStateException`, `com.x.Outer$Inner`: a class name as stacks print it. */
const ERROR_TYPE = /^[A-Za-z_$][\w$.]*$/
/** Java prefixes the first line of an uncaught exception with the thread. */
const JAVA_THREAD_PREFIX = /^Exception in thread "[^"]*" /

/**
 * The exception named on a stack's first line: `TypeError: x is not a function` →
 * {type: 'TypeError', message: 'x is not a function'}. A first line that does not start with a
 * class name (a log prefix, free text) gives {}: better no type than a wrong one.
 */
export function stackHeadOf(stack: string): ExceptionInfo {
  let end = stack.indexOf('\n')
  if (end === -1) end = stack.length
  let start = 0
  const thread = JAVA_THREAD_PREFIX.exec(stack)
  if (thread !== null) start = thread[0].length
  const colon = stack.indexOf(':', start)
  if (colon === -1 || colon > end) {
    const type = stack.slice(start, end)
    return ERROR_TYPE.test(type) ? { type } : {}
  }
  const type = stack.slice(start, colon)
  if (!ERROR_TYPE.test(type)) return {}
  const message = stack.slice(stack.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1, end)
  return message.length > 0 ? { type, message } : { type }
}

/** True when the line starting at `i` is a stack frame: indentation, then `at `. */
function isFrameLine(text: string, i: number): boolean {
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c !== 32 && c !== 9) break
    i++
  }
  return text.startsWith('at ', i)
}

export function parsePlain(text: string, _ctx: ParseContext): ParseResult {
  const fields: Record<string, FieldValue> = { message: text }
  const firstEnd = text.indexOf('\n')
  if (firstEnd === -1) return { fields }
  if (isFrameLine(text, firstEnd + 1)) {
    fields['error.stack_trace'] = text
    const head = stackHeadOf(text)
    if (head.type !== undefined) fields['error.type'] = head.type
    if (head.message !== undefined) fields['error.message'] = head.message
    return { fields }
  }
  const traceback = text.indexOf('Traceback (most recent call last):')
  if (traceback !== -1) {
    const stack = text.slice(traceback).trimEnd()
    fields['error.stack_trace'] = stack
    const exception = exceptionOf(stack)
    if (exception.type !== undefined) fields['error.type'] = exception.type
    if (exception.message !== undefined) fields['error.message'] = exception.message
  }
  return { fields }
}
