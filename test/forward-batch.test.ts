// model.forwardBatch: a sequence's outputs in a batch equal its outputs alone, bit for bit
// (ids, confidences and logits), for every strategy's request shapes mixed in one batch,
// with GQA, QKV biases (Dream) and odd row counts; and the batch's argument checks.
import { native } from '../lib/native';
import type { NativeForwardRequest, NativeForwardResult, NativeModel, NativeSession } from '../types/native';
import { makeTempDir, removeDir } from './helpers/checkpoint';
import { writeDecodingDream } from './helpers/dream-fixtures';
import { writeDecodingLlada } from './helpers/fixtures';

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

interface Step {
  rows: number[];          // sequence positions fed, in order
  cacheAttend: number;
  cacheWrite?: { start: number; rows: number };
  attendSelf: boolean;
  predict: number[];       // input rows to predict
  confidence?: 0 | 1 | 2 | 3;
  temperature?: number;
  confidenceTemperature?: number;
  seed?: number;
}

function request(x: number[], s: Step, noiseCounter: number): NativeForwardRequest {
  return {
    tokens: Int32Array.from(s.rows, (p) => x[p]),
    positions: Int32Array.from(s.rows),
    cacheAttend: s.cacheAttend,
    cacheWrite: s.cacheWrite,
    attendSelf: s.attendSelf,
    predictRows: Int32Array.from(s.predict),
    confidence: s.confidence ?? 0,
    temperature: s.temperature ?? 0,
    confidenceTemperature: s.confidenceTemperature,
    seed: s.seed ?? 0,
    noiseCounter,
    returnLogits: true,
  };
}

/** The request shapes of each strategy (docs/ARCHITECTURE.md), over a sequence of N. */
function scripts(P: number, N: number, B: number): Record<string, Step[]> {
  const s = P, e = P + B;
  const kept = [e, e + 1, e + 2, N - 1];  // a window of 3 and the trailing position
  return {
    vanilla: [
      { rows: range(0, N), cacheAttend: 0, attendSelf: true, predict: range(P, e), confidence: 2 },
      { rows: range(0, N), cacheAttend: 0, attendSelf: true, predict: [P + 3, P + 1, P + 2], temperature: 0.8, seed: 5 },
    ],
    prefix: [
      { rows: range(0, N), cacheAttend: 0, cacheWrite: { start: 0, rows: s }, attendSelf: true, predict: range(P, e) },
      { rows: range(s, N), cacheAttend: s, attendSelf: true, predict: range(0, B), confidence: 1 },
    ],
    dual: [
      { rows: range(0, N), cacheAttend: 0, cacheWrite: { start: 0, rows: N }, attendSelf: true, predict: range(0, N) },
      { rows: range(s, e), cacheAttend: N, cacheWrite: { start: s, rows: B }, attendSelf: false, predict: range(1, B, ), confidence: 2 },
    ],
    streaming: [
      { rows: [...range(0, e), ...kept], cacheAttend: 0, cacheWrite: { start: 0, rows: s }, attendSelf: true, predict: range(P, e) },
      { rows: [...range(s, e), ...kept], cacheAttend: s, attendSelf: true, predict: [...range(2, B), B + 3], temperature: 0.5, confidenceTemperature: 0.5, seed: 9, confidence: 3 },
    ],
  };
}

function sameBits(a: NativeForwardResult, b: NativeForwardResult): void {
  expect(Array.from(b.tokenIds)).toEqual(Array.from(a.tokenIds));
  expect(Buffer.from(b.confidences.buffer).equals(Buffer.from(a.confidences.buffer))).toBe(true);
  expect(a.logits).toBeDefined();
  expect(Buffer.from(b.logits!.buffer).equals(Buffer.from(a.logits!.buffer))).toBe(true);
}

describe.each([
  ['LLaDA F32', 'llada', 'F32', 11],
  ['LLaDA BF16 GQA 4:2', 'llada', 'BF16', 12],
  ['Dream BF16 (QKV bias, GQA 4:2)', 'dream', 'BF16', 13],
] as const)('%s', (_name, family, dtype, seed) => {
  let dir: string;
  let model: NativeModel;
  let other: NativeModel;
  const P = 7, B = 8, N = P + 2 * B + 4;  // odd row counts: 27 rows, 15 + 4 kept, ...

  beforeAll(async () => {
    dir = makeTempDir();
    if (family === 'llada') writeDecodingLlada(dir, { dtype, seed, config: dtype === 'BF16' ? { n_kv_heads: 2 } : {} });
    else writeDecodingDream(dir, { dtype, seed });
    model = await native.loadModel(dir, { threads: 2 });
    other = await native.loadModel(dir, { threads: 2 });
  });
  afterAll(() => {
    model.dispose();
    other.dispose();
    removeDir(dir);
  });

  function sequence(salt: number): number[] {
    const vocab = model.info.vocabSize, mask = model.info.maskTokenId;
    const x = range(0, N).map((i) => (i < P ? (i * 7 + salt * 13 + 3) % (vocab - 2) : mask));
    x[P + 1] = (salt * 5 + 1) % (vocab - 2);  // a few committed positions in the block
    x[P + 4] = (salt * 3 + 2) % (vocab - 2);
    return x;
  }

  test('mixed strategies in one batch give, bit for bit, what each gives alone', async () => {
    const plan = scripts(P, N, B);
    const names = Object.keys(plan);
    const xs = names.map((_n, i) => sequence(i + 1));
    // Alone: each sequence's steps in order on its own session.
    const alone: NativeForwardResult[][] = [];
    for (let i = 0; i < names.length; i++) {
      const s = model.createSession(N);
      const out: NativeForwardResult[] = [];
      for (const [k, step] of plan[names[i]].entries()) out.push(await s.forward(request(xs[i], step, k)));
      alone.push(out);
      s.dispose();
    }
    // Batched, with the phases staggered: step 0 of some beside step 1 of others.
    const sessions = names.map(() => model.createSession(N));
    const next = names.map(() => 0);
    const got: NativeForwardResult[][] = names.map(() => []);
    const rounds = [[0, 1], [0, 1, 2, 3], [2, 3]];  // vanilla+prefix; all four; dual+streaming
    for (const members of rounds) {
      const items = members.map((i) => ({ session: sessions[i], request: request(xs[i], plan[names[i]][next[i]], next[i]) }));
      const results = await model.forwardBatch(items);
      expect(results).toHaveLength(members.length);
      members.forEach((i, j) => { got[i].push(results[j]); next[i]++; });
    }
    for (let i = 0; i < names.length; i++) {
      expect(got[i]).toHaveLength(alone[i].length);
      for (let k = 0; k < alone[i].length; k++) sameBits(alone[i][k], got[i][k]);
    }
    for (const s of sessions) s.dispose();
  });

  test('a batch of one equals session.forward', async () => {
    const x = sequence(9);
    const step = scripts(P, N, B).vanilla[0];
    const a = model.createSession(N), b = model.createSession(N);
    sameBits(await a.forward(request(x, step, 0)), (await model.forwardBatch([{ session: b, request: request(x, step, 0) }]))[0]);
  });

  test('argument checks: duplicates, other models, disposed sessions, empty batch', async () => {
    const x = sequence(3);
    const step = scripts(P, N, B).vanilla[0];
    const a = model.createSession(N), b = other.createSession(N), c = model.createSession(N);
    // Malformed arguments throw at the call (the request was never queued), as session.forward's do.
    expect(() => model.forwardBatch([])).toThrow(/at least one sequence/);
    expect(() => model.forwardBatch([{ session: a, request: request(x, step, 0) }, { session: a, request: request(x, step, 0) }]))
      .toThrow(/more than once/);
    expect(() => model.forwardBatch([{ session: b, request: request(x, step, 0) }])).toThrow(/one model/);
    c.dispose();
    expect(() => model.forwardBatch([{ session: c, request: request(x, step, 0) }])).toThrow(/disposed/);
    expect(() => model.forwardBatch([{ session: {} as NativeSession, request: request(x, step, 0) }])).toThrow(/Expected a Session/);
  });

  test('one invalid request rejects the whole batch before anything runs', async () => {
    const x = sequence(4);
    const plan = scripts(P, N, B);
    const a = model.createSession(N), ref = model.createSession(N), b = model.createSession(N);
    const bad = { ...request(x, plan.vanilla[0], 0), cacheAttend: N + 1 };
    // a's step 0 would write its cache; the batch fails, so a's cache must stay unwritten:
    // write it now with known content, fail the batch, and check a's next step.
    await a.forward(request(x, plan.prefix[0], 0));
    await ref.forward(request(x, plan.prefix[0], 0));
    const y = [...x];
    y[2] = (y[2] + 1) % (model.info.vocabSize - 2);
    await expect(model.forwardBatch([
      { session: a, request: request(y, plan.prefix[0], 0) },
      { session: b, request: bad },
    ])).rejects.toThrow(/cacheAttend is outside the cache/);
    sameBits(await ref.forward(request(x, plan.prefix[1], 1)), await a.forward(request(x, plan.prefix[1], 1)));
  });
});

export {};
