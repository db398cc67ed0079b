/**
 * A field of a document's `_source` by its dotted ECS path. Documents hold derived fields as
 * flat dotted keys (`"http.response.status_code": 200`) while JSON logs keep their own nesting,
 * and Elasticsearch reads both the same way; so does this.
 */
export function sourceField(source: Record<string, unknown>, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(source, path)) return source[path]
  for (let dot = path.indexOf('.'); dot > 0; dot = path.indexOf('.', dot + 1)) {
    const inner = source[path.slice(0, dot)]
    if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
      const found = sourceField(inner as Record<string, unknown>, path.slice(dot + 1))
      if (found !== undefined) return found
    }
  }
  return undefined
}
