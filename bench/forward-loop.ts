// The native forward alone, in a loop: B sessions of one checkpoint, each with K prompt
// positions in its cache, fed R rows (the first 32, or all when fewer, predicted) as one
// forwardBatch, repeated for a few seconds. Prints ms per forward and per sequence and the
// GFLOP/s of the layer GEMMs and the LM head (attention left out). For profiling (wrap it
// in `perf record -g`) and for A/B timing of kernel changes without the block loop, the
// tokenizer or the scheduler around it. With SDLLM_OP_TIMES=1 the addon prints where the
// forwards' time went, op by op, at exit (cpp/op_times.h).
//   [SDLLM_OP_TIMES=1] node dist/bench/forward-loop.js [--model DIR] [--batch 1] [--rows 32]
//     [--cached 64] [--threads 2] [--seconds 3]
import { defaultModelDir } from '../lib/model';
import { native } from '../lib/native';
import type { NativeBatchItem, NativeForwardRequest } from '../types/native';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const dir = arg('model', defaultModelDir);
  const batch = Number(arg('batch', '1'));
  const rows = Number(arg('rows', '32'));
  const cached = Number(arg('cached', '64'));
  const threads = Number(arg('threads', '2'));
  const seconds = Number(arg('seconds', '3'));
  const model = await native.loadModel(dir, { threads });
  const info = model.info;
  const ids = (n: number, salt: number) => Int32Array.from({ length: n }, (_, i) => (i * 7 + salt) % Math.min(info.vocabSize, 97));
  const items: NativeBatchItem[] = [];
  for (let b = 0; b < batch; b++) {
    const session = model.createSession(cached + rows);
    const base = { attendSelf: true, confidence: 0 as const, temperature: 0, seed: 1, noiseCounter: 0, returnLogits: false };
    if (cached > 0) {
      await session.forward({
        ...base, tokens: ids(cached, b), positions: Int32Array.from({ length: cached }, (_, i) => i),
        predictRows: Int32Array.of(cached - 1), cacheAttend: 0, cacheWrite: { start: 0, rows: cached },
      });
    }
    // Masked rows with a few known tokens among them, as a denoising step feeds.
    const tokens = Int32Array.from({ length: rows }, (_, i) => (i % 3 === 2 ? 10 + ((i + b) % 50) : info.maskTokenId));
    const request: NativeForwardRequest = {
      ...base, tokens, positions: Int32Array.from({ length: rows }, (_, i) => cached + i),
      predictRows: Int32Array.from({ length: Math.min(32, rows) }, (_, i) => i), cacheAttend: cached,
    };
    items.push({ session, request });
  }
  for (let i = 0; i < 10; i++) await model.forwardBatch(items);
  const t0 = process.hrtime.bigint();
  let n = 0;
  while (Number(process.hrtime.bigint() - t0) < seconds * 1e9) {
    await model.forwardBatch(items);
    n++;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  const d = info.dModel, kv = info.nKvHeads * info.headDim;
  const layerParams = d * d * 2 + 2 * d * kv + 3 * d * info.mlpHidden;
  const flops = 2 * batch * (rows * info.nLayers * layerParams + Math.min(32, rows) * d * info.vocabSize);
  console.log(
    `${dir}: batch ${batch} x ${rows} rows over ${cached} cached, ${threads} threads: ${ms.toFixed(2)} ms/forward, ` +
      `${(ms / batch).toFixed(2)} ms/sequence, ${(flops / ms / 1e6).toFixed(1)} GFLOP/s (GEMMs), ${n} forwards`,
  );
  for (const it of items) it.session.dispose();
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
