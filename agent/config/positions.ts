/**
 * From a place in the data (a JSON pointer as ajv reports it, or path segments) back to the line and
 * column in the YAML file, so every configuration error can say `file:line:column`. Works on the
 * `yaml` package's document tree, whose nodes keep their source ranges.
 */
import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type Range } from 'yaml'

export interface Position {
  /** 1-based */
  line: number
  /** 1-based */
  column: number
}

export type PathSegment = string | number

/** What to point at: the key (`hots:` for an unknown key) or the value after it. */
export type Target = 'key' | 'value'

/** `/inputs/0/paths` → ['inputs', '0', 'paths'] (RFC 6901 unescaping). */
export function pointerToPath(pointer: string): string[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** ['inputs', 0, 'paths'] → `/inputs/0/paths`, the form ajv's `instancePath` has. */
export function pathToPointer(path: readonly PathSegment[]): string {
  return path.map((segment) => '/' + String(segment).replace(/~/g, '~0').replace(/\//g, '~1')).join('')
}

/** ['inputs', '0', 'paths'] → `inputs[0].paths`: how a user names an option. */
export function formatKeyPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const segment of path) {
    const text = String(segment)
    if (/^\d+$/.test(text)) out += `[${text}]`
    else out += out === '' ? text : `.${text}`
  }
  return out
}

export class SourceMap {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  at(offset: number): Position {
    const { line, col } = this.lines.linePos(offset)
    return { line, column: col }
  }

  /**
   * Where the node at `path` is written; aliases are followed, and a value reached through one is
   * located at the alias. A path that leads nowhere (a missing key) resolves to the deepest
   * ancestor that exists, whose key is what a reader would look at.
   */
  locate(path: readonly PathSegment[], target: Target = 'value'): Position {
    const contents = this.doc.contents
    let best: Position = contents?.range ? this.at(contents.range[0]) : { line: 1, column: 1 }
    let node: unknown = contents
    for (let i = 0; i < path.length; i++) {
      node = this.resolve(node)
      let next: unknown
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(path[i]))
        if (pair === undefined) return best
        best = this.keyPosition(pair) ?? best
        if (i === path.length - 1 && target === 'key') return best
        next = pair.value
      } else if (isSeq(node)) {
        next = node.items[Number(path[i])]
        if (next === undefined) return best
      } else {
        return best
      }
      if (!this.hasText(next)) return best
      best = this.at(next.range[0])
      node = next
    }
    return best
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node
  }

  private keyPosition(pair: Pair): Position | undefined {
    return this.hasText(pair.key) ? this.at(pair.key.range[0]) : undefined
  }

  /** An empty value (`service:` with nothing after it) has no text of its own to point at. */
  private hasText(node: unknown): node is Node & { range: Range } {
    if (!isNode(node) || node.range == null) return false
    return node.range[1] > node.range[0] || !isScalar(node) || node.value !== null
  }
}

/** The value at `where` in plain parsed data (undefined when the path leads nowhere). */
export function valueAt(data: unknown, where: readonly PathSegment[]): unknown {
  let node = data
  for (const segment of where) {
    if (typeof node !== 'object' || node === null) return undefined
    node = (node as Record<string, unknown>)[String(segment)]
  }
  return node
}
