// Batched forwards against sequential ones: B sequences decoding in lockstep, their steps
// sharing one forward per step (the scheduler with maxBatch B), against the same B
// sequences with each step a forward of its own (maxBatch 1), B in {1, 2, 4, 8}, on the
// shipped model and on a ~30 M-parameter random LLaDA checkpoint, CPU, one run, the two
// modes interleaved. Streaming's request shapes with a fixed schedule and no early exit, so
// that every sequence runs the same steps (lockstep); each batched answer is checked
// against the sequential one (same tokens). GFLOP/s per forward are printed beside the
// machine's FMA peak measured in the same run.
// --strategy dual-cache measures Fast-dLLM's dual cache instead (its later steps feed only
// the 32 rows of the block: the short forwards where one sequence alone leaves the GEMM
// short of rows); --strategy both runs the two one after the other. --weights q8 loads both
// models with 8-bit weights (quantized at load), whose int8 GEMM gains more from rows.
//   npm run bench:batch [-- --threads N --repeat 2 --gen-length 128 --strategy streaming|dual-cache|both
//                          --weights file|q8 --no-random --no-shipped]
import * as path from 'path';
import { loadModel } from '../lib';
import { defaultModelDir } from '../lib/model';
import { native } from '../lib/native';
import { makeHeldOut } from '../lib/tasks';
import { makeTempDir, removeDir, writeTinyLlada } from '../test/helpers/checkpoint';
import type { DiffusionModel, GenerateOptions } from '../types';
import type { NativeModelInfo } from '../types/native';
import { suffixWindow } from '../lib/strategies/streaming';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);
function argText(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** FLOPs of one forward: `rows` fed, `keys` attended per row, `pred` rows through the head (last layer on pred only). */
function forwardFlops(info: NativeModelInfo, rows: number, keys: number, pred: number): number {
  const d = info.dModel, kvd = info.nKvHeads * info.headDim, mlp = info.mlpHidden;
  const qkv = 2 * d * (d + 2 * kvd), rest = 2 * (d * d + 3 * d * mlp), att = 4 * keys * d;
  const full = rows * (qkv + att + rest);
  const last = rows * qkv + pred * (att + rest);
  return (info.nLayers - 1) * full + last + 2 * pred * d * info.vocabSize;
}

type FlopsOptions = Required<Pick<GenerateOptions, 'genLength' | 'blockLength' | 'steps' | 'window'>>;

/** FLOPs of one generation with fixed-schedule streaming (no early exit): the forwards of lib/strategies/streaming.ts. */
function streamingFlops(info: NativeModelInfo, promptLength: number, o: FlopsOptions): number {
  const n = promptLength + o.genLength, blocks = o.genLength / o.blockLength, k = o.steps / blocks;
  let flops = 0;
  for (let b = 0; b < blocks; b++) {
    const s = promptLength + b * o.blockLength, e = s + o.blockLength;
    const kept = suffixWindow(e, n, o.window).length;
    for (let i = 0; i < k; i++) {
      const pred = o.blockLength - (i * o.blockLength) / k;
      flops += i === 0 ? forwardFlops(info, e + kept, e + kept, pred) : forwardFlops(info, o.blockLength + kept, s + o.blockLength + kept, pred);
    }
  }
  return flops;
}

/** The same for the dual cache (lib/strategies/dual-cache.ts): step 0 of a block runs all n rows, later ones the block against n keys. */
function dualCacheFlops(info: NativeModelInfo, promptLength: number, o: FlopsOptions): number {
  const n = promptLength + o.genLength, blocks = o.genLength / o.blockLength, k = o.steps / blocks;
  let flops = 0;
  for (let b = 0; b < blocks; b++)
    for (let i = 0; i < k; i++) {
      const pred = o.blockLength - (i * o.blockLength) / k;
      flops += i === 0 ? forwardFlops(info, n, n, pred) : forwardFlops(info, o.blockLength, n, pred);
    }
  return flops;
}

interface Case { name: string; dir: string; prompts: (string | number[])[]; chat: boolean }

async function timeRun(model: DiffusionModel, prompts: (string | number[])[], opts: GenerateOptions): Promise<{ seconds: number; tokens: Int32Array[] }> {
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(prompts.map((p) => model.generate(p, opts)));
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, tokens: results.map((r) => r.tokens) };
}

async function main(): Promise<void> {
  const threads = process.argv.includes('--threads') ? arg('threads', 2) : undefined;
  const repeat = arg('repeat', 2);
  const genLength = arg('gen-length', 128);
  const sizes = [1, 2, 4, 8];
  const maxB = Math.max(...sizes);
  const which = argText('strategy', 'streaming');
  if (!['streaming', 'dual-cache', 'both'].includes(which)) throw new Error(`--strategy: streaming, dual-cache or both, not ${which}`);
  const weights = argText('weights', 'file');
  if (weights !== 'file' && weights !== 'q8') throw new Error(`--weights: file or q8, not ${weights}`);
  const strategies = which === 'both' ? ['streaming', 'dual-cache'] as const : [which as 'streaming' | 'dual-cache'];
  const tmp = makeTempDir('sdllm-bench-batch-');
  const cases: Case[] = [];
  if (!flag('no-shipped')) {
    cases.push({ name: 'shipped model (3.6 M)', dir: defaultModelDir, chat: true, prompts: makeHeldOut('arithmetic', maxB).map((t) => t.prompt) });
  }
  if (!flag('no-random')) {
    const dir = path.join(tmp, 'random-30m');
    const vocab = 4096;
    writeTinyLlada(dir, {
      dtype: 'BF16', seed: 3,
      config: { d_model: 512, n_heads: 8, n_kv_heads: 8, n_layers: 8, mlp_hidden_size: 1536, vocab_size: vocab, embedding_size: vocab,
        mask_token_id: vocab - 1, eos_token_id: vocab - 2, pad_token_id: vocab - 2, max_sequence_length: 4096 },
    });
    const prompts = Array.from({ length: maxB }, (_, j) => Array.from({ length: 48 + j }, (_, i) => (i * 37 + j * 11) % (vocab - 8)));
    cases.push({ name: 'random LLaDA (d 512, 8 layers)', dir, chat: false, prompts });
  }
  try {
    const peak = await native.measureFmaPeak({ threads: threads ?? 0, seconds: 0.3 });
    const isa = native.runtimeInfo().kernels === 'avx512' ? 'AVX-512' : 'AVX2';
    console.log(`FMA peak (register-only ${isa} loop, the GEMM's vector width, ${threads ?? 'all'} threads): ${peak.toFixed(1)} GFLOP/s`);
    for (const strategy of strategies) {
      const opts = { strategy, genLength, blockLength: 32, steps: genLength / 4, window: 96, threshold: null, earlyExit: false } as const;
      const generationFlops = strategy === 'streaming' ? streamingFlops : dualCacheFlops;
      console.log(`\noptions: ${JSON.stringify(opts)}; weights: ${weights}; best of ${repeat} interleaved runs per cell\n`);
      console.log('| model | strategy | B | sequential tok/s | batched tok/s | batched / sequential | sequential GFLOP/s | batched GFLOP/s | % of peak (batched) | same tokens |');
      console.log('|---|---|---|---|---|---|---|---|---|---|');
      for (const c of cases) {
        const sequential = await loadModel(c.dir, { threads, maxBatch: 1, weights: weights as 'file' | 'q8' });
        const batched = await loadModel(c.dir, { threads, maxBatch: maxB, weights: weights as 'file' | 'q8' });
        const info = batched.info;
        const o = { ...opts, chat: c.chat };
        for (const b of sizes) {
          const prompts = c.prompts.slice(0, b);
          let flops = 0;
          for (const p of prompts) {
            const len = typeof p === 'string' ? (await batched.encodePrompt(p, c.chat)).length : p.length;
            flops += generationFlops(info, len, opts);
          }
          let bestSeq = Infinity, bestBat = Infinity, same = true;
          for (let r = 0; r < repeat; r++) {
            const a = await timeRun(sequential, prompts, o);
            const z = await timeRun(batched, prompts, o);
            bestSeq = Math.min(bestSeq, a.seconds);
            bestBat = Math.min(bestBat, z.seconds);
            same = same && a.tokens.every((t, i) => Buffer.from(t.buffer).equals(Buffer.from(z.tokens[i].buffer)));
          }
          const tokens = b * genLength;
          const gs = flops / bestSeq / 1e9, gb = flops / bestBat / 1e9;
          console.log(`| ${c.name} | ${strategy} | ${b} | ${(tokens / bestSeq).toFixed(1)} | ${(tokens / bestBat).toFixed(1)} | ${(bestSeq / bestBat).toFixed(2)}x | ${gs.toFixed(1)} | ${gb.toFixed(1)} | ${peak > 0 ? ((100 * gb) / peak).toFixed(0) + '%' : 'n/a'} | ${same ? 'yes' : 'NO'} |`);
        }
        sequential.dispose();
        batched.dispose();
      }
    }
  } finally {
    removeDir(tmp);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
