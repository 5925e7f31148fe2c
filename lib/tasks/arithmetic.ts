/**
 * Grade-school arithmetic word problems (GSM8K-shaped): 1-3 operations,
 * reference = one line per operation (`12+7=19`) then `#### 19`.
 *
 * Numbers are kept small (operands up to 20, every value up to 99) so that a
 * model of two million parameters trained for about an hour on a CPU can learn
 * the task: the shape is GSM8K's, the arithmetic is that of a miniature.
 */
import { Rng, randInt, pick } from './rng';

const PEOPLE: ReadonlyArray<[string, string]> = [
  ['Ann', 'She'], ['Ben', 'He'], ['Cal', 'He'], ['Dee', 'She'], ['Eva', 'She'],
  ['Finn', 'He'], ['Gus', 'He'], ['Ivy', 'She'], ['Jay', 'He'], ['Kim', 'She'],
  ['Leo', 'He'], ['Mia', 'She'], ['Ned', 'He'], ['Ola', 'She'], ['Raj', 'He'],
  ['Sam', 'He'], ['Tia', 'She'], ['Zoe', 'She'],
];
const ITEMS = [
  'apples', 'pens', 'cards', 'stamps', 'books', 'eggs', 'coins', 'shells',
  'rocks', 'cups', 'toys', 'pears', 'beads', 'nuts',
];
const CONTAINERS = ['bags', 'boxes', 'packs', 'jars'];
const MAX = 99;
const OPERAND = 20;

interface Op { lines: string[]; text: string; value: number }

function line(a: number, op: string, b: number, r: number): string {
  return `${a}${op}${b}=${r}`;
}

function start(rng: Rng, name: string, item: string): Op {
  if (rng() < 0.25) {
    const k = randInt(rng, 2, 5), b = randInt(rng, 2, 9);
    const c = pick(rng, CONTAINERS);
    return { lines: [line(k, '*', b, k * b)], text: `${name} has ${k} ${c} of ${b} ${item}.`, value: k * b };
  }
  const a = randInt(rng, 2, 30);
  return { lines: [], text: `${name} has ${a} ${item}.`, value: a };
}

function step(rng: Rng, x: number, he: string, item: string, opsLeft: number): Op | null {
  const r = rng();
  if (r < 0.35 && x < MAX) {
    const b = randInt(rng, 1, Math.min(OPERAND, MAX - x));
    const verb = pick(rng, ['buys', 'finds', 'gets', 'wins']);
    return { lines: [line(x, '+', b, x + b)], text: `${he} ${verb} ${b} more.`, value: x + b };
  }
  if (r < 0.7 && x > 1) {
    const b = randInt(rng, 1, Math.min(OPERAND, x - 1));
    const verb = pick(rng, ['gives away', 'loses', 'sells', 'uses']);
    return { lines: [line(x, '-', b, x - b)], text: `${he} ${verb} ${b}.`, value: x - b };
  }
  if (r < 0.85 && x <= 30 && x >= 2) {
    const k = randInt(rng, 2, Math.min(3, Math.floor(MAX / x)));
    const text = k === 2 ? `${he} doubles them.` : k === 3 ? `${he} triples them.` : `${he} gets ${k} times as many.`;
    return { lines: [line(x, '*', k, x * k)], text, value: x * k };
  }
  if (opsLeft >= 2) {
    const k = randInt(rng, 2, 5), b = randInt(rng, 2, 9);
    if (x + k * b > MAX) return null;
    const c = pick(rng, CONTAINERS);
    return {
      lines: [line(k, '*', b, k * b), line(x, '+', k * b, x + k * b)],
      text: `${he} buys ${k} ${c} of ${b}.`, value: x + k * b,
    };
  }
  return null;
}

export function makeArithmetic(rng: Rng): { prompt: string; reference: string; answer: string } {
  for (;;) {
    const nOps = randInt(rng, 1, 3);
    const [name, he] = pick(rng, PEOPLE);
    const item = pick(rng, ITEMS);
    const first = start(rng, name, item);
    const lines = [...first.lines];
    const texts = [first.text];
    let x = first.value;
    let guard = 0;
    while (lines.length < nOps && guard++ < 20) {
      const s = step(rng, x, he, item, nOps - lines.length);
      if (!s) continue;
      lines.push(...s.lines); texts.push(s.text); x = s.value;
    }
    if (lines.length !== nOps) continue;
    const pron = he === 'He' ? 'he' : 'she';
    const q = pick(rng, [`How many ${item} now?`, `How many ${item} does ${pron} have?`]);
    texts.push(q);
    return { prompt: texts.join(' '), reference: `${lines.join('\n')}\n#### ${x}`, answer: String(x) };
  }
}
