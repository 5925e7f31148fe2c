// Dream on the shared engine: loading the Dream layout, the forward (q/k/v biases, GQA,
// Qwen2 names) with and without cache against the literal float64 model, every strategy
// token for token against the Dream reference loops written out literally, and the
// family hooks (shifted rows, block-start rule, Dream schedule, tempered confidence).
import { loadModel, resolveOptions } from '../lib';
import { dreamSchedule, linspaceF32 } from '../lib/family';
import { native } from '../lib/native';
import type { DiffusionModel, GenerateOptions } from '../types';
import type { NativeForwardRequest, NativeModel } from '../types/native';
import { makeTempDir, removeDir } from './helpers/checkpoint';
import { writeDecodingDream } from './helpers/dream-fixtures';
import type { DecodingFixtureOptions } from './helpers/fixtures';
import { RefDream, truncateKV } from './helpers/reference/llada';
import type { LiteralOptions } from './helpers/reference/literal';
import { literalGenerateDream } from './helpers/reference/literal-dream';

const range = (a: number, b: number): Int32Array => Int32Array.from({ length: b - a }, (_, i) => a + i);
const PROMPT = [45, 3, 17, 5, 29, 8, 11, 40];

interface Fixture {
  dir: string;
  model: DiffusionModel;
  ref: RefDream;
}
const fixtures: Fixture[] = [];
async function fixture(opts: DecodingFixtureOptions): Promise<Fixture> {
  const dir = makeTempDir();
  writeDecodingDream(dir, opts);
  const f = { dir, model: await loadModel(dir, { threads: 2 }), ref: new RefDream(dir) };
  fixtures.push(f);
  return f;
}
afterAll(() => {
  for (const f of fixtures) {
    f.model.dispose();
    removeDir(f.dir);
  }
});

/** The options the engine resolves for Dream, in the literal loop's terms. */
function literalOptions(o: GenerateOptions): LiteralOptions {
  const r = resolveOptions(o, 'dream');
  return {
    strategy: r.strategy, genLength: r.genLength, blockLength: r.blockLength, steps: r.steps, threshold: r.threshold,
    window: r.window, alpha: r.alpha, earlyExit: r.earlyExit, confidence: r.confidence as LiteralOptions['confidence'],
  };
}

describe('loading and the forward', () => {
  let dir: string;
  let model: NativeModel;
  let ref: RefDream;
  const tokens = [45, 3, 17, 5, 29, 8, 11, 40, 47, 47, 47, 47, 47, 47, 47, 47, 47];
  const N = tokens.length;
  const vocab = 48;
  const request = (t: ArrayLike<number>, positions: Int32Array, extra: Partial<NativeForwardRequest> = {}): NativeForwardRequest => ({
    tokens: Int32Array.from(t), positions, cacheAttend: 0, attendSelf: true, predictRows: range(0, t.length),
    confidence: 0, temperature: 0, seed: 0, noiseCounter: 0, returnLogits: true, ...extra,
  });
  const maxRelErr = (a: Float32Array, b: ArrayLike<number>): number => {
    let num = 0;
    let den = 0;
    for (let i = 0; i < a.length; i++) {
      num = Math.max(num, Math.abs(a[i] - b[i]));
      den = Math.max(den, Math.abs(b[i]));
    }
    return num / den;
  };

  beforeAll(async () => {
    dir = makeTempDir();
    writeDecodingDream(dir, { dtype: 'F32', seed: 7 });
    model = await native.loadModel(dir, { threads: 2 });
    ref = new RefDream(dir);
  });
  afterAll(() => {
    model.dispose();
    removeDir(dir);
  });

  test('the Dream layout loads as the dream family with q/k/v biases and GQA', () => {
    expect(model.info).toMatchObject({ family: 'dream', qkvBias: true, nHeads: 4, nKvHeads: 2, dModel: 64, vocabSize: 48 });
  });

  test('a full forward matches the literal model', async () => {
    const s = model.createSession(N);
    const out = await s.forward(request(tokens, range(0, N)));
    expect(maxRelErr(out.logits!, ref.forward(tokens, range(0, N)).logits.flatMap((r) => Array.from(r)))).toBeLessThan(1e-5);
    s.dispose();
  });

  test('prefix cache: the rows after a cached prefix match the literal model over the same cache', async () => {
    const s = model.createSession(N);
    await s.forward(request(tokens, range(0, N), { cacheWrite: { start: 0, rows: 9 } }));
    const tail = await s.forward(request(tokens.slice(9), range(9, N), { cacheAttend: 9 }));
    const past = truncateKV(ref.forward(tokens, range(0, N)).kv, 9);
    const expected = ref.forward(tokens.slice(9), range(9, N), past).logits.flatMap((r) => Array.from(r));
    expect(maxRelErr(tail.logits!, expected)).toBeLessThan(1e-5);
    s.dispose();
  });

  test('dual cache: block rows over the whole cache match the literal model', async () => {
    const s = model.createSession(N);
    await s.forward(request(tokens, range(0, N), { cacheWrite: { start: 0, rows: N } }));
    const block = tokens.slice(8, 12);
    const out = await s.forward(request(block, range(8, 12), { cacheAttend: N, cacheWrite: { start: 8, rows: 4 }, attendSelf: false }));
    const past = ref.forward(tokens, range(0, N)).kv;
    const expected = ref.forward(block, range(8, 12), past, 8).logits.flatMap((r) => Array.from(r));
    expect(maxRelErr(out.logits!, expected)).toBeLessThan(1e-5);
    s.dispose();
  });

  test('confidenceTemperature: prob confidence is softmax(l / c)[x0]', async () => {
    const s = model.createSession(N);
    const refLogits = ref.forward(tokens, range(0, N)).logits;
    const vocab = model.info.vocabSize;
    for (const c of [1, 0.5, 2]) {
      const out = await s.forward(request(tokens, range(0, N), { returnLogits: true, confidenceTemperature: c }));
      refLogits.forEach((rl, r) => {
        // The formula is checked on the engine's own logits of this forward (their distance
        // from the literal model's is the test above's: 1e-5 of the largest, which / c = 0.5
        // can turn into ~1e-5 of a probability on the scalar path), the proposal on both.
        const l = Array.from(out.logits!.subarray(r * vocab, (r + 1) * vocab));
        const m = Math.max(...l);
        const z = l.reduce((a, v) => a + Math.exp((v - m) / c), 0);
        expect(out.tokenIds[r]).toBe(l.indexOf(m));
        expect(out.tokenIds[r]).toBe(rl.indexOf(Math.max(...rl)));
        expect(out.confidences[r]).toBeCloseTo(1 / z, 6);
      });
    }
    expect(() => s.forward(request(tokens, range(0, N), { confidenceTemperature: 0 }))).toThrow(/confidenceTemperature/);
    s.dispose();
  });
});

describe('family hooks', () => {
  test('linspace(1, 1e-3, n) in float32 and the Dream schedule', () => {
    const t = linspaceF32(1, 1e-3, 5);
    expect(t[0]).toBe(1);
    expect(t[4]).toBe(Math.fround(1e-3));
    expect(t[1]).toBe(Math.fround(1 + Math.fround(Math.fround(Math.fround(1e-3) - 1) / 4)));
    const k = dreamSchedule(8, 4);
    // step 1: int(7 * (1 - t2/t1)) with t = [1, .75025, .5005, .25075, .001]
    expect(k(1, 7)).toBe(Math.trunc(Math.fround(7 * Math.fround(1 - Math.fround(t[2] / t[1])))));
    expect(k(3, 5)).toBe(5); // the last step commits what is left
    expect(k(9, 2)).toBe(2);
  });

  test('Dream defaults: entropy with the schedule, prob with a threshold, window 32, and 2+ steps per block', () => {
    expect(resolveOptions({ strategy: 'vanilla' }, 'dream')).toMatchObject({ threshold: null, confidence: 'entropy' });
    expect(resolveOptions({}, 'dream')).toMatchObject({ threshold: 0.9, confidence: 'prob', window: 32, alpha: 0.3 });
    expect(resolveOptions({}, 'llada')).toMatchObject({ window: 96, confidence: 'prob' });
    expect(() => resolveOptions({ strategy: 'vanilla', genLength: 64, steps: 2 }, 'dream')).toThrow(
      'Expected at least 2 steps per block (4) for the dream schedule for steps but received 2',
    );
    expect(() => resolveOptions({ genLength: 64, steps: 2 }, 'dream')).not.toThrow();
  });
});

const CASES: GenerateOptions[] = [
  { strategy: 'vanilla', genLength: 24, blockLength: 8 },
  { strategy: 'vanilla', genLength: 24, blockLength: 8, steps: 9 },
  { strategy: 'vanilla', genLength: 24, blockLength: 12, threshold: 0.5 },
  { strategy: 'vanilla', genLength: 16, blockLength: 8, steps: 8, confidence: 'margin' },
  { strategy: 'prefix-cache', genLength: 24, blockLength: 8, steps: 12 },
  { strategy: 'prefix-cache', genLength: 32, blockLength: 8, threshold: 0.5 },
  { strategy: 'prefix-cache', genLength: 24, blockLength: 8, threshold: null, steps: 24, confidence: 'prob' },
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
  ['BF16', { dtype: 'BF16' as const, seed: 5 }],
])('%s Dream checkpoint', (_name, opts) => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture(opts);
  });

  test.each(CASES.map((c) => [JSON.stringify(c), c]))('fast path equals the literal Dream reference: %s', async (_n, o) => {
    const fast = await f.model.generate(PROMPT, o);
    const slow = literalGenerateDream(f.ref, PROMPT, literalOptions(o));
    expect(Array.from(fast.tokens)).toEqual(slow.generated);
    expect(fast.stats.nfe).toBe(slow.nfe);
  });
});

test('the Dream outputs are not degenerate and depend on the shift', async () => {
  const f = await fixture({ dtype: 'F32', seed: 3 });
  const o = { strategy: 'vanilla' as const, genLength: 24, blockLength: 8 };
  const r = await f.model.generate(PROMPT, o);
  expect(new Set(r.tokens).size).toBeGreaterThan(5);
  expect(r.tokens.includes(f.ref.maskId)).toBe(false);
  // The same loop without the shift (each row predicting itself) gives other tokens.
  const unshifted = literalGenerateDream(f.ref, PROMPT, { ...literalOptions(o) }, { shift: false });
  expect(unshifted.generated).not.toEqual(Array.from(r.tokens));
});

test('step 0 of each block commits only the block start: one token per step when the threshold is never met', async () => {
  const f = await fixture({ dtype: 'F32', seed: 3 });
  for (const strategy of ['vanilla', 'prefix-cache', 'dual-cache', 'streaming'] as const) {
    const r = await f.model.generate(PROMPT, { strategy, genLength: 16, blockLength: 8, threshold: 1, earlyExit: false });
    expect(r.stats.nfe).toBe(16);
  }
});

test('streaming with window >= genLength, alpha 0 and no early exit is prefix-cache (Dream)', async () => {
  const f = await fixture({ dtype: 'F32', seed: 11 });
  for (const threshold of [0.3, 0.6, 0.9]) {
    const common = { genLength: 48, blockLength: 16, threshold };
    const a = await f.model.generate(PROMPT, { ...common, strategy: 'streaming', window: 48, alpha: 0, earlyExit: false });
    const b = await f.model.generate(PROMPT, { ...common, strategy: 'prefix-cache' });
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
    expect(a.stats.nfe).toBe(b.stats.nfe);
  }
});

describe('early exit (Dream)', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture({ dtype: 'F32', seed: 3, eosLike: 34 });
  });

  test.each([
    { strategy: 'streaming' as const, genLength: 48, blockLength: 8, threshold: 0.5, window: 8 },
    { strategy: 'streaming' as const, genLength: 48, blockLength: 8, threshold: null, steps: 24, window: 4 },
    { strategy: 'prefix-cache' as const, genLength: 48, blockLength: 8, threshold: 0.5, earlyExit: true },
  ])('stops after the first block holding EOS and fills the rest: %j', async (o) => {
    const fast = await f.model.generate(PROMPT, o);
    const slow = literalGenerateDream(f.ref, PROMPT, literalOptions(o));
    expect(Array.from(fast.tokens)).toEqual(slow.generated);
    expect(fast.stats.nfe).toBe(slow.nfe);
    const eos = f.ref.eosId;
    const firstEos = fast.tokens.indexOf(eos);
    expect(firstEos).toBeGreaterThanOrEqual(0);
    const exitBlock = Math.floor(firstEos / o.blockLength);
    expect(fast.stats.blocksDecoded).toBe(exitBlock + 1);
    expect(fast.stats.blocksDecoded).toBeLessThan(o.genLength / o.blockLength);
    expect(Array.from(fast.tokens.subarray((exitBlock + 1) * o.blockLength)).every((t) => t === eos)).toBe(true);
  });
});

test('temperature > 0 samples reproducibly for a seed', async () => {
  const f = await fixture({ dtype: 'F32', seed: 3 });
  const o = { strategy: 'streaming' as const, genLength: 16, blockLength: 8, temperature: 0.8, seed: 9, window: 4 };
  const a = await f.model.generate(PROMPT, o);
  const b = await f.model.generate(PROMPT, o);
  expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
  expect(a.tokens.includes(f.ref.maskId)).toBe(false);
});
