import { open } from 'node:fs/promises'

/**
 * For `start_position: end`: the offset just after the last newline before `size`, so a line
 * being written at startup is read whole rather than from its middle.
 */
export async function lastLineStart(path: string, size: number): Promise<number> {
  if (size === 0) return 0
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(64 * 1024)
    let end = size
    while (end > 0) {
      const start = Math.max(0, end - buf.length)
      const { bytesRead } = await fh.read(buf, 0, end - start, start)
      const nl = buf.subarray(0, bytesRead).lastIndexOf(10)
      if (nl >= 0) return start + nl + 1
      end = start
    }
    return 0
  } finally {
    await fh.close()
  }
}
