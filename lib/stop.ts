// Stop sequences (option `stop`) over the text decoded so far: where one first occurs,
// how much of a streamed text's tail must wait because a later block could complete one,
// and how many tokens the completion took up to it (the usage an API reports).

export interface StopHit {
  /** UTF-16 index in the text where the stop sequence starts: the text ends there. */
  index: number;
  sequence: string;
}

/** The earliest occurrence of any stop sequence (at equal starts, the first listed), or null. */
export function findStop(text: string, stops: readonly string[]): StopHit | null {
  let hit: StopHit | null = null;
  for (const sequence of stops) {
    const index = text.indexOf(sequence);
    if (index >= 0 && (hit === null || index < hit.index)) hit = { index, sequence };
  }
  return hit;
}

/**
 * Characters at the end of `text` that are the start of some stop sequence (its longest
 * such suffix, shorter than the sequence): a stream must hold them back until more text
 * shows whether the sequence completes.
 */
export function stopPrefixAtEnd(text: string, stops: readonly string[]): number {
  let longest = 0;
  for (const sequence of stops) {
    for (let n = Math.min(sequence.length - 1, text.length); n > longest; n--) {
      if (text.endsWith(sequence.slice(0, n))) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

/**
 * The fewest leading tokens whose text contains a stop sequence, found by bisection over
 * decodes of prefixes (a prefix's text only grows with more tokens); `tokens.length` when
 * no shorter prefix does.
 */
export async function tokensThroughStop(
  tokens: readonly number[],
  stops: readonly string[],
  decode: (ids: readonly number[]) => Promise<string>,
): Promise<number> {
  let lo = 1;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (findStop(await decode(tokens.slice(0, mid)), stops) !== null) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}
