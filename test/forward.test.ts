// One forward call of the native session: logits against the literal float64 model, and
// the cache identities the strategies rely on (cached prefix == recomputed prefix).
import { native } from '../lib/native';
import type { NativeForwardRequest, NativeModel } from '../types/native';
import { makeTempDir, removeDir } from './helpers/checkpoint';
import { writeDecodingLlada } from './helpers/fixtures';
import { RefLLaDA, truncateKV } from './helpers/reference/llada';

const range = (a: number, b: number): Int32Array => Int32Array.from({ length: b - a }, (_, i) => a + i);

function request(tokens: ArrayLike<number>, positions: Int32Array, extra: Partial<NativeForwardRequest> = {}): NativeForwardRequest {
  return {
    tokens: Int32Array.from(tokens),
    positions,
    cacheAttend: 0,
    attendSelf: true,
    predictRows: range(0, tokens.length),
    confidence: 0,
    temperature: 0,
    seed: 0,
    noiseCounter: 0,
    returnLogits: true,
    ...extra,
  };
}

function maxRelErr(a: Float32Array, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

describe.each([
  ['F32', 'F32', 1e-5],
  ['BF16 GQA', 'BF16', 1e-4],
  ['F16', 'F16', 1e-4],
] as const)('%s', (_name, dtype, tol) => {
  let dir: string;
  let model: NativeModel;
  let ref: RefLLaDA;
  const tokens = [3, 17, 5, 29, 8, 11, 40, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47];
  const N = tokens.length;
  const vocab = 48;

  beforeAll(async () => {
    dir = makeTempDir();
    writeDecodingLlada(dir, { dtype, seed: 7, config: dtype === 'BF16' ? { n_kv_heads: 2 } : {} });
    model = await native.loadModel(dir, { threads: 2 });
    ref = new RefLLaDA(dir);
  });
  afterAll(() => {
    model.dispose();
    removeDir(dir);
  });

  test('logits of a full forward match the literal model', async () => {
    const s = model.createSession(N);
    const out = await s.forward(request(tokens, range(0, N)));
    const expected = ref.forward(tokens, range(0, N)).logits.flatMap((r) => Array.from(r));
    expect(maxRelErr(out.logits!, expected)).toBeLessThan(tol);
    s.dispose();
  });

  test('non-contiguous position ids (a trailing position) match the literal model', async () => {
    const positions = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 200]);
    const s = model.createSession(16);
    const out = await s.forward(request(tokens.slice(0, 11), positions));
    const expected = ref.forward(tokens.slice(0, 11), positions).logits.flatMap((r) => Array.from(r));
    expect(maxRelErr(out.logits!, expected)).toBeLessThan(tol);
  });

  test('prefix cache: rows after a cached prefix equal the same rows of a full pass', async () => {
    const s = model.createSession(N);
    const full = await s.forward(request(tokens, range(0, N), { cacheWrite: { start: 0, rows: 7 } }));
    const tail = await s.forward(request(tokens.slice(7), range(7, N), { cacheAttend: 7 }));
    expect(maxRelErr(tail.logits!, full.logits!.subarray(7 * vocab))).toBeLessThan(tol);
    // and against the literal model's own cache path
    const past = truncateKV(ref.forward(tokens, range(0, N)).kv, 7);
    const lit = ref.forward(tokens.slice(7), range(7, N), past).logits.flatMap((r) => Array.from(r));
    expect(maxRelErr(tail.logits!, lit)).toBeLessThan(tol);
  });

  test('dual cache: overwriting a block range and attending to the whole cache', async () => {
    const s = model.createSession(N);
    await s.forward(request(tokens, range(0, N), { cacheWrite: { start: 0, rows: N } }));
    const changed = [...tokens];
    changed[9] = 12;
    changed[10] = 13;
    const blk = await s.forward(
      request(changed.slice(7, 13), range(7, 13), { cacheAttend: N, attendSelf: false, cacheWrite: { start: 7, rows: 6 } }),
    );
    const refKv = ref.forward(tokens, range(0, N)).kv;
    const lit = ref.forward(changed.slice(7, 13), range(7, 13), refKv, 7).logits.flatMap((r) => Array.from(r));
    expect(maxRelErr(blk.logits!, lit)).toBeLessThan(tol);
  });

  test('top-1 and confidence agree with the logits they come from', async () => {
    const s = model.createSession(N);
    const out = await s.forward(request(tokens, range(0, N), { predictRows: Int32Array.from([7, 3, 18]) }));
    for (let r = 0; r < 3; r++) {
      const row = Array.from(out.logits!.subarray(r * vocab, (r + 1) * vocab));
      const best = row.indexOf(Math.max(...row));
      const z = row.reduce((a, l) => a + Math.exp(l - row[best]), 0);
      expect(out.tokenIds[r]).toBe(best);
      expect(out.confidences[r]).toBeCloseTo(1 / z, 6);
    }
  });
});

describe('forward request validation', () => {
  let dir: string;
  let model: NativeModel;
  beforeAll(async () => {
    dir = makeTempDir();
    writeDecodingLlada(dir, { seed: 1 });
    model = await native.loadModel(dir, { threads: 1 });
  });
  afterAll(() => {
    model.dispose();
    removeDir(dir);
  });

  test.each([
    ['token outside the embedding table', { tokens: Int32Array.from([999]), positions: Int32Array.from([0]), predictRows: Int32Array.from([0]) }, /embedding table/],
    ['positions of the wrong length', { positions: Int32Array.from([0]) }, /one entry per token/],
    ['cache range beyond capacity', { cacheWrite: { start: 6, rows: 3 } }, /capacity/],
    ['attend beyond capacity', { cacheAttend: 9 }, /outside the cache/],
    ['predict row out of range', { predictRows: Int32Array.from([5]) }, /predictRows/],
    ['nothing to attend to', { attendSelf: false }, /attend to something/],
  ])('%s is rejected', async (_n, extra, message) => {
    const s = model.createSession(8);
    await expect(s.forward(request([1, 2, 3], range(0, 3), extra as Partial<NativeForwardRequest>))).rejects.toThrow(message);
  });

  // Numbers are checked before any cast to an integer type (a NaN or out-of-range double
  // cast to one is undefined behaviour in C++): rejected synchronously, with the field's name.
  test.each([
    ['NaN temperature', { temperature: NaN }, /temperature must be a finite number >= 0/],
    ['negative temperature', { temperature: -1 }, /temperature must be a finite number >= 0/],
    ['infinite confidenceTemperature', { confidenceTemperature: Infinity }, /confidenceTemperature must be a finite/],
    ['fractional cacheAttend', { cacheAttend: 1.5 }, /cacheAttend must be an integer/],
    ['huge cacheAttend', { cacheAttend: 1e300 }, /cacheAttend must be an integer/],
    ['negative cacheWrite.rows', { cacheWrite: { start: 0, rows: -3 } }, /cacheWrite.rows must be an integer/],
    ['fractional confidence kind', { confidence: 1.5 as never }, /confidence must be an integer in \[0, 3\]/],
    ['negative seed', { seed: -1 }, /seed must be an integer/],
    ['NaN noiseCounter', { noiseCounter: NaN }, /noiseCounter must be an integer/],
    ['a string for a number', { seed: '3' as never }, /Expected a number for seed/],
  ])('%s is rejected', (_n, extra, message) => {
    const s = model.createSession(8);
    expect(() => s.forward(request([1, 2, 3], range(0, 3), extra as Partial<NativeForwardRequest>))).toThrow(message);
    s.dispose();
  });

  test('loadModel rejects a thread count that is not an integer in [0, 1024]', () => {
    for (const threads of [1e9, -3, 1.5, NaN, '2' as never])
      expect(() => native.loadModel(dir, { threads })).toThrow(/threads must be an integer in \[0, 1024\]/);
  });

  test('a disposed session rejects calls without crashing', async () => {
    const s = model.createSession(8);
    s.dispose();
    expect(() => s.forward(request([1], range(0, 1)))).toThrow(/disposed/);
  });

  test('a forward in flight survives dispose of its session', async () => {
    const s = model.createSession(8);
    const p = s.forward(request([1, 2, 3], range(0, 3)));
    s.dispose();
    await expect(p).resolves.toHaveProperty('tokenIds');
  });
});
