/** Seeded, deterministic task suite with a fixed held-out split. */
import { Rng, makeRng } from './rng';
import { TaskName, TaskItem } from './types';
import { makeArithmetic } from './arithmetic';
import { makeList } from './list';

export { Rng, makeRng } from './rng';
export { TaskName, TaskItem } from './types';
export { extractAnswer, scoreAnswer } from './score';

export const TASKS: readonly TaskName[] = ['arithmetic', 'list'];
const HELD_OUT_SEED: Record<TaskName, number> = { arithmetic: 20240917, list: 777001 };
/** Size of the held-out pool that training excludes; makeHeldOut(task, n) is its first n items. */
export const HELD_OUT_POOL = 1000;

function gen(task: TaskName, rng: Rng) {
  return task === 'arithmetic' ? makeArithmetic(rng) : makeList(rng);
}

const cache = new Map<TaskName, TaskItem[]>();

function pool(task: TaskName): TaskItem[] {
  let items = cache.get(task);
  if (items) return items;
  const rng = makeRng(HELD_OUT_SEED[task]);
  const seen = new Set<string>();
  items = [];
  while (items.length < HELD_OUT_POOL) {
    const g = gen(task, rng);
    if (seen.has(g.prompt)) continue;
    seen.add(g.prompt);
    items.push({ id: `${task}-heldout-${items.length}`, task, ...g });
  }
  cache.set(task, items);
  return items;
}

/** The first n items (n <= 1000) of the fixed held-out split of `task`. */
export function makeHeldOut(task: TaskName, n: number): TaskItem[] {
  if (!(n >= 0 && n <= HELD_OUT_POOL)) throw new RangeError(`makeHeldOut: n must be in [0, ${HELD_OUT_POOL}]`);
  return pool(task).slice(0, n);
}

const heldOutPrompts = new Map<TaskName, Set<string>>();

export function isHeldOutPrompt(task: TaskName, prompt: string): boolean {
  let s = heldOutPrompts.get(task);
  if (!s) {
    s = new Set(pool(task).map((t) => t.prompt));
    heldOutPrompts.set(task, s);
  }
  return s.has(prompt);
}

/** A fresh training item; never one whose prompt is in the held-out pool. */
export function makeTrainItem(task: TaskName, rng: Rng, index = 0): TaskItem {
  for (;;) {
    const g = gen(task, rng);
    if (!isHeldOutPrompt(task, g.prompt)) return { id: `${task}-train-${index}`, task, ...g };
  }
}

/** Endless training stream drawing `task` with the given weights. */
export function* trainStream(seed: number, weights: Partial<Record<TaskName, number>> = { arithmetic: 1 }): Generator<TaskItem> {
  const rng = makeRng(seed);
  const entries = Object.entries(weights) as [TaskName, number][];
  const total = entries.reduce((a, [, w]) => a + w, 0);
  for (let i = 0; ; i++) {
    let u = rng() * total;
    let task = entries[entries.length - 1][0];
    for (const [t, w] of entries) { if (u < w) { task = t; break; } u -= w; }
    yield makeTrainItem(task, rng, i);
  }
}
