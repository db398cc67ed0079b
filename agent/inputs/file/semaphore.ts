/** A counting semaphore: caps open file descriptors (`limits.max_open_files`). Waiters are served in order. */
export class Semaphore {
  private waiters: Array<() => void> = []
  constructor(private free: number) {}

  async acquire(): Promise<void> {
    if (this.free > 0) { this.free--; return }
    await new Promise<void>((resolve) => this.waiters.push(resolve))
  }

  release(): void {
    const next = this.waiters.shift()
    if (next) next()
    else this.free++
  }
}
