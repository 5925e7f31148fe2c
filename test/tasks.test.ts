// The task suite behind the shipped model and the bench: references must be right (the
// model learns them), the held-out split must stay out of training, the scorer must read
// answers the way GSM8K scorers do.
import { extractAnswer, makeHeldOut, makeRng, scoreAnswer, trainStream, HELD_OUT_POOL, TaskItem } from '../lib/tasks';
import { makeArithmetic } from '../lib/tasks/arithmetic';
import { makeList } from '../lib/tasks/list';

/** Re-derives an arithmetic reference: every line `a op b = r` holds and the chain ends in the answer. */
function checkArithmetic(item: TaskItem): void {
  const lines = item.reference.split('\n');
  const last = lines.pop() as string;
  expect(last).toBe(`#### ${item.answer}`);
  expect(lines.length).toBeGreaterThanOrEqual(1);
  expect(lines.length).toBeLessThanOrEqual(3);
  let value: number | null = null;
  for (const l of lines) {
    const m = /^(\d+)([+\-*])(\d+)=(\d+)$/.exec(l);
    if (!m) throw new Error(`malformed line ${JSON.stringify(l)} in ${item.id}`);
    const [a, b, r] = [Number(m[1]), Number(m[3]), Number(m[4])];
    expect(r).toBe(m[2] === '+' ? a + b : m[2] === '-' ? a - b : a * b);
    for (const n of [a, b, r]) expect(n).toBeLessThanOrEqual(99);
    expect(r).toBeGreaterThanOrEqual(0);
    value = r;
  }
  expect(String(value)).toBe(item.answer);
  // the left operand of the first line is a number of the prompt (nothing to carry yet)
  const promptNumbers = new Set(item.prompt.match(/\d+/g));
  const first = /^(\d+)[+\-*](\d+)=/.exec(lines[0]) as RegExpExecArray;
  expect(promptNumbers.has(first[1])).toBe(true);
}

function checkList(item: TaskItem): void {
  const m = /^(Reverse|Sort|Remove duplicates from) the list \[([\d, ]*)\]\.$/.exec(item.prompt);
  if (!m) throw new Error(`malformed list prompt ${item.prompt}`);
  const xs = m[2].split(', ').map(Number);
  const want = m[1] === 'Reverse' ? [...xs].reverse() : m[1] === 'Sort' ? [...xs].sort((a, b) => a - b)
    : xs.filter((v, i) => xs.indexOf(v) === i);
  expect(item.answer).toBe(`[${want.join(',')}]`);
  expect(extractAnswer('list', item.reference)).toBe(item.answer);
}

test('generators are deterministic for a seed and differ across seeds', () => {
  const a = Array.from({ length: 20 }, ((r) => () => makeArithmetic(r))(makeRng(5)));
  const b = Array.from({ length: 20 }, ((r) => () => makeArithmetic(r))(makeRng(5)));
  const c = Array.from({ length: 20 }, ((r) => () => makeArithmetic(r))(makeRng(6)));
  expect(b).toEqual(a);
  expect(c).not.toEqual(a);
  const l1 = makeList(makeRng(9)), l2 = makeList(makeRng(9));
  expect(l2).toEqual(l1);
});

test('every held-out reference is arithmetically right and ends in its answer', () => {
  const items = makeHeldOut('arithmetic', HELD_OUT_POOL);
  items.forEach(checkArithmetic);
  expect(new Set(items.map((t) => t.prompt)).size).toBe(HELD_OUT_POOL);
  const ops = items.map((t) => t.reference.split('\n').length - 1);
  for (const n of [1, 2, 3]) expect(ops.filter((k) => k === n).length).toBeGreaterThan(100);
  makeHeldOut('list', HELD_OUT_POOL).forEach(checkList);
});

test('the training stream never yields a held-out prompt and mixes tasks by weight', () => {
  const held = new Set([...makeHeldOut('arithmetic', HELD_OUT_POOL), ...makeHeldOut('list', HELD_OUT_POOL)].map((t) => t.prompt));
  const stream = trainStream(1, { arithmetic: 0.75, list: 0.25 });
  let lists = 0;
  for (let i = 0; i < 6000; i++) {
    const item = stream.next().value as TaskItem;
    expect(held.has(item.prompt)).toBe(false);
    if (item.task === 'list') { lists++; checkList(item); } else checkArithmetic(item);
  }
  expect(lists / 6000).toBeGreaterThan(0.22);
  expect(lists / 6000).toBeLessThan(0.28);
});

test('makeHeldOut is a prefix of one fixed pool', () => {
  expect(makeHeldOut('arithmetic', 10)).toEqual(makeHeldOut('arithmetic', 200).slice(0, 10));
  expect(() => makeHeldOut('arithmetic', HELD_OUT_POOL + 1)).toThrow(RangeError);
});

test.each([
  ['12+7=19\n#### 19', '19', true],
  ['#### 1,234', '1234', true],
  ['#### $42.', '42', true],
  ['#### 41\n#### 42', '42', true], // the last #### wins
  ['so the answer is 42', '42', true], // no ####: last number
  ['#### 43', '42', false],
  ['3+4=7\n#### ', '7', true], // empty final line: falls back to the last number
  ['no number at all', '42', false],
  ['#### 042', '42', true], // compared as numbers
])('arithmetic scorer: %j vs %s', (text, answer, ok) => {
  const item: TaskItem = { id: 'x', task: 'arithmetic', prompt: '', reference: '', answer };
  expect(scoreAnswer('arithmetic', item, text)).toBe(ok);
});

test.each([
  ['#### [3, 2, 1]', '[3,2,1]', true],
  ['#### [1,2,3]', '[3,2,1]', false],
  ['the result is [3, 2, 1]', '[3,2,1]', true],
  ['####', '[1]', false],
])('list scorer: %j vs %s', (text, answer, ok) => {
  const item: TaskItem = { id: 'x', task: 'list', prompt: '', reference: '', answer };
  expect(scoreAnswer('list', item, text)).toBe(ok);
});
