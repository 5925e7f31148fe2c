// Strategy `slowfast` (decoding.md): the fast path (native forward + lib/strategies/slowfast.ts)
// against the literal reference (test/helpers/reference/slowfast.ts, float64 logits), token
// for token and in NFE, plain and over the prefix cache. Each case names the situations it
// exists for, and the reference's trace must show that they occurred.
import { decodeBlocks } from '../lib/generate';
import { native } from '../lib/native';
import { resolveOptions } from '../lib/options';
import type { GenerateOptions } from '../types';
import type { NativeForwardRequest } from '../types/native';
import { LladaFixture, lladaFixturePool, PROMPT } from './helpers/decoding-fixtures';
import { emptyTrace, literalSlowFast, SlowFastLiteralOptions, SlowFastLiteralResult, SlowFastTrace } from './helpers/reference/slowfast';

type Fixture = LladaFixture;
const fixture = lladaFixturePool();

/** The literal reference's options for these generate options (defaults of decoding.md). */
function literalOptions(o: GenerateOptions): SlowFastLiteralOptions {
  return {
    genLength: o.genLength ?? 256,
    blockLength: o.blockLength ?? 32,
    explorationSteps: o.explorationSteps ?? 6,
    cycleThreshold: o.cycleThreshold ?? 0.3,
    stabilityWindow: o.stabilityWindow ?? 2,
    stabilityStd: o.stabilityStd ?? 1.0,
    highConfidence: o.highConfidence ?? 0.9,
    maxSubCycles: o.maxSubCycles ?? 256,
    prefixCache: o.prefixCache ?? false,
  };
}

type Situation = keyof SlowFastTrace;

interface Case {
  name: string;
  options: GenerateOptions;
  /** Trace counters the reference run must show above zero. */
  occurs: Situation[];
}

const base = { strategy: 'slowfast' as const, genLength: 32, blockLength: 8 };

const CASES: Case[] = [
  { name: 'defaults, four blocks: estimates shrink as positions commit', options: { ...base }, occurs: ['settledByStd', 'shrinkingEstimates'] },
  {
    name: 'K < W: the span comes from the fallback mean',
    options: { ...base, explorationSteps: 2, stabilityWindow: 3 },
    occurs: ['fallbackSpans'],
  },
  {
    name: 'S 0 (no std is below it): the K-th call settles the span at the floored mean',
    options: { ...base, explorationSteps: 3, stabilityStd: 0 },
    occurs: ['settledAtLastCall'],
  },
  {
    name: 'long fill loops: calls on the prefix',
    options: { ...base, cycleThreshold: 0.05, highConfidence: 0.95 },
    occurs: ['prefixCalls', 'prefixCallsDroppingTail'],
  },
  {
    name: 'h 0: the first exploration call completes each block, the rest are skipped',
    options: { ...base, highConfidence: 0 },
    occurs: ['blocksDoneByFirstCall', 'callsOnCompleteBlock'],
  },
  {
    name: 'maxSubCycles 1: blocks keep masks',
    options: { ...base, maxSubCycles: 1, explorationSteps: 2, cycleThreshold: 1 },
    occurs: ['blocksLeftMasked'],
  },
  {
    name: 'one block (blockLength = genLength), defaults',
    options: { ...base, genLength: 24, blockLength: 24 },
    occurs: ['subCycles', 'prefixCalls'],
  },
  {
    name: 'one block, paper settings (K 8, c 0.1, h 0.85)',
    options: { ...base, genLength: 24, blockLength: 24, explorationSteps: 8, cycleThreshold: 0.1, highConfidence: 0.85 },
    occurs: ['subCycles'],
  },
];

/** The cached variant on the same cases (the first call of a block writes the cache). */
const CACHED_CASES: Case[] = CASES.map((c) => ({ ...c, name: `${c.name} [prefixCache]`, options: { ...c.options, prefixCache: true } }));

/** NFE the fast path reports: every call of the rules, less the skipped ones on complete blocks. */
function checkedFirstNfe(ref: SlowFastLiteralResult): number {
  return ref.nfe - ref.trace.callsOnCompleteBlock;
}

describe.each([
  ['F32', { dtype: 'F32' as const, seed: 3 }],
  ['BF16 GQA', { dtype: 'BF16' as const, seed: 5, config: { n_kv_heads: 2 } }],
])('%s checkpoint', (_name, opts) => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture(opts);
  });

  test.each([...CASES, ...CACHED_CASES].map((c) => [c.name, c]))('equals the literal reference: %s', async (_n, c) => {
    const fast = await f.model.generate(PROMPT, c.options);
    const slow = literalSlowFast(f.ref, PROMPT, literalOptions(c.options));
    if (process.env.SDLLM_TEST_VERBOSE) console.log(c.name, fast.stats.nfe, slow.nfe, JSON.stringify(slow.trace));
    expect(Array.from(fast.tokens)).toEqual(slow.generated);
    expect(fast.stats.nfe).toBe(checkedFirstNfe(slow));
    // [name, occurred] pairs, so that a failure names the situation that did not occur.
    expect(c.occurs.map((s) => [s, slow.trace[s] > 0])).toEqual(c.occurs.map((s) => [s, true]));
  });
});

test('the cases name every situation the reference traces', () => {
  const named = new Set(CASES.flatMap((c) => c.occurs));
  const traced = Object.keys(emptyTrace()).filter((k) => k !== 'wholeSequenceCalls');
  expect(traced.filter((k) => !named.has(k as Situation))).toEqual([]);
});

test('the outputs are not degenerate (the comparison above can fail)', async () => {
  const f = await fixture({ dtype: 'F32', seed: 3 });
  const r = await f.model.generate(PROMPT, { ...base });
  expect(new Set(r.tokens).size).toBeGreaterThan(5);
  expect(r.tokens.includes(f.ref.maskId)).toBe(false);
  // A different commit level changes the tokens: the settings reach the decoding.
  const other = await f.model.generate(PROMPT, { ...base, highConfidence: 0 });
  expect(Array.from(other.tokens)).not.toEqual(Array.from(r.tokens));
});

test('a block left with masks after maxSubCycles keeps them, and later blocks are still decoded', async () => {
  const f = await fixture({ dtype: 'F32', seed: 3 });
  const r = await f.model.generate(PROMPT, { ...base, maxSubCycles: 1, explorationSteps: 2, cycleThreshold: 1 });
  const M = f.ref.maskId;
  for (let b = 0; b < 4; b++) {
    const block = Array.from(r.tokens.subarray(8 * b, 8 * b + 8));
    expect(block.some((t) => t === M)).toBe(true);
    expect(block.some((t) => t !== M)).toBe(true);
  }
  expect(r.stats.blocksDecoded).toBe(4);
});

describe('the forward requests', () => {
  /** Every request the block loop sends for these options, with the reference's run beside it. */
  async function record(f: Fixture, o: GenerateOptions): Promise<{ requests: NativeForwardRequest[]; slow: SlowFastLiteralResult }> {
    const nativeModel = await native.loadModel(f.dir, { threads: 2 });
    const opts = resolveOptions(o);
    const session = nativeModel.createSession(PROMPT.length + opts.genLength);
    const requests: NativeForwardRequest[] = [];
    const gen = decodeBlocks(session, Int32Array.from(PROMPT), opts, f.ref.maskId, f.ref.eosId, (request) => {
      requests.push({ ...request, tokens: request.tokens.slice(), positions: request.positions.slice() });
      return session.forward(request);
    });
    try {
      while (!(await gen.next()).done);
    } finally {
      session.dispose();
      nativeModel.dispose();
    }
    return { requests, slow: literalSlowFast(f.ref, PROMPT, literalOptions(o)) };
  }

  const fillHeavy = { ...base, cycleThreshold: 0.05, highConfidence: 0.95 };
  const N = PROMPT.length + base.genLength;

  test('plain: whole-sequence calls and, within a fill loop, calls on a prefix ending in the block', async () => {
    const f = await fixture({ dtype: 'F32', seed: 3 });
    const { requests, slow } = await record(f, fillHeavy);
    let prefixCalls = 0;
    requests.forEach((r, i) => {
      expect(r.cacheAttend).toBe(0);
      expect(r.cacheWrite).toBeUndefined();
      expect(Array.from(r.positions)).toEqual(Array.from({ length: r.tokens.length }, (_, p) => p));
      if (r.tokens.length === N) return;
      prefixCalls++;
      // A prefix call follows the fill loop's first (whole) call or a prefix call of the same length.
      const before = requests[i - 1].tokens.length;
      expect(before === N || before === r.tokens.length).toBe(true);
      expect(Math.max(...r.predictRows)).toBeLessThan(r.tokens.length);
    });
    expect(prefixCalls).toBeGreaterThan(0);
    // A prefix call of the last block's span ends where the sequence does: it is whole.
    expect(prefixCalls).toBe(slow.trace.prefixCallsDroppingTail);
    expect(requests.length).toBe(slow.trace.wholeSequenceCalls + slow.trace.prefixCalls - slow.trace.callsOnCompleteBlock);
  });

  test('prefixCache: the first call of each block writes [0, s); every later call of the block attends to it', async () => {
    const f = await fixture({ dtype: 'F32', seed: 3 });
    const { requests, slow } = await record(f, { ...fillHeavy, prefixCache: true });
    let s = -1;
    let writes = 0;
    let prefixCalls = 0;
    for (const r of requests) {
      if (r.cacheWrite) {
        writes++;
        s = PROMPT.length + (writes - 1) * base.blockLength;
        expect(r.cacheWrite).toEqual({ start: 0, rows: s });
        expect(r.cacheAttend).toBe(0);
        expect(r.tokens.length).toBe(N);
        continue;
      }
      expect(r.cacheAttend).toBe(s);
      expect(r.positions[0]).toBe(s);
      expect(Array.from(r.positions)).toEqual(Array.from({ length: r.tokens.length }, (_, i) => s + i));
      if (s + r.tokens.length < N) prefixCalls++;
    }
    expect(writes).toBe(base.genLength / base.blockLength);
    expect(prefixCalls).toBe(slow.trace.prefixCallsDroppingTail);
    expect(prefixCalls).toBeGreaterThan(0);
  });
});

describe('prefix cache', () => {
  test('with one layer the cached keys/values are exact, so the tokens equal plain slowfast', async () => {
    // Layer 1's keys/values of a position depend only on its token and position, so the
    // prefix keys written by a block's first call are those a full call would recompute.
    const f = await fixture({ dtype: 'F32', seed: 7, config: { n_layers: 1 } });
    for (const o of [{ ...base }, { ...base, cycleThreshold: 0.05, highConfidence: 0.95 }, { ...base, genLength: 24, blockLength: 24 }]) {
      const plain = await f.model.generate(PROMPT, o);
      const cached = await f.model.generate(PROMPT, { ...o, prefixCache: true });
      expect(Array.from(cached.tokens)).toEqual(Array.from(plain.tokens));
      expect(cached.stats.nfe).toBe(plain.stats.nfe);
    }
  });

  test('with three layers the cache is stale for the prefix and the outputs differ (the cache is really used)', async () => {
    const f = await fixture({ dtype: 'F32', seed: 3 });
    let differs = 0;
    for (const seedOptions of [{ ...base }, { ...base, cycleThreshold: 0.05, highConfidence: 0.95 }]) {
      const plain = await f.model.generate(PROMPT, seedOptions);
      const cached = await f.model.generate(PROMPT, { ...seedOptions, prefixCache: true });
      const slowCached = literalSlowFast(f.ref, PROMPT, literalOptions({ ...seedOptions, prefixCache: true }));
      expect(Array.from(cached.tokens)).toEqual(slowCached.generated);
      if (Array.from(cached.tokens).join() !== Array.from(plain.tokens).join()) differs++;
    }
    expect(differs).toBeGreaterThan(0);
  });
});

describe('options', () => {
  test('defaults are the authors\' released ones', () => {
    const o = resolveOptions({ strategy: 'slowfast' });
    expect(o.slowfast).toEqual({ explorationSteps: 6, cycleThreshold: 0.3, stabilityWindow: 2, stabilityStd: 1.0, highConfidence: 0.9, maxSubCycles: 256 });
    expect(o.prefixCache).toBe(false);
    expect(o.earlyExit).toBe(false);
    expect(o.confidence).toBe('prob');
  });

  test.each([
    [{ explorationSteps: 0 }, 'Expected an integer >= 1 for explorationSteps but received 0'],
    [{ explorationSteps: 2.5 }, 'Expected an integer >= 1 for explorationSteps but received 2.5'],
    [{ cycleThreshold: 1.5 }, 'Expected a number between 0 and 1 for cycleThreshold but received 1.5'],
    [{ stabilityWindow: 0 }, 'Expected an integer >= 1 for stabilityWindow but received 0'],
    [{ stabilityStd: -1 }, 'Expected a number between 0 and 1000000 for stabilityStd but received -1'],
    [{ highConfidence: NaN }, 'Expected a number between 0 and 1 for highConfidence but received NaN'],
    [{ maxSubCycles: 0 }, 'Expected an integer >= 1 for maxSubCycles but received 0'],
    [{ prefixCache: 'yes' }, 'Expected a boolean for prefixCache but received the string "yes"'],
    [{ confidence: 'margin' }, "Expected 'prob' for strategy 'slowfast' for confidence but received the string \"margin\""],
    [{ threshold: 0.5 }, "Expected no threshold with strategy 'slowfast' (its level is highConfidence) for threshold but received 0.5"],
    [{ factor: 1 }, "Expected no factor with strategy 'slowfast' (its level is highConfidence) for factor but received 1"],
  ])('rejects %j', (bad, message) => {
    expect(() => resolveOptions({ strategy: 'slowfast', ...(bad as GenerateOptions) })).toThrow(message);
  });

  test('prefixCache belongs to slowfast only', () => {
    expect(() => resolveOptions({ strategy: 'streaming', prefixCache: true })).toThrow(
      "Expected false unless strategy is 'slowfast' for prefixCache but received boolean true",
    );
  });

  test('the Dream family is refused at option resolution', () => {
    expect(() => resolveOptions({ strategy: 'slowfast' }, 'dream')).toThrow('slowfast is not supported for the dream family yet');
    expect(() => resolveOptions({ strategy: 'streaming' }, 'dream')).not.toThrow();
  });
});
