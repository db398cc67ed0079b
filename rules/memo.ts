/**
 * Answers remembered by the text they were computed for. Log fields repeat: the same few hundred
 * paths, user agents and queries make most of the traffic, so a pure function of one of them
 * (a literal scan, a regular expression) is worth computing once per distinct text. Bounded: when
 * full it starts over, which costs one recomputation per text and never grows with the traffic.
 */
/** Texts longer than this are computed every time: long texts (messages, stack traces) rarely repeat and would only fill a memo. */
export const MEMO_TEXT = 512

export class TextMemo<V> {
  private readonly map = new Map<string, V>()

  constructor(private readonly limit = 1024) {}

  get(text: string): V | undefined {
    return this.map.get(text)
  }

  set(text: string, value: V): void {
    if (this.map.size >= this.limit) this.map.clear()
    this.map.set(text, value)
  }
}
