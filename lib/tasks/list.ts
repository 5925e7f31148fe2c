/**
 * Tiny program-like list transformations (MBPP-shaped): reverse, sort or
 * dedupe a short list of digits. Exact match on the output list.
 */
import { Rng, randInt, pick } from './rng';

const KINDS = ['reverse', 'sort', 'dedupe'] as const;

export function makeList(rng: Rng): { prompt: string; reference: string; answer: string } {
  const kind = pick(rng, KINDS);
  const n = randInt(rng, 3, 7);
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(randInt(rng, 0, 9));
  if (kind === 'dedupe' && new Set(xs).size === xs.length && n > 1) xs[randInt(rng, 1, n - 1)] = xs[0];
  let out: number[];
  if (kind === 'reverse') out = [...xs].reverse();
  else if (kind === 'sort') out = [...xs].sort((a, b) => a - b);
  else out = xs.filter((v, i) => xs.indexOf(v) === i);
  const verb = kind === 'reverse' ? 'Reverse' : kind === 'sort' ? 'Sort' : 'Remove duplicates from';
  const fmt = (v: number[]) => `[${v.join(', ')}]`;
  return { prompt: `${verb} the list ${fmt(xs)}.`, reference: `#### ${fmt(out)}`, answer: fmt(out).replace(/\s+/g, '') };
}
