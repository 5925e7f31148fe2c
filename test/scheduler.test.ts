// Continuous batching (lib/scheduler.ts): first the scheduling rules against a fake batch
// forward that records what it was asked, then real models: concurrent calls batched must
// give exactly the tokens each gives alone, for every strategy and mixed in one batch.
import { loadModel } from '../lib';
import { native } from '../lib/native';
import { STRATEGIES } from '../lib/options';
import { QueueFullError, Scheduler, Sequence } from '../lib/scheduler';
import type { DiffusionModel, GenerateOptions, GenerateResult, StrategyName } from '../types';
import type { NativeBatchItem, NativeForwardRequest, NativeForwardResult, NativeSession } from '../types/native';
import { makeTempDir, removeDir } from './helpers/checkpoint';
import { writeDecodingLlada } from './helpers/fixtures';

// ---------------------------------------------------------------------------
// Scheduling rules, with a fake forward: result token = first fed token + 1.

const fakeSession = (name: string): NativeSession => ({ capacity: 1, forward: () => Promise.reject(new Error(name)), dispose() {} });

function request(tokens: number[]): NativeForwardRequest {
  return {
    tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens.keys()), cacheAttend: 0, attendSelf: true,
    predictRows: Int32Array.of(0), confidence: 0, temperature: 0, seed: 0, noiseCounter: 0, returnLogits: false,
  };
}

class FakeBatch {
  readonly calls: NativeBatchItem[][] = [];
  failWhen: (item: NativeBatchItem) => boolean = () => false;
  readonly forward = async (items: NativeBatchItem[]): Promise<NativeForwardResult[]> => {
    this.calls.push(items);
    await new Promise((r) => setTimeout(r, 1));
    if (items.some(this.failWhen)) throw new Error('bad request in batch');
    return items.map((it) => ({ tokenIds: Int32Array.of(it.request.tokens[0] + 1), confidences: Float32Array.of(1) }));
  };
  sizes(): number[] {
    return this.calls.map((c) => c.length);
  }
}

/** Lets the scheduler finish its bookkeeping of the batch just resolved (no batch in flight). */
const settled = (): Promise<void> => new Promise((r) => setImmediate(r));

/** `steps` forwards in a row, each feeding the previous result: what a decode loop does. */
async function runSteps(seq: Sequence, session: NativeSession, start: number, steps: number, rows = 1): Promise<number> {
  let t = start;
  for (let i = 0; i < steps; i++) {
    const r = await seq.forward(session, request(Array(rows).fill(t)));
    t = r.tokenIds[0];
  }
  seq.release();
  return t;
}

describe('scheduling rules', () => {
  test('lockstep sequences share one forward per step', async () => {
    const fake = new FakeBatch();
    const s = new Scheduler(fake.forward, { maxBatch: 4, maxBatchRows: 100, maxQueue: 10 });
    const seqs = await Promise.all([s.admit(), s.admit(), s.admit()]);
    const ends = await Promise.all(seqs.map((q, i) => runSteps(q, fakeSession(`s${i}`), 10 * i, 5)));
    expect(ends).toEqual([5, 15, 25]);
    expect(fake.sizes()).toEqual([3, 3, 3, 3, 3]);
    expect(s.stats()).toMatchObject({ batches: 5, sequenceForwards: 15, largestBatch: 3, active: 0, batchSizeCounts: [0, 0, 0, 5] });
  });

  test('a sequence away with its consumer does not hold up the batch; back, it joins the next', async () => {
    const fake = new FakeBatch();
    const s = new Scheduler(fake.forward, { maxBatch: 4, maxBatchRows: 100, maxQueue: 10 });
    const [a, b] = await Promise.all([s.admit(), s.admit()]);
    const sa = fakeSession('a'), sb = fakeSession('b');
    b.away();
    const alone = a.forward(sa, request([1]));
    // Issued within submit(): the only other active sequence said no step is coming.
    expect(fake.calls.length).toBe(1);
    expect((await alone).tokenIds[0]).toBe(2);
    await settled();
    b.back();
    const [ra, rb] = await Promise.all([a.forward(sa, request([2])), b.forward(sb, request([7]))]);
    expect([ra.tokenIds[0], rb.tokenIds[0]]).toEqual([3, 8]);
    expect(fake.sizes()).toEqual([1, 2]);
    await settled();
    // Without away() a step waits one macrotask for the others before it runs alone.
    const waits = a.forward(sa, request([3]));
    expect(fake.calls.length).toBe(2);
    await waits;
    expect(fake.sizes()).toEqual([1, 2, 1]);
    // Leaving while away is allowed; the count of away sequences does not leak.
    b.away();
    b.release();
    a.release();
    expect(s.stats()).toMatchObject({ active: 0 });
    await settled();
    const [c, d] = await Promise.all([s.admit(), s.admit()]);
    const cd = Promise.all([c.forward(sa, request([4])), d.forward(sb, request([9]))]);
    expect(fake.calls.length).toBe(4);
    await cd;
    expect(fake.sizes()).toEqual([1, 2, 1, 2]);
    c.release();
    d.release();
  });

  test('beyond maxBatch calls wait in FIFO order; a full queue refuses at once', async () => {
    const fake = new FakeBatch();
    const s = new Scheduler(fake.forward, { maxBatch: 1, maxBatchRows: 100, maxQueue: 2 });
    const first = await s.admit();
    const order: string[] = [];
    const second = s.admit().then((q) => { order.push('second'); return q; });
    const third = s.admit().then((q) => { order.push('third'); return q; });
    await expect(s.admit()).rejects.toBeInstanceOf(QueueFullError);
    expect(s.stats()).toMatchObject({ active: 1, queued: 2 });
    await runSteps(first, fakeSession('a'), 0, 2);
    await runSteps(await second, fakeSession('b'), 0, 2);
    await runSteps(await third, fakeSession('c'), 0, 2);
    expect(order).toEqual(['second', 'third']);
    expect(s.stats().largestBatch).toBe(1);
  });

  test('an abort while queued leaves the queue and disturbs no one', async () => {
    const fake = new FakeBatch();
    const s = new Scheduler(fake.forward, { maxBatch: 1, maxBatchRows: 100, maxQueue: 5 });
    const running = await s.admit();
    const ac = new AbortController();
    const aborted = s.admit(ac.signal);
    const next = s.admit();
    ac.abort(new Error('client went away'));
    await expect(aborted).rejects.toThrow('client went away');
    expect(s.stats().queued).toBe(1);
    expect(await runSteps(running, fakeSession('a'), 0, 3)).toBe(3);
    expect(await runSteps(await next, fakeSession('b'), 7, 3)).toBe(10);
  });

  test('maxBatchRows splits the waiting steps, oldest first, and never starves one', async () => {
    const fake = new FakeBatch();
    const s = new Scheduler(fake.forward, { maxBatch: 4, maxBatchRows: 10, maxQueue: 10 });
    const seqs = await Promise.all([s.admit(), s.admit(), s.admit()]);
    // 6 rows each: two never fit in one forward of 10 rows, so each forward runs one step.
    const ends = await Promise.all(seqs.map((q, i) => runSteps(q, fakeSession(`s${i}`), 100 * i, 3, 6)));
    expect(ends).toEqual([3, 103, 203]);
    expect(fake.sizes().every((n) => n === 1)).toBe(true);
    expect(fake.calls).toHaveLength(9);
    expect(s.stats().largestBatchRows).toBe(6);
    // Round robin: every sequence's k-th step runs before any sequence's (k+1)-th.
    const starts = fake.calls.map((c) => Math.floor(c[0].request.tokens[0] / 100));
    expect(starts.slice(0, 3).sort()).toEqual([0, 1, 2]);
    expect(starts.slice(3, 6).sort()).toEqual([0, 1, 2]);
  });

  test('a failing batch is rerun item by item: only the bad request fails', async () => {
    const fake = new FakeBatch();
    fake.failWhen = (it) => it.request.tokens[0] === 666;
    const s = new Scheduler(fake.forward, { maxBatch: 3, maxBatchRows: 100, maxQueue: 0 });
    const [a, b, c] = await Promise.all([s.admit(), s.admit(), s.admit()]);
    const results = await Promise.allSettled([
      a.forward(fakeSession('a'), request([1])),
      b.forward(fakeSession('b'), request([666])),
      c.forward(fakeSession('c'), request([3])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[0] as PromiseFulfilledResult<NativeForwardResult>).value.tokenIds[0]).toBe(2);
    expect(fake.sizes()).toEqual([3, 1, 1, 1]);
  });

  test('close fails the waiting calls and refuses new ones', async () => {
    const s = new Scheduler(new FakeBatch().forward, { maxBatch: 1, maxBatchRows: 100, maxQueue: 5 });
    await s.admit();
    const waiting = s.admit();
    s.close(new Error('disposed'));
    await expect(waiting).rejects.toThrow('disposed');
    await expect(s.admit()).rejects.toThrow('disposed');
  });
});

// ---------------------------------------------------------------------------
// Real models: batched == alone, token for token.

const tokensOf = (r: GenerateResult) => Array.from(r.tokens);

/** Small per-strategy settings (vanilla's fixed schedule: 2 tokens per step). */
function optionsFor(strategy: StrategyName, genLength: number, blockLength: number): GenerateOptions {
  const o: GenerateOptions = { strategy, genLength, blockLength };
  if (strategy === 'vanilla') o.steps = genLength / 2;
  if (strategy === 'streaming') o.window = 8;
  return o;
}

/** Each job alone (one after the other), then all at once; returns both and the scheduler delta. */
async function aloneThenTogether(model: DiffusionModel, jobs: Array<[string | number[], GenerateOptions]>) {
  const alone: GenerateResult[] = [];
  for (const [p, o] of jobs) alone.push(await model.generate(p, o));
  const before = model.schedulerStats();
  const together = await Promise.all(jobs.map(([p, o]) => model.generate(p, o)));
  const after = model.schedulerStats();
  return {
    alone, together,
    batches: after.batches - before.batches,
    sequenceForwards: after.sequenceForwards - before.sequenceForwards,
    largestBatch: after.largestBatch,
  };
}

function expectSameAsAlone(run: Awaited<ReturnType<typeof aloneThenTogether>>): void {
  run.together.forEach((r, i) => {
    expect(tokensOf(r)).toEqual(tokensOf(run.alone[i]));
    expect(r.stats.nfe).toBe(run.alone[i].stats.nfe);
  });
  // Every step went through the scheduler, and steps of different calls shared forwards.
  expect(run.sequenceForwards).toBe(run.together.reduce((n, r) => n + r.stats.nfe, 0));
  expect(run.batches).toBeLessThan(run.sequenceForwards);
}

describe('batched generation on a tiny checkpoint', () => {
  const PROMPTS = [[3, 17, 5, 29, 8, 11, 40], [9, 1, 33], [12, 4, 4, 20, 7, 30, 2, 2, 19]];
  let dir: string;
  let model: DiffusionModel;
  beforeAll(async () => {
    dir = makeTempDir();
    writeDecodingLlada(dir, { seed: 11, config: { max_sequence_length: 128 } });
    model = await loadModel(dir, { threads: 2, maxBatch: 4 });
  });
  afterAll(() => {
    model.dispose();
    removeDir(dir);
  });

  test('batches go to the addon\'s forwardBatch when it has one', async () => {
    const nativeModel = await native.loadModel(dir, { threads: 2 });
    try {
      expect(model.schedulerStats().nativeBatch).toBe(typeof nativeModel.forwardBatch === 'function');
    } finally {
      nativeModel.dispose();
    }
  });

  test.each(STRATEGIES)('%s: concurrent calls give the tokens they give alone', async (strategy) => {
    const run = await aloneThenTogether(model, PROMPTS.map((p) => [p, optionsFor(strategy, 16, 8)]));
    expectSameAsAlone(run);
  });

  test('every strategy mixed in one batch gives its tokens alone', async () => {
    const jobs = STRATEGIES.map((s, i): [number[], GenerateOptions] => [PROMPTS[i % PROMPTS.length], optionsFor(s, 16, 8)]);
    const run = await aloneThenTogether(model, jobs);
    expectSameAsAlone(run);
    expect(run.largestBatch).toBe(Math.min(4, jobs.length));
  });

  test('aborting one call leaves the others intact', async () => {
    const o = optionsFor('prefix-cache', 32, 8);
    const alone: GenerateResult[] = [];
    for (const p of PROMPTS) alone.push(await model.generate(p, o));
    const ac = new AbortController();
    const victim = model.stream(PROMPTS[1], { ...o, signal: ac.signal });
    const others = [model.generate(PROMPTS[0], o), model.generate(PROMPTS[2], o)];
    await victim.next();
    ac.abort(new Error('stopped'));
    await expect(victim.next()).rejects.toThrow('stopped');
    const [r0, r2] = await Promise.all(others);
    expect(tokensOf(r0)).toEqual(tokensOf(alone[0]));
    expect(tokensOf(r2)).toEqual(tokensOf(alone[2]));
    expect(model.schedulerStats()).toMatchObject({ active: 0, queued: 0 });
  });

  test('maxBatch is respected; calls beyond it queue and report their queue time', async () => {
    const small = await loadModel(dir, { threads: 2, maxBatch: 2 });
    try {
      const o = optionsFor('dual-cache', 16, 8);
      const jobs = [...PROMPTS, PROMPTS[0], PROMPTS[1]];
      const alone: GenerateResult[] = [];
      for (const p of jobs) alone.push(await small.generate(p, o));
      const together = await Promise.all(jobs.map((p) => small.generate(p, o)));
      together.forEach((r, i) => expect(tokensOf(r)).toEqual(tokensOf(alone[i])));
      expect(small.schedulerStats()).toMatchObject({ largestBatch: 2, maxBatch: 2, active: 0, queued: 0 });
      // The last two calls waited for the first ones to finish.
      expect(together[4].stats.queueSeconds).toBeGreaterThan(0);
      expect(together[4].stats.seconds).toBeGreaterThanOrEqual(together[4].stats.queueSeconds);
      expect(together[0].stats.queueSeconds).toBeLessThan(together[4].stats.queueSeconds);
    } finally {
      small.dispose();
    }
  });
});

describe('batched generation on the shipped model', () => {
  let model: DiffusionModel;
  beforeAll(async () => {
    model = await loadModel(undefined, { threads: 2, maxBatch: 8 });
  });
  afterAll(() => model.dispose());

  test('text prompts with every strategy, mixed in one batch, give their tokens alone', async () => {
    const questions = ['Ann has 12 apples. She buys 7 more. How many apples now?', 'Leo has 17 pens. He finds 5 more. How many pens now?'];
    const jobs = STRATEGIES.flatMap((s) => questions.map((q): [string, GenerateOptions] => [q, optionsFor(s, 32, 16)]));
    const run = await aloneThenTogether(model, jobs);
    expectSameAsAlone(run);
    expect(run.largestBatch).toBeGreaterThan(1);
    expect(run.largestBatch).toBeLessThanOrEqual(8);
  });
});
