/**
 * Tracks which entries of one source Elasticsearch has acknowledged, so the checkpoint offset
 * only ever moves past bytes whose every entry is durable (invariant 1).
 *
 * Entries are added in source order; acknowledgements arrive in any order (batches run
 * concurrently and only failed items are retried). The committed offset is the start of the
 * oldest entry still unacknowledged, or — with nothing outstanding — the caller's read position.
 * Storage is two growable typed arrays and a head index: no per-entry objects.
 */
export class AckTracker {
  private offsets = new Float64Array(1024)
  private acked = new Uint8Array(1024)
  private head = 0
  private tail = 0

  get outstanding(): number {
    return this.tail - this.head
  }

  add(offset: number): void {
    if (this.tail === this.offsets.length) this.grow()
    this.offsets[this.tail] = offset
    this.acked[this.tail] = 0
    this.tail++
  }

  /** Marks the entry at `offset` acknowledged. Unknown offsets (already acknowledged) are ignored. */
  ack(offset: number): void {
    const i = this.find(offset)
    if (i < 0) return
    this.acked[i] = 1
    while (this.head < this.tail && this.acked[this.head] === 1) this.head++
    if (this.head === this.tail) { this.head = 0; this.tail = 0 }
  }

  /** The offset before which everything is acknowledged, or `undefined` when nothing is outstanding. */
  firstUnacked(): number | undefined {
    return this.head < this.tail ? this.offsets[this.head] : undefined
  }

  private find(offset: number): number {
    let lo = this.head
    let hi = this.tail - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const v = this.offsets[mid]!
      if (v === offset) return mid
      if (v < offset) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }

  private grow(): void {
    const live = this.tail - this.head
    // Compact first; grow only when the live part really fills the buffer.
    const size = live * 2 > this.offsets.length ? this.offsets.length * 2 : this.offsets.length
    const offsets = new Float64Array(size)
    const acked = new Uint8Array(size)
    offsets.set(this.offsets.subarray(this.head, this.tail))
    acked.set(this.acked.subarray(this.head, this.tail))
    this.offsets = offsets
    this.acked = acked
    this.head = 0
    this.tail = live
  }
}
