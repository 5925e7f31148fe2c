// The fast path (native forward + TypeScript block loop) against the slow literal
// reference (float64 forward in TypeScript, the reference loops written out), token for
// token, for every strategy, on tiny random LLaDA checkpoints written by the test helper.
import { STREAMING_DEFAULTS } from '../lib';
import type { GenerateOptions } from '../types';
import { LladaFixture, lladaFixturePool, PROMPT } from './helpers/decoding-fixtures';
import { literalGenerate, LiteralOptions } from './helpers/reference/literal';

type Fixture = LladaFixture;
const fixture = lladaFixturePool();

function literalOptions(o: GenerateOptions): LiteralOptions {
  const strategy = o.strategy ?? 'streaming';
  const genLength = o.genLength ?? 256;
  return {
    strategy,
    genLength,
    blockLength: o.blockLength ?? 32,
    steps: o.steps ?? genLength,
    threshold: o.threshold === undefined ? (strategy === 'vanilla' ? null : 0.9) : o.threshold,
    window: o.window ?? 96,
    alpha: o.alpha ?? STREAMING_DEFAULTS.alpha,
    earlyExit: o.earlyExit ?? strategy === 'streaming',
    confidence: (o.confidence ?? 'prob') as LiteralOptions['confidence'],
  };
}

const CASES: GenerateOptions[] = [
  { strategy: 'vanilla', genLength: 24, blockLength: 8 },
  { strategy: 'vanilla', genLength: 24, blockLength: 8, steps: 9 },
  { strategy: 'vanilla', genLength: 24, blockLength: 12, threshold: 0.6 },
  { strategy: 'prefix-cache', genLength: 24, blockLength: 8, steps: 12 },
  { strategy: 'prefix-cache', genLength: 32, blockLength: 8, threshold: 0.5 },
  { strategy: 'dual-cache', genLength: 24, blockLength: 8, steps: 24 },
  { strategy: 'dual-cache', genLength: 32, blockLength: 8, threshold: 0.5, confidence: 'margin' },
  { strategy: 'streaming', genLength: 40, blockLength: 8, threshold: 0.5, window: 8, alpha: 0.3 },
  { strategy: 'streaming', genLength: 40, blockLength: 8, threshold: 0.7, window: 0, alpha: 0.6 },
  { strategy: 'streaming', genLength: 40, blockLength: 8, threshold: null, steps: 20, window: 5 },
  { strategy: 'streaming', genLength: 32, blockLength: 8, threshold: 0.5, window: 100, alpha: 0, earlyExit: false },
  { strategy: 'streaming', genLength: 32, blockLength: 8, threshold: 0.45, window: 3, confidence: 'entropy' },
];

describe.each([
  ['F32', { dtype: 'F32' as const, seed: 3 }],
  ['BF16 GQA', { dtype: 'BF16' as const, seed: 5, config: { n_kv_heads: 2 } }],
])('%s checkpoint', (_name, opts) => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture(opts);
  });

  test.each(CASES.map((c) => [JSON.stringify(c), c]))('fast path equals the literal reference: %s', async (_n, o) => {
    const fast = await f.model.generate(PROMPT, o);
    const slow = literalGenerate(f.ref, PROMPT, literalOptions(o));
    expect(Array.from(fast.tokens)).toEqual(slow.generated);
    expect(fast.stats.nfe).toBe(slow.nfe);
    if (process.env.SDLLM_TEST_VERBOSE) console.log(JSON.stringify(o), fast.stats.nfe, Array.from(fast.tokens).join(','));
  });
});

test('the outputs are not degenerate (the comparison above can fail)', async () => {
  const f = await fixture({ dtype: 'F32', seed: 3 });
  const r = await f.model.generate(PROMPT, { strategy: 'vanilla', genLength: 24, blockLength: 8 });
  expect(new Set(r.tokens).size).toBeGreaterThan(5);
  expect(r.tokens.includes(f.ref.maskId)).toBe(false);
});

test('streaming with window >= genLength, alpha 0 and no early exit is prefix-cache', async () => {
  const f = await fixture({ dtype: 'F32', seed: 11 });
  for (const threshold of [0.3, 0.6, 0.9]) {
    const common = { genLength: 48, blockLength: 16, threshold };
    const a = await f.model.generate(PROMPT, { ...common, strategy: 'streaming', window: 48, alpha: 0, earlyExit: false });
    const b = await f.model.generate(PROMPT, { ...common, strategy: 'prefix-cache' });
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
    expect(a.stats.nfe).toBe(b.stats.nfe);
  }
});

test('one token per step: every strategy commits one position per forward', async () => {
  const f = await fixture({ dtype: 'F32', seed: 3 });
  for (const strategy of ['vanilla', 'prefix-cache', 'dual-cache', 'streaming'] as const) {
    const r = await f.model.generate(PROMPT, { strategy, genLength: 16, blockLength: 8, threshold: null, earlyExit: false });
    expect(r.stats.nfe).toBe(16);
  }
});

describe('early exit', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture({ dtype: 'F32', seed: 3, eosLike: 30 });
  });

  test.each([
    { strategy: 'streaming' as const, genLength: 48, blockLength: 8, threshold: 0.5, window: 8 },
    { strategy: 'streaming' as const, genLength: 48, blockLength: 8, threshold: null, steps: 24, window: 4 },
    { strategy: 'vanilla' as const, genLength: 48, blockLength: 8, earlyExit: true },
    { strategy: 'prefix-cache' as const, genLength: 48, blockLength: 8, threshold: 0.5, earlyExit: true },
  ])('stops after the first block holding EOS and fills the rest: %j', async (o) => {
    const fast = await f.model.generate(PROMPT, o);
    const slow = literalGenerate(f.ref, PROMPT, literalOptions(o));
    expect(Array.from(fast.tokens)).toEqual(slow.generated);
    expect(fast.stats.nfe).toBe(slow.nfe);
    const eos = f.ref.eosId;
    const firstEos = fast.tokens.indexOf(eos);
    expect(firstEos).toBeGreaterThanOrEqual(0);
    const exitBlock = Math.floor(firstEos / o.blockLength);
    expect(fast.stats.blocksDecoded).toBe(exitBlock + 1);
    expect(fast.stats.blocksDecoded).toBeLessThan(o.genLength / o.blockLength);
    expect(Array.from(fast.tokens.subarray((exitBlock + 1) * o.blockLength)).every((t) => t === eos)).toBe(true);
    expect(fast.stats.tokensUntilEos).toBe(firstEos);
  });

  test('without early exit every block is decoded', async () => {
    const r = await f.model.generate(PROMPT, { strategy: 'streaming', genLength: 48, blockLength: 8, threshold: 0.5, window: 8, earlyExit: false });
    expect(r.stats.blocksDecoded).toBe(6);
  });
});
