// SDLLM_OP_TIMES=1 (cpp/op_times.h): a process that ran forwards prints, at exit, how many
// and a row per op that ran; without the variable it prints nothing.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { addonPath } from '../lib/native';
import { defaultModelDir } from '../lib/model';

// Three forwards of the shipped model through the addon alone, then exit.
const script = `
const addon = require(${JSON.stringify(addonPath())});
(async () => {
  const m = await addon.loadModel(${JSON.stringify(defaultModelDir)}, { threads: 2 });
  const s = m.createSession(64);
  const n = 12;
  const req = { tokens: Int32Array.from({ length: n }, (_, i) => 10 + i), positions: Int32Array.from({ length: n }, (_, i) => i),
    predictRows: Int32Array.of(0, 5), cacheAttend: 0, attendSelf: true, confidence: 0, temperature: 0, seed: 1,
    noiseCounter: 0, returnLogits: false };
  for (let i = 0; i < 3; i++) await s.forward(req);
  s.dispose();
  m.dispose();
})();
`;

function run(env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, ['-e', script], { cwd: path.resolve(__dirname, '..'), env, encoding: 'utf8', timeout: 60000 });
}

test('SDLLM_OP_TIMES=1 prints the forwards and a row per op at exit', () => {
  const r = run({ ...process.env, SDLLM_OP_TIMES: '1' });
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/SDLLM_OP_TIMES: 3 forwards, [\d.]+ ms in ops/);
  // Once a forward (embedding, confidence) or once a layer per forward: a multiple of 3 calls.
  for (const op of ['embedding', 'project_rope', 'attention', 'project_swiglu', 'gemm_add', 'confidence']) {
    const row = new RegExp(`^${op}.*?\\s(\\d+)\\s+([\\d.]+)\\s+([\\d.]+)\\s+([\\d.]+)\\s+([\\d.]+)\\s+([\\d.]+)\\s+[\\d.]+%$`, 'm').exec(r.stderr);
    expect(row).not.toBeNull();
    expect(Number(row![1]) % 3).toBe(0);
    expect(Number(row![1])).toBeGreaterThan(0);
    // The median (eighth-octave buckets, ~9% wide) is positive and, within a bucket's width,
    // no longer than all the op's calls together.
    const [calls, mean, median] = [Number(row![1]), Number(row![3]), Number(row![4])];
    expect(median).toBeGreaterThan(0);
    expect(median).toBeLessThanOrEqual((mean + 0.05) * calls * 1.1 + 0.05); // printed to 0.1 us
    // p90 and p99 from the same buckets: ordered.
    const [p90, p99] = [Number(row![5]), Number(row![6])];
    expect(p90).toBeGreaterThanOrEqual(median);
    expect(p99).toBeGreaterThanOrEqual(p90);
  }
});

test('without SDLLM_OP_TIMES nothing is printed', () => {
  const env = { ...process.env };
  delete env.SDLLM_OP_TIMES;
  const r = run(env);
  expect(r.status).toBe(0);
  expect(r.stderr).not.toMatch(/SDLLM_OP_TIMES/);
});
