// The 8B-size check: a random-weight checkpoint with LLaDA-8B's exact shapes (sharded
// BF16 safetensors), loaded as BF16 and as Q8_0 (weights: 'q8'): resident memory, load
// time and seconds per forward, each in a fresh process.
//
//   npm run build:ts
//   node dist/bench/native/llada8b.js write DIR          # ~16 GB of BF16 shards + index
//   node dist/bench/native/llada8b.js measure DIR [--weights file|q8] [--threads N] [--rows N] [--forwards N]
//
// GFLOP/s and % of the FMA peak are the median of the forwards after the first (the first
// one faults the KV cache and scratch in); on a shared host, ask for 5 or more.
//
// The weights are one 8 MiB block of seeded N(0, 0.02) BF16 values repeated (the shapes and
// bytes are what is measured, not the text); norms are 1.
import * as fs from 'fs';
import * as path from 'path';

const CONFIG = {
  model_type: 'llada', d_model: 4096, n_heads: 32, n_kv_heads: 32, n_layers: 32, mlp_hidden_size: 12288,
  vocab_size: 126464, embedding_size: 126464, rope_theta: 500000.0, rms_norm_eps: 1e-5, weight_tying: false,
  include_bias: false, include_qkv_bias: false, block_type: 'llama', activation_type: 'silu', layer_norm_type: 'rms',
  mask_token_id: 126336, eos_token_id: 126081, pad_token_id: 126081, max_sequence_length: 4096,
};

function tensors(): Array<{ name: string; shape: number[]; norm: boolean }> {
  const c = CONFIG;
  const p = 'model.transformer.';
  const t = [
    { name: `${p}wte.weight`, shape: [c.embedding_size, c.d_model], norm: false },
    { name: `${p}ln_f.weight`, shape: [c.d_model], norm: true },
    { name: `${p}ff_out.weight`, shape: [c.embedding_size, c.d_model], norm: false },
  ];
  for (let i = 0; i < c.n_layers; i++) {
    const b = `${p}blocks.${i}.`;
    t.push({ name: `${b}attn_norm.weight`, shape: [c.d_model], norm: true }, { name: `${b}ff_norm.weight`, shape: [c.d_model], norm: true });
    for (const [n, r, k] of [['q_proj', 4096, 4096], ['k_proj', 4096, 4096], ['v_proj', 4096, 4096], ['attn_out', 4096, 4096],
      ['ff_proj', 12288, 4096], ['up_proj', 12288, 4096], ['ff_out', 4096, 12288]] as const)
      t.push({ name: `${b}${n}.weight`, shape: [r, k], norm: false });
  }
  return t;
}

function write(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(CONFIG, null, 2));
  // A block of seeded normal values (Box-Muller), std 0.02, as BF16.
  const block = Buffer.alloc(8 << 20);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 0.5) / 4294967296;
  const f = new Float32Array(1);
  const w = new Uint32Array(f.buffer);
  for (let i = 0; i < block.length / 2; i++) {
    f[0] = 0.02 * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
    block.writeUInt16LE(w[0] >>> 16, 2 * i);
  }
  const one = Buffer.alloc(2 * 4096);
  for (let i = 0; i < 4096; i++) one.writeUInt16LE(0x3f80, 2 * i);
  const all = tensors();
  const shards = 4;
  const per = Math.ceil(all.length / shards);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let k = 0; k < shards; k++) {
    const part = all.slice(k * per, (k + 1) * per);
    const name = `model-${String(k + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const header: Record<string, unknown> = {};
    let off = 0;
    for (const t of part) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + 2 * n] };
      off += 2 * n;
      weightMap[t.name] = name;
    }
    total += off;
    let text = JSON.stringify(header);
    while (text.length % 8) text += ' ';
    const fd = fs.openSync(path.join(dir, name), 'w');
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(text.length));
    fs.writeSync(fd, size);
    fs.writeSync(fd, Buffer.from(text));
    for (const t of part) {
      let left = 2 * t.shape.reduce((a, b) => a * b, 1);
      if (t.norm) {
        fs.writeSync(fd, one, 0, left);
        continue;
      }
      while (left > 0) {
        const n = Math.min(left, block.length);
        fs.writeSync(fd, block, 0, n);
        left -= n;
      }
    }
    fs.closeSync(fd);
    console.error(`wrote ${name}`);
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 1));
}

function rssGb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1048576 : process.memoryUsage().rss / 2 ** 30;
}

async function measure(dir: string, weights: 'file' | 'q8', threads: number, rows: number, forwards: number): Promise<void> {
  const { native } = await import('../../lib/native');
  const t0 = Date.now();
  const m = await native.loadModel(path.resolve(dir), { threads, weights });
  const load = (Date.now() - t0) / 1000;
  const rssLoad = rssGb();
  const s = m.createSession(rows);
  const ids = Int32Array.from({ length: rows }, (_, i) => (i * 7919) % 126000);
  const req = {
    tokens: ids, positions: Int32Array.from({ length: rows }, (_, i) => i), cacheAttend: 0, attendSelf: true,
    predictRows: Int32Array.from({ length: Math.min(32, rows) }, (_, i) => i), confidence: 0 as const, temperature: 0,
    seed: 0, noiseCounter: 0, returnLogits: false,
  };
  const times: number[] = [];
  for (let i = 0; i < Math.max(2, forwards); i++) {
    const t = Date.now();
    await s.forward(req);
    times.push((Date.now() - t) / 1000);
  }
  // FLOPs counted from the shapes: the layers' GEMMs on every row, the LM head on the
  // predicted ones (attention over <= 128 rows is under 0.1% here and left out).
  const c = CONFIG;
  const layerParams = c.n_layers * (4 * c.d_model * c.d_model + 3 * c.d_model * c.mlp_hidden_size);
  const flops = 2 * layerParams * rows + 2 * c.vocab_size * c.d_model * req.predictRows.length;
  const measurePeak = (native as unknown as { measureFmaPeak?: (o: { threads: number; seconds: number }) => Promise<number> })
    .measureFmaPeak;
  const peak = measurePeak ? await measurePeak({ threads, seconds: 0.5 }) : NaN;  // after the forwards, same threads
  const warm = times.slice(1).sort((a, b) => a - b);
  const median = warm.length % 2 ? warm[(warm.length - 1) / 2] : (warm[warm.length / 2 - 1] + warm[warm.length / 2]) / 2;
  const gflops = flops / 1e9 / median;
  const out = {
    weights, dtype: m.info.dtype, threads, rows, loadSeconds: load, rssAfterLoadGb: +rssLoad.toFixed(2),
    rssAfterForwardGb: +rssGb().toFixed(2), forwardSeconds: times.map((x) => +x.toFixed(2)),
    weightBytesGb: +(m.info.weightBytes / 2 ** 30).toFixed(2), repackedGb: +(m.info.repackedBytes / 2 ** 30).toFixed(2),
    gflopsMedianWarm: +gflops.toFixed(1), fmaPeakGflops: +peak.toFixed(1), percentOfPeak: +(100 * gflops / peak).toFixed(1),
  };
  console.log(JSON.stringify(out));
  s.dispose();
  m.dispose();
}

async function main(): Promise<void> {
  const [cmd, dir, ...rest] = process.argv.slice(2);
  const arg = (n: string, d: string) => (rest.indexOf(n) >= 0 ? rest[rest.indexOf(n) + 1] : d);
  if (cmd === 'write' && dir) return write(dir);
  if (cmd === 'measure' && dir)
    return measure(dir, arg('--weights', 'file') as 'file' | 'q8', Number(arg('--threads', '2')), Number(arg('--rows', '32')),
      Number(arg('--forwards', '2')));
  console.error('usage: llada8b.js write DIR | measure DIR [--weights file|q8] [--threads N] [--rows N] [--forwards N]');
  process.exit(2);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
