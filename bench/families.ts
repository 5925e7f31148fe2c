// Tokens/s of every strategy for a tiny random Dream checkpoint and a LLaDA one of the
// same size (same width, layers, heads, vocabulary), so that any cost of the family hooks
// (shifted rows, block-start first step, Dream schedule) shows next to the same strategy.
//   npm run build && node dist/bench/families.js [--d-model 256] [--layers 4] [--vocab 4096]
//       [--gen-length 128] [--threads N] [--repeat 3]
// Random weights decode nonsense; only speed and NFE are compared. Never asserted in tests.
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../lib';
import type { GenerateOptions } from '../types';
import { makeTempDir, removeDir, writeTinyDream, writeTinyLlada } from '../test/helpers/checkpoint';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const d = arg('d-model', 256);
  const layers = arg('layers', 4);
  const heads = arg('heads', 8);
  const vocab = arg('vocab', 4096);
  const genLength = arg('gen-length', 128);
  const threads = process.argv.includes('--threads') ? arg('threads', 1) : undefined;
  const repeat = arg('repeat', 3);
  const mlp = 3 * d;
  const root = makeTempDir('sdllm-bench-families-');
  const dirs = { llada: path.join(root, 'llada'), dream: path.join(root, 'dream') };
  // Same shapes; MHA in both so that only the family differs (Dream keeps its q/k/v biases).
  writeTinyLlada(dirs.llada, {
    dtype: 'BF16', config: { d_model: d, n_heads: heads, n_kv_heads: heads, n_layers: layers, mlp_hidden_size: mlp,
      vocab_size: vocab, embedding_size: vocab, mask_token_id: vocab - 1, eos_token_id: vocab - 2, pad_token_id: vocab - 2, max_sequence_length: 4096 },
  });
  writeTinyDream(dirs.dream, {
    dtype: 'BF16', config: { hidden_size: d, num_attention_heads: heads, num_key_value_heads: heads, num_hidden_layers: layers,
      intermediate_size: mlp, vocab_size: vocab, mask_token_id: vocab - 1, eos_token_id: vocab - 2, pad_token_id: vocab - 2,
      bos_token_id: vocab - 3, max_position_embeddings: 4096 },
  });
  const prompt = Array.from({ length: 32 }, (_, i) => (i * 37) % (vocab - 8));
  const rows: [string, GenerateOptions][] = [
    ['vanilla, schedule (steps = genLength / 2)', { strategy: 'vanilla', steps: genLength / 2 }],
    ['prefix-cache, tau 0.9', { strategy: 'prefix-cache', threshold: 0.9 }],
    ['dual-cache, tau 0.9', { strategy: 'dual-cache', threshold: 0.9 }],
    ['streaming, tau 0.9, w 32, a 0.3, no exit', { strategy: 'streaming', window: 32, alpha: 0.3, earlyExit: false }],
  ];
  console.log(`d_model ${d}, ${layers} layers, ${heads} heads, vocab ${vocab}, BF16, gen ${genLength}, block 32, ` +
    `${threads ?? os.cpus().length} threads, best of ${repeat}`);
  console.log('| strategy | LLaDA NFE | LLaDA tok/s | Dream NFE | Dream tok/s | Dream / LLaDA |');
  console.log('|---|---|---|---|---|---|');
  const models = { llada: await loadModel(dirs.llada, { threads }), dream: await loadModel(dirs.dream, { threads }) };
  try {
    for (const [name, o] of rows) {
      const out: Record<string, { nfe: number; tps: number }> = {};
      for (const family of ['llada', 'dream'] as const) {
        let best = 0;
        let nfe = 0;
        for (let r = 0; r < repeat; r++) {
          const res = await models[family].generate(prompt, { ...o, genLength, blockLength: 32 });
          best = Math.max(best, res.stats.tokensPerSecond);
          nfe = res.stats.nfe;
        }
        out[family] = { nfe, tps: best };
      }
      const { llada, dream } = out;
      console.log(`| ${name} | ${llada.nfe} | ${llada.tps.toFixed(1)} | ${dream.nfe} | ${dream.tps.toFixed(1)} | ${(dream.tps / llada.tps).toFixed(2)} |`);
    }
  } finally {
    models.llada.dispose();
    models.dream.dispose();
    removeDir(root);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
