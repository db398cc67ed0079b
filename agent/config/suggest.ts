/**
 * "Did you mean …?" for misspelt keys, choices and zone names. Candidate lists are small (the keys
 * allowed at one place, an enum, ~420 time zones), so a plain dynamic-programming distance is
 * plenty fast.
 */

/**
 * Optimal-string-alignment distance: Levenshtein plus the swap of two adjacent characters as one
 * edit, because swapped letters ("hsots") are the most common typo.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0
  let twoBack: number[] = []
  let oneBack: number[] = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(oneBack[j] + 1, row[j - 1] + 1, oneBack[j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, twoBack[j - 2] + 1)
      }
      row.push(best)
    }
    twoBack = oneBack
    oneBack = row
  }
  return oneBack[b.length]
}

/** Case and `-` (or a space) for `_` are not what makes a key wrong, so they cost nothing. */
function normalise(word: string): string {
  return word.toLowerCase().replace(/[-\s]/g, '_')
}

/** How many edits still look like a typo rather than a different word. */
function tolerance(length: number): number {
  if (length <= 3) return 1
  if (length <= 6) return 2
  return 3
}

/** The candidate closest to `word`, when it is close enough to be what was meant. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const target = normalise(word)
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(target, normalise(candidate))
    if (distance < bestDistance && distance <= tolerance(Math.max(target.length, candidate.length))) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}
