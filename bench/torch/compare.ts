// `npm run bench:torch`: tokens/s of this engine beside a small PyTorch LLaDA
// (bench/torch/llada_torch.py, Debian's python3-torch via /usr/bin/python3) on the same
// random LLaDA-layout checkpoints, the same prompt ids and the same decoding loops
// (`vanilla` and `prefix-cache`, LLaDA's fixed schedule with a fixed step count), with one
// and two threads, all interleaved in one run: each round runs every (engine, threads)
// once on the same item, so both see the same background load.
//
//   npm run bench:torch -- [--sizes S,M,L] [--rounds 5] [--threads 1,2] [--keep DIR] [--settle-ms 200] [--repeat 2]
//
// Checkpoints (BF16, written here into a temp dir): S ~1 M parameters (d_model 128),
// M ~32 M (d_model 512), L ~171 M (d_model 1024). Prints tokens/s, the ratio ours/torch,
// the GFLOP/s of the whole generation and per forward (FLOPs counted from the shapes,
// identical for both engines: both run the LM head on the block's masked rows only; "per
// forward" divides by the time inside the forward calls, without the decoding loop between
// them) beside the register-only FMA peak of the same threads (native measureFmaPeak, in the
// GEMM's vector width), and the engine's per-forward rate as a % of it; and this engine
// with weights 'q8' (8-bit linear weights), its tokens compared with the BF16 run's. Last,
// a line per speed bar of issue 17 that the run's sizes cover: met, or the cells under it
// (bench/torch/bars.ts).
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { BarCell, barSummary, peakSpreadWarning, truncated } from './bars';

interface Size {
  name: string;
  d: number;
  layers: number;
  heads: number;
  mlp: number;
  vocab: number;
  prompt: number;
  gen: number;
  block: number;
  steps: number;
}

const SIZES: Size[] = [
  { name: 'S', d: 128, layers: 4, heads: 4, mlp: 384, vocab: 512, prompt: 64, gen: 64, block: 32, steps: 32 },
  { name: 'M', d: 512, layers: 8, heads: 8, mlp: 1536, vocab: 4096, prompt: 64, gen: 64, block: 32, steps: 16 },
  { name: 'L', d: 1024, layers: 12, heads: 16, mlp: 2816, vocab: 8192, prompt: 64, gen: 32, block: 32, steps: 8 },
];
const STRATEGIES = ['vanilla', 'prefix-cache'] as const;

function params(s: Size): number {
  return s.layers * (4 * s.d * s.d + 3 * s.d * s.mlp) + 2 * s.vocab * s.d;
}

// --- checkpoint writer (LLaDA layout, BF16, seeded) ------------------------------------

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function writeCheckpoint(dir: string, s: Size): void {
  fs.mkdirSync(dir, { recursive: true });
  const mask = s.vocab - 1;
  const config = {
    model_type: 'llada', d_model: s.d, n_heads: s.heads, n_kv_heads: s.heads, n_layers: s.layers,
    mlp_hidden_size: s.mlp, vocab_size: s.vocab, embedding_size: s.vocab, rope_theta: 10000.0, rms_norm_eps: 1e-5,
    weight_tying: false, include_bias: false, include_qkv_bias: false, block_type: 'llama', activation_type: 'silu',
    layer_norm_type: 'rms', mask_token_id: mask, eos_token_id: mask - 1, pad_token_id: mask - 1,
    max_sequence_length: 4096,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const p = 'model.transformer.';
  const specs: Array<{ name: string; shape: number[]; std: number }> = [
    { name: `${p}wte.weight`, shape: [s.vocab, s.d], std: 1 },
    { name: `${p}ln_f.weight`, shape: [s.d], std: 0 },
    { name: `${p}ff_out.weight`, shape: [s.vocab, s.d], std: 2 / Math.sqrt(s.d) },
  ];
  for (let i = 0; i < s.layers; i++) {
    const b = `${p}blocks.${i}.`;
    specs.push({ name: `${b}attn_norm.weight`, shape: [s.d], std: 0 }, { name: `${b}ff_norm.weight`, shape: [s.d], std: 0 });
    for (const [n, r, c] of [['q_proj', s.d, s.d], ['k_proj', s.d, s.d], ['v_proj', s.d, s.d], ['attn_out', s.d, s.d],
      ['ff_proj', s.mlp, s.d], ['up_proj', s.mlp, s.d], ['ff_out', s.d, s.mlp]] as const)
      specs.push({ name: `${b}${n}.weight`, shape: [r, c], std: 1 / Math.sqrt(c) });
  }
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const t of specs) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + 2 * n] };
    off += 2 * n;
  }
  let text = JSON.stringify(header);
  while (text.length % 8) text += ' ';
  const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'w');
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(text.length));
  fs.writeSync(fd, size);
  fs.writeSync(fd, Buffer.from(text));
  const r = rng(17 + s.d);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (const t of specs) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const buf = Buffer.alloc(2 * n);
    for (let i = 0; i < n; i++) {
      // uniform with the given std (norm weights: 1 + small noise)
      f[0] = t.std === 0 ? 1 + 0.1 * (r() - 0.5) : (r() - 0.5) * Math.sqrt(12) * t.std;
      buf.writeUInt16LE(((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) & 0xffff, 2 * i);
    }
    fs.writeSync(fd, buf);
  }
  fs.closeSync(fd);
}

// --- FLOPs of one generation ------------------------------------------------------------

/** FLOPs of one forward over `rows` rows attending to `keys` keys, head on `pred` rows. */
function forwardFlops(s: Size, rows: number, keys: number, pred: number): number {
  const linear = 2 * rows * s.layers * (4 * s.d * s.d + 3 * s.d * s.mlp);
  const attn = 4 * rows * keys * s.d * s.layers;
  return linear + attn + 2 * pred * s.d * s.vocab;
}

/** FLOPs of a whole generation with the fixed schedule (both engines run the same forwards). */
function generationFlops(s: Size, strategy: string): number {
  const N = s.prompt + s.gen;
  const blocks = s.gen / s.block;
  const per = s.steps / blocks;
  let total = 0;
  for (let b = 0; b < blocks; b++) {
    const start = s.prompt + b * s.block;
    const base = Math.floor(s.block / per);
    const rem = s.block % per;
    let masked = s.block;
    for (let i = 0; i < per; i++) {
      if (strategy === 'vanilla' || i === 0) total += forwardFlops(s, N, N, masked);
      else total += forwardFlops(s, N - start, N, masked);
      masked -= base + (i < rem ? 1 : 0);
    }
  }
  return total;
}

// --- workers ----------------------------------------------------------------------------

class Worker {
  private lines: readline.Interface;
  private waiting: Array<(v: Record<string, unknown>) => void> = [];
  constructor(readonly label: string, private proc: ChildProcessWithoutNullStreams) {
    this.lines = readline.createInterface({ input: proc.stdout });
    this.lines.on('line', (l) => this.waiting.shift()?.(JSON.parse(l)));
    proc.stderr.on('data', (d) => process.stderr.write(`[${label}] ${d}`));
  }
  call(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.waiting.push((v) => (v.error ? reject(new Error(`${this.label}: ${v.error}`)) : resolve(v)));
      this.proc.stdin.write(JSON.stringify(req) + '\n');
    });
  }
  close(): void {
    this.proc.stdin.end();
  }
}

/**
 * Seconds spent in the model's forward calls, for "GFLOP/s per forward": every forward of a
 * generation goes through the native model's forwardBatch (lib/scheduler.ts), timed here
 * from the call to its promise settling (the native forward, its confidence reduction and
 * the hop to and from the worker thread; not the block loop's JavaScript between steps).
 */
let forwardSeconds = 0;
function timed<M extends object>(model: M): M {
  const native = (model as unknown as { native: { forwardBatch: (items: unknown[]) => Promise<unknown> } }).native;
  const forwardBatch = native.forwardBatch.bind(native);
  Object.defineProperty(native, 'forwardBatch', {
    value: async (items: unknown[]) => {
      const t0 = process.hrtime.bigint();
      try {
        return await forwardBatch(items);
      } finally {
        forwardSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
      }
    },
  });
  return model;
}

/** Worker mode: this engine with a fixed pool size (the pool is process-wide). */
async function runWorker(threads: number): Promise<void> {
  const { loadModel } = await import('../../lib');
  const models = new Map<string, Awaited<ReturnType<typeof loadModel>>>();
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const req = JSON.parse(line);
    let out: Record<string, unknown>;
    try {
      if (req.cmd === 'load') {
        models.set(req.dir, timed(await loadModel(req.dir, { threads, backend: 'cpu' })));
        models.set(`${req.dir}|q8`, timed(await loadModel(req.dir, { threads, weights: 'q8' })));
        out = { ok: true };
      } else {
        const m = models.get(req.weights === 'q8' ? `${req.dir}|q8` : req.dir)!;
        // `repeat` generations back to back, the fastest counts (the torch worker does the same).
        let best = Infinity;
        let bestForwards = Infinity;
        let r: Awaited<ReturnType<typeof m.generate>> | undefined;
        for (let i = 0; i < (req.repeat ?? 1); i++) {
          forwardSeconds = 0;
          const t0 = process.hrtime.bigint();
          r = await m.generate(req.prompt, {
            strategy: req.strategy, genLength: req.gen, blockLength: req.block, steps: req.steps, threshold: null,
          });
          best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
          bestForwards = Math.min(bestForwards, forwardSeconds);
        }
        out = { tokens: Array.from(r!.tokens), seconds: best, forwardSeconds: bestForwards, nfe: r!.stats.nfe };
      }
    } catch (e) {
      out = { error: (e as Error).message };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  }
  for (const m of models.values()) m.dispose();
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string, def: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
  };
  if (argv.includes('--worker')) return runWorker(Number(arg('--threads', '1')));
  const sizes = arg('--sizes', 'S,M,L').split(',').map((n) => SIZES.find((s) => s.name === n)!).filter(Boolean);
  const rounds = Number(arg('--rounds', '5'));
  const threadList = arg('--threads', '1,2').split(',').map(Number);
  const python = arg('--python', '/usr/bin/python3');
  const keep = arg('--keep', '');
  // A pause before each timed call: the previous worker's threads (OpenBLAS's pool spins
  // for a while after its last call) must not run beside the next one's.
  const settleMs = Number(arg('--settle-ms', '200'));
  // Each timed call runs the generation this many times back to back and reports the
  // fastest: the first of them runs on caches the other engine's worker just used.
  const repeat = Number(arg('--repeat', '2'));
  const root = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'sdllm-bench-torch-'));

  const { native } = await import('../../lib/native');
  const peak = new Map<number, number>();
  const measure = (native as unknown as { measureFmaPeak?: (o: { threads: number; seconds: number }) => Promise<number> })
    .measureFmaPeak;

  const dirs = new Map<string, string>();
  for (const s of sizes) {
    const dir = path.join(root, `llada-${s.name}`);
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) writeCheckpoint(dir, s);
    dirs.set(s.name, dir);
    console.error(`checkpoint ${s.name}: ${(params(s) / 1e6).toFixed(1)} M parameters in ${dir}`);
  }
  type Engine = 'ours' | 'q8' | 'torch';
  const workers: Array<{ w: Worker; engine: Engine; threads: number }> = [];
  for (const t of threadList) {
    const ours = new Worker(`ours t${t}`, spawn(process.execPath, [__filename, '--worker', '--threads', String(t)]));
    workers.push({ w: ours, engine: 'ours', threads: t }, { w: ours, engine: 'q8', threads: t });
    // Debian's OpenBLAS (pthread build) keeps its own pool, as many threads as cores,
    // spinning between calls, beside torch's OpenMP threads. Left alone, a "1-thread" torch
    // run did its matmuls on both cores (and its spinning slowed whichever run came next,
    // ours included), and a 2-thread one put 4 busy threads on 2 cores (its 2-thread rows were
    // 2-20x slower than its 1-thread rows). So each torch worker gets its thread count for
    // both pools, and OpenMP threads that sleep when idle: measured, torch's best 2-thread
    // figures of the settings tried (BLAS on 1 thread; BLAS and OpenMP on 2, spinning).
    const env = { ...process.env, OPENBLAS_NUM_THREADS: String(t), OMP_NUM_THREADS: String(t), OMP_WAIT_POLICY: 'PASSIVE' };
    const script = path.join(__dirname, '..', '..', '..', 'bench', 'torch', 'llada_torch.py');
    workers.push({ w: new Worker(`torch t${t}`, spawn(python, [script], { env })), engine: 'torch', threads: t });
  }
  for (const { w, engine } of workers) if (engine !== 'q8') for (const dir of dirs.values()) await w.call({ cmd: 'load', dir });
  // The yardstick beside the cells: measured at the start and again after each round;
  // the highest reading counts (the stricter one: a reading taken while a
  // neighbour held a core would flatter the engine's % of it), and all are printed.
  const peakReadings = new Map<number, number[]>();
  const measurePeaks = async () => {
    if (!measure) return;
    for (const t of threadList) {
      const g = await measure({ threads: t, seconds: 0.3 });
      peakReadings.set(t, [...(peakReadings.get(t) ?? []), g]);
      peak.set(t, Math.max(peak.get(t) ?? 0, g));
    }
  };
  await measurePeaks();

  type Cell = { best: number; bestForwards: number; tokens: number[]; nfe: number };
  const cells = new Map<string, Cell>();
  const prompts = new Map<string, number[]>();
  for (const s of sizes) {
    const r = rng(99 + s.d);
    prompts.set(s.name, Array.from({ length: s.prompt }, () => Math.floor(r() * (s.vocab - 2))));
  }
  // Rounds outermost: each round runs every cell once, so a cell's samples are spread over
  // the whole run. With a cell's rounds back to back (as before 2026-12-08), a minute in
  // which the host took a vCPU could land on all of one cell's samples (an L two-thread
  // cell at 44% of the peak while the peak reading after it had halved), and the best of
  // them could not recover; now such a stretch costs each cell at most a round or two.
  for (let round = 0; round < rounds; round++) {
    for (const s of sizes)
      for (const strategy of STRATEGIES)
        for (const { w, engine, threads } of workers) {
          await new Promise((r) => setTimeout(r, settleMs));
          const out = await w.call({ cmd: 'run', dir: dirs.get(s.name), threads, prompt: prompts.get(s.name), strategy,
            gen: s.gen, block: s.block, steps: s.steps, weights: engine === 'q8' ? 'q8' : 'file', repeat });
          const key = `${s.name}|${strategy}|${threads}|${engine}`;
          const c = cells.get(key) ?? { best: Infinity, bestForwards: Infinity, tokens: out.tokens as number[], nfe: out.nfe as number };
          c.best = Math.min(c.best, out.seconds as number);
          c.bestForwards = Math.min(c.bestForwards, out.forwardSeconds as number);
          cells.set(key, c);
        }
    await measurePeaks();
  }
  for (const { w, engine } of workers) if (engine !== 'q8') w.close();

  const lines: string[] = [];
  const barCells: BarCell[] = [];
  lines.push(`| size | params | strategy | thr | NFE | ours tok/s | torch tok/s | ours/torch | ours GFLOP/s | torch GFLOP/s | ours GFLOP/s per forward | torch GFLOP/s per forward | FMA peak GFLOP/s | ours per forward, % of peak | same tokens | ours q8 tok/s | q8/torch | q8 same tokens |`);
  lines.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|');
  for (const s of sizes)
    for (const strategy of STRATEGIES)
      for (const t of threadList) {
        const a = cells.get(`${s.name}|${strategy}|${t}|ours`)!;
        const b = cells.get(`${s.name}|${strategy}|${t}|torch`)!;
        const q = cells.get(`${s.name}|${strategy}|${t}|q8`)!;
        const qsame = q.tokens.filter((v, i) => v === a.tokens[i]).length;
        const flops = generationFlops(s, strategy);
        const same = a.tokens.filter((v, i) => v === b.tokens[i]).length;
        // The bars judge the unrounded figures; the table prints them cut, never rounded up
        // (bars.ts: truncated), so that a cell under a bar never reads as meeting it.
        const ratioValue = b.best / a.best;
        const percentValue = peak.has(t) ? (100 * flops) / a.bestForwards / 1e9 / peak.get(t)! : undefined;
        const ratio = truncated(ratioValue, 2);
        const percent = percentValue === undefined ? undefined : truncated(percentValue, 1);
        barCells.push({ size: s.name, strategy, threads: t, ratio: ratioValue, percentOfPeak: percentValue });
        lines.push(`| ${s.name} (d ${s.d}) | ${(params(s) / 1e6).toFixed(1)} M | ${strategy} | ${t} | ${a.nfe}${a.nfe !== b.nfe ? `/${b.nfe}` : ''} | ` +
          `${(s.gen / a.best).toFixed(1)} | ${(s.gen / b.best).toFixed(1)} | ${ratio} | ` +
          `${(flops / a.best / 1e9).toFixed(1)} | ${(flops / b.best / 1e9).toFixed(1)} | ` +
          `${(flops / a.bestForwards / 1e9).toFixed(1)} | ${(flops / b.bestForwards / 1e9).toFixed(1)} | ${peak.has(t) ? peak.get(t)!.toFixed(0) : '-'} | ` +
          `${percent === undefined ? '-' : `${percent}%`} | ` +
          `${same}/${s.gen} | ${(s.gen / q.best).toFixed(1)} | ${(b.best / q.best).toFixed(2)} | ${qsame}/${s.gen} |`);
      }
  console.log(lines.join('\n'));
  console.log(`\nprompt ${sizes.map((s) => `${s.name}: ${s.prompt} ids, gen ${s.gen}, block ${s.block}, ${s.steps} steps`).join('; ')}; ` +
    `best of ${rounds} interleaved rounds of ${repeat} back-to-back generations each; tokens/s = gen / seconds of the whole generate call; ` +
    `GFLOP/s = the generation's forward FLOPs / those seconds; "per forward": / the seconds inside the forward calls only ` +
    `(this engine: its native forward with the confidence reduction, timed around the native call; PyTorch: its forward, without the softmax).`);
  if (peakReadings.size > 0) {
    const spread = [...peakReadings].map(([t, g]) => `${t} thread${t > 1 ? 's' : ''}: ${g.map((v) => v.toFixed(0)).join(', ')}`);
    console.log(`FMA peak readings (GFLOP/s, at the start and after each round; "% of peak" divides by the highest): ${spread.join('; ')}.`);
    const warning = peakSpreadWarning(peakReadings);
    if (warning) console.log(warning);
  }
  for (const line of barSummary(barCells)) console.log(line);
  if (!keep) fs.rmSync(root, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
