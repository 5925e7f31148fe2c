// The public TypeScript API: option validation messages, streaming, abort, sampling
// determinism, prompt checks and backend choice.
import { loadModel, resolveOptions } from '../lib';
import type { DiffusionModel } from '../types';
import { makeTempDir, removeDir } from './helpers/checkpoint';
import { writeDecodingLlada } from './helpers/fixtures';

let dir: string;
let model: DiffusionModel;
const PROMPT = [3, 17, 5, 29, 8, 11, 40];

beforeAll(async () => {
  dir = makeTempDir();
  writeDecodingLlada(dir, { seed: 3, config: { max_sequence_length: 64 } });
  model = await loadModel(dir, { threads: 2 });
});
afterAll(() => {
  model.dispose();
  removeDir(dir);
});

describe('options', () => {
  test.each([
    [{ genLength: 30, blockLength: 8 }, 'Expected a blockLength that divides genLength (30) for blockLength but received 8'],
    [{ window: -1 }, 'Expected an integer >= 0 for window but received -1'],
    [{ strategy: 'fast' }, "Expected one of 'vanilla', 'prefix-cache', 'dual-cache', 'streaming', 'slowfast' for strategy but received the string \"fast\""],
    [{ genLength: 64, blockLength: 32, steps: 3 }, 'Expected a multiple of the number of blocks (2) for steps but received 3'],
    [{ threshold: 1.5 }, 'Expected a number between 0 and 1 for threshold but received 1.5'],
    [{ alpha: 'x' }, 'Expected a number between 0 and 1 for alpha but received the string "x"'],
    [{ confidence: 'max' }, /Expected one of 'prob', 'margin', 'entropy', 'random' for confidence/],
    [{ temperature: -1 }, /Expected a number between 0 and .* for temperature but received -1/],
    [{ gen_length: 8 }, /Expected one of .* for an option name but received the string "gen_length"/],
  ])('%j is rejected', (options, message) => {
    expect(() => resolveOptions(options as never)).toThrow(message);
  });

  // The paper's LLaDA settings except alpha (0) and tau (0.95), both from measurement on the
  // shipped model (lib/family.ts); Dream keeps the paper's 0.3 and 0.9 (test/dream.test.ts);
  // the Fast-dLLM strategies keep Fast-dLLM's 0.9.
  test('defaults: the paper\'s LLaDA settings with a fixed threshold', () => {
    const s = resolveOptions({});
    expect(s).toMatchObject({ strategy: 'streaming', genLength: 256, blockLength: 32, steps: 256, threshold: 0.95, window: 96, alpha: 0, earlyExit: true });
    expect(resolveOptions({ strategy: 'prefix-cache' })).toMatchObject({ threshold: 0.9, earlyExit: false });
    expect(resolveOptions({ strategy: 'vanilla' })).toMatchObject({ threshold: null, earlyExit: false });
    expect(resolveOptions({ strategy: 'dual-cache' })).toMatchObject({ threshold: 0.9, earlyExit: false });
  });

  test('generate rejects bad options before any native work', async () => {
    await expect(model.generate(PROMPT, { genLength: 20, blockLength: 8 })).rejects.toThrow(/divides genLength/);
  });
});

describe('prompts', () => {
  test('a prompt longer than the model maximum is rejected', async () => {
    await expect(model.generate(PROMPT, { genLength: 60, blockLength: 4 })).rejects.toThrow(
      'Expected a prompt of at most 4 tokens (maxSequenceLength 64, genLength 60) for prompt but received 7 tokens',
    );
  });
  test('a genLength that leaves no room for a prompt names genLength', async () => {
    await expect(model.generate(PROMPT, { genLength: 64, blockLength: 8 })).rejects.toThrow(
      "Expected a genLength below the model's maxSequenceLength (64) for genLength but received 64",
    );
  });
  test('token ids outside the vocabulary are rejected', async () => {
    await expect(model.generate([1, 48], { genLength: 8, blockLength: 8 })).rejects.toThrow(/token ids between 0 and 47/);
  });
  test('text needs a tokenizer', async () => {
    await expect(model.generate('hello', { genLength: 8, blockLength: 8 })).rejects.toThrow(/no tokenizer.json/);
  });
  test('an empty prompt is rejected', async () => {
    await expect(model.generate([], { genLength: 8, blockLength: 8 })).rejects.toThrow('Expected a non-empty prompt for prompt but received an empty array');
    await expect(model.generate('x', [] as never)).rejects.toThrow('Expected an options object for options but received an array');
  });
});

describe('stream', () => {
  test('yields each block once it is final, then the result', async () => {
    const opts = { strategy: 'streaming' as const, genLength: 32, blockLength: 8, threshold: 0.5, window: 8, earlyExit: false };
    const chunks = [];
    for await (const c of model.stream(PROMPT, opts)) chunks.push(c);
    expect(chunks.map((c) => c.blockIndex)).toEqual([0, 1, 2, 3, -1]);
    const result = chunks[4].result!;
    const joined = chunks.slice(0, 4).flatMap((c) => Array.from(c.tokens));
    expect(joined).toEqual(Array.from(result.tokens));
    const direct = await model.generate(PROMPT, opts);
    expect(Array.from(direct.tokens)).toEqual(joined);
  });

  test('an aborted signal stops generation with its reason', async () => {
    const ac = new AbortController();
    const it = model.stream(PROMPT, { genLength: 32, blockLength: 8, threshold: 0.5, signal: ac.signal });
    await it.next();
    ac.abort(new Error('stop now'));
    await expect(it.next()).rejects.toThrow('stop now');
    // the session went back to the pool: the model still works
    await expect(model.generate(PROMPT, { genLength: 8, blockLength: 8 })).resolves.toHaveProperty('tokens');
  });
});

describe('sampling', () => {
  test('temperature > 0 is deterministic for a seed and differs across seeds', async () => {
    const o = { strategy: 'vanilla' as const, genLength: 24, blockLength: 8, temperature: 1 };
    const a = await model.generate(PROMPT, { ...o, seed: 1 });
    const b = await model.generate(PROMPT, { ...o, seed: 1 });
    const c = await model.generate(PROMPT, { ...o, seed: 2 });
    const greedy = await model.generate(PROMPT, { ...o, temperature: 0 });
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
    expect(Array.from(a.tokens)).not.toEqual(Array.from(c.tokens));
    expect(Array.from(a.tokens)).not.toEqual(Array.from(greedy.tokens));
  });
  test('random confidence is seeded too', async () => {
    const o = { strategy: 'vanilla' as const, genLength: 16, blockLength: 8, confidence: 'random' as const };
    const a = await model.generate(PROMPT, { ...o, seed: 5 });
    const b = await model.generate(PROMPT, { ...o, seed: 5 });
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
  });
});

describe('loading', () => {
  test('backend cuda without a CUDA build is a clear error; auto says what it chose', async () => {
    await expect(loadModel(dir, { backend: 'cuda' })).rejects.toThrow(/backend 'cuda' is not available. Missing: the NVIDIA driver/);
    expect(model.backend).toBe('cpu');
    expect(model.backendReason).toMatch(/CPU/);
  });
  test('gpuPrecision is checked before anything loads', async () => {
    await expect(loadModel(dir, { gpuPrecision: 'fp8' as never })).rejects.toThrow(/Expected one of 'bf16', 'exact' for gpuPrecision/);
  });
  test('a missing directory names it', async () => {
    await expect(loadModel('/nonexistent/model-dir')).rejects.toThrow(/nonexistent\/model-dir/);
  });
  test('native errors carry the caller\'s stack', async () => {
    const e = (await loadModel('/nonexistent/model-dir').catch((x: Error) => x)) as Error;
    expect(e.stack).toMatch(/api\.test\.ts/);
  });
  test('a disposed model refuses work', async () => {
    const m = await loadModel(dir);
    m.dispose();
    await expect(m.generate(PROMPT, { genLength: 8, blockLength: 8 })).rejects.toThrow(/disposed/);
  });
});
