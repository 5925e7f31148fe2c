// 8-bit weights (Q8_0): loadModel(dir, { weights: 'q8' }) quantizes at load; the quantize
// command writes a checkpoint that loads as Q8_0 directly, with the same bytes (so the same
// logits, bit for bit); the CUDA backend refuses both; malformed Q8_0 files are refused.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { defaultModelDir, loadModel } from '../lib';
import { native } from '../lib/native';
import { quantizeCheckpoint, quantizeRow } from '../lib/quantize';
import type { NativeForwardRequest, NativeModel } from '../types/native';
import { writeTinyDream, writeTinyLlada } from './helpers/checkpoint';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sdllm-q8-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function request(tokens: number[]): NativeForwardRequest {
  return {
    tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens.map((_, i) => i)), cacheAttend: 0,
    attendSelf: true, predictRows: Int32Array.from(tokens.map((_, i) => i)), confidence: 0, temperature: 0,
    seed: 0, noiseCounter: 0, returnLogits: true,
  };
}

async function logits(m: NativeModel, tokens: number[]): Promise<Float32Array> {
  const s = m.createSession(tokens.length);
  try {
    return (await s.forward(request(tokens))).logits!;
  } finally {
    s.dispose();
  }
}

test('quantizeRow: scale max|w|/127, round half to even, zero groups, a short tail group', () => {
  const x = new Float32Array(40);
  for (let i = 0; i < 32; i++) x[i] = (i - 16) * 0.5; // max |x| = 8
  x[33] = 1; x[34] = -0.25;
  const q = new Int8Array(40);
  const s = new Float32Array(2);
  quantizeRow(x, q, s);
  expect(s[0]).toBe(Math.fround(8 / 127));
  expect(q[0]).toBe(-127);
  expect(q[16]).toBe(0);
  expect(s[1]).toBe(Math.fround(1 / 127));
  expect(q[33]).toBe(127);
  expect(q[34]).toBe(-32); // -31.75 -> -32
  const z = new Int8Array(32);
  const zs = new Float32Array(1);
  quantizeRow(new Float32Array(32), z, zs);
  expect(zs[0]).toBe(0);
  expect(Array.from(z).every((v) => v === 0)).toBe(true);
});

test('the shipped model loads with weights q8 and generates', async () => {
  const model = await loadModel(undefined, { threads: 2, weights: 'q8' });
  try {
    expect(model.info.dtype).toBe('Q8_0');
    expect(model.backend).toBe('cpu');
    const r = await model.generate('Finn has 72 cards. He loses 31. How many cards now?', {
      strategy: 'vanilla', genLength: 64, blockLength: 32, steps: 64,
    });
    expect(r.tokens.length).toBe(64);
    expect(r.tokens.includes(model.info.maskTokenId)).toBe(false);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.stats.tokensUntilEos).toBeLessThan(64);
  } finally {
    model.dispose();
  }
}, 120_000);

test('quantize writes a checkpoint that loads as Q8_0 with the bytes of quantization at load', async () => {
  const out = path.join(tmp, 'shipped-q8');
  const report = quantizeCheckpoint(defaultModelDir, out);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  expect(config.sdllm_quantization).toMatchObject({ format: 'q8_0', group_size: 32 });
  expect(report.quantized.length).toBe(config.n_layers * 7 + 1); // + the untied LM head
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'])
    expect(fs.readFileSync(path.join(out, f))).toEqual(fs.readFileSync(path.join(defaultModelDir, f)));
  expect(report.bytesOut).toBeLessThan(report.bytesIn);

  const pre = await native.loadModel(out, { threads: 2 });
  const atLoad = await native.loadModel(defaultModelDir, { threads: 2, weights: 'q8' });
  try {
    expect(pre.info.dtype).toBe('Q8_0');
    const prompt = [97, 12, 40, 7, 101, 101, 101, 101, 33, 101];
    expect(await logits(pre, prompt)).toEqual(await logits(atLoad, prompt));
  } finally {
    pre.dispose();
    atLoad.dispose();
  }
  // And through the public API, token for token.
  const a = await loadModel(out, { threads: 2 });
  const b = await loadModel(defaultModelDir, { threads: 2, weights: 'q8' });
  try {
    const opts = { strategy: 'streaming' as const, genLength: 64, blockLength: 32 };
    const ra = await a.generate('Ann has 12 apples. She buys 7 more. How many apples now?', opts);
    const rb = await b.generate('Ann has 12 apples. She buys 7 more. How many apples now?', opts);
    expect(Array.from(ra.tokens)).toEqual(Array.from(rb.tokens));
  } finally {
    a.dispose();
    b.dispose();
  }
  expect(() => quantizeCheckpoint(defaultModelDir, out)).toThrow(/not empty/);
}, 120_000);

test.each([
  ['LLaDA, BF16, 3 shards, d_model not a multiple of 32', 'llada', 3, {}],
  ['Dream, F16 (QKV biases kept), tied head', 'dream', 2, { tieWeights: true }],
] as const)('%s: quantized checkpoint == quantization at load', async (_what, family, shards, extra) => {
  const dir = path.join(tmp, `${family}-src`);
  const ckpt = family === 'llada'
    ? writeTinyLlada(dir, { dtype: 'BF16', seed: 3, shards, config: { d_model: 48, n_heads: 4, mlp_hidden_size: 72 } })
    : writeTinyDream(dir, { dtype: 'F16', seed: 4, shards, ...extra });
  const out = path.join(tmp, `${family}-q8`);
  quantizeCheckpoint(dir, out);
  expect(fs.existsSync(path.join(out, 'model.safetensors.index.json'))).toBe(true);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8'));
  const scaleNames = Object.keys(index.weight_map).filter((n) => n.endsWith('.q8_scales'));
  expect(scaleNames.length).toBe(Number(ckpt.config.n_layers ?? ckpt.config.num_hidden_layers) * 7 +
    (family === 'llada' ? 1 : 0));
  const pre = await native.loadModel(out, { threads: 1 });
  const atLoad = await native.loadModel(dir, { threads: 1, weights: 'q8' });
  try {
    const prompt = [1, 5, 7, 2, 9, 3];
    expect(await logits(pre, prompt)).toEqual(await logits(atLoad, prompt));
  } finally {
    pre.dispose();
    atLoad.dispose();
  }
});

test('a Q8_0 checkpoint without its scales is refused naming the tensor', async () => {
  const dir = path.join(tmp, 'bad-src');
  writeTinyLlada(dir, { dtype: 'BF16', seed: 5 });
  const out = path.join(tmp, 'bad-q8');
  quantizeCheckpoint(dir, out);
  // Rewrite the header without one scales tensor (its bytes stay, unreferenced).
  const file = path.join(out, 'model.safetensors');
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const victim = 'model.transformer.blocks.1.attn_out.weight';
  delete header[`${victim}.q8_scales`];
  let text = JSON.stringify(header);
  while (text.length < n) text += ' ';
  fs.writeFileSync(file, Buffer.concat([buf.subarray(0, 8), Buffer.from(text), buf.subarray(8 + n)]));
  await expect(native.loadModel(out, { threads: 1 })).rejects.toThrow(new RegExp(`${victim}.*no scales`));
});

test("weights 'q8' with backend 'cuda' is a clear error; 'auto' takes the CPU", async () => {
  await expect(loadModel(undefined, { backend: 'cuda', weights: 'q8' })).rejects.toThrow(/CPU backend only/);
  expect(() => native.loadModel(defaultModelDir, { threads: 1, backend: 'cuda', cudaLibrary: '/nonexistent', weights: 'q8' }))
    .toThrow(/CPU backend only/);
  const m = await loadModel(undefined, { backend: 'auto', weights: 'q8', threads: 2 });
  try {
    expect(m.backend).toBe('cpu');
    expect(m.backendReason).toMatch(/q8/);
  } finally {
    m.dispose();
  }
  await expect(loadModel(undefined, { weights: 'q4' as never })).rejects.toThrow(/weights/);
});
