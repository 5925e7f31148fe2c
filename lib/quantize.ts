// `streaming-dllm quantize DIR OUT`: writes a Q8_0 copy of a LLaDA or Dream checkpoint that
// loadModel(OUT) loads directly (no quantization at load).
//
// Format (cpp/dtype.h, cpp/model.h): every linear weight `<name>` [rows, cols] of the layers
// (q/k/v/o projections, gate/up/down) and the LM head unless tied to the embedding is
// written as `<name>` I8 [rows, cols] plus `<name>.q8_scales` F32 [rows, ceil(cols / 32)]:
// int8 in groups of 32 along a row, scale = max|w| / 127, q = round-half-even(w / scale).
// Everything else (embedding, norms, biases) is copied as stored. Tensor data starts on
// 8-byte boundaries; each file's __metadata__ says "sdllm_quantization": "q8_0", and
// config.json gets "sdllm_quantization": {"format": "q8_0", "group_size": 32, ...}.
// Shards keep their names and their tensors (the index is rewritten with the scales).
// Other files (tokenizer, generation config, ...) are copied. Only OUT is written.
//
// The arithmetic is that of q8_quantize_row in cpp/dtype.h, in float32 through
// Math.fround, so the bytes equal those of loadModel(DIR, { weights: 'q8' }).
import * as fs from 'fs';
import * as path from 'path';

export const Q8_GROUP = 32;

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

interface Header {
  entries: Map<string, Entry>;
  dataStart: number; // byte offset of the data section in the file
}

export interface QuantizeReport {
  out: string;
  files: string[];
  quantized: string[];
  bytesIn: number;
  bytesOut: number;
  seconds: number;
}

function readHeader(file: string): Header {
  const fd = fs.openSync(file, 'r');
  try {
    const n8 = Buffer.alloc(8);
    if (fs.readSync(fd, n8, 0, 8, 0) !== 8) throw new Error(`${file}: too short for a safetensors header`);
    const n = Number(n8.readBigUInt64LE(0));
    if (n > 100 * 1024 * 1024) throw new Error(`${file}: header size ${n} is larger than 100 MB`);
    const h = Buffer.alloc(n);
    if (fs.readSync(fd, h, 0, n, 8) !== n) throw new Error(`${file}: truncated header`);
    const json = JSON.parse(h.toString('utf8')) as Record<string, unknown>;
    const entries = new Map<string, Entry>();
    for (const [name, v] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      entries.set(name, v as Entry);
    }
    return { entries, dataStart: 8 + n };
  } finally {
    fs.closeSync(fd);
  }
}

/** The names of the tensors to quantize, from config.json. */
function linearNames(config: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  if (config.model_type === 'llada') {
    const layers = Number(config.n_layers);
    for (let i = 0; i < layers; i++) {
      const p = `model.transformer.blocks.${i}.`;
      for (const s of ['q_proj', 'k_proj', 'v_proj', 'attn_out', 'ff_proj', 'up_proj', 'ff_out']) names.add(`${p}${s}.weight`);
    }
    if (!config.weight_tying) names.add('model.transformer.ff_out.weight');
  } else if (config.model_type === 'Dream') {
    const layers = Number(config.num_hidden_layers);
    for (let i = 0; i < layers; i++) {
      const p = `model.layers.${i}.`;
      for (const s of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj',
        'mlp.up_proj', 'mlp.down_proj']) names.add(`${p}${s}.weight`);
    }
    if (!config.tie_word_embeddings) names.add('lm_head.weight');
  } else {
    throw new Error(`unsupported model_type ${JSON.stringify(config.model_type)} (supported: "llada", "Dream")`);
  }
  return names;
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Widens `count` values of dtype at `src` (raw little-endian bytes) into dst. */
function widen(dtype: string, src: Buffer, count: number, dst: Float32Array): void {
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) dst[i] = src.readFloatLE(4 * i);
  } else if (dtype === 'BF16') {
    const dv = new Uint32Array(dst.buffer, dst.byteOffset, count);
    for (let i = 0; i < count; i++) dv[i] = (src[2 * i] | (src[2 * i + 1] << 8)) << 16;
  } else if (dtype === 'F16') {
    for (let i = 0; i < count; i++) dst[i] = f16ToF32(src[2 * i] | (src[2 * i + 1] << 8));
  } else {
    throw new Error(`cannot quantize dtype ${dtype}`);
  }
}

/**
 * Q8_0 of one row, bit for bit as q8_quantize_row (cpp/dtype.h): q[cols], scales[groups].
 * Exported for the tests.
 */
export function quantizeRow(x: Float32Array, q: Int8Array, scales: Float32Array): void {
  const n = x.length;
  for (let g0 = 0, gi = 0; g0 < n; g0 += Q8_GROUP, gi++) {
    const end = Math.min(n, g0 + Q8_GROUP);
    let amax = 0;
    for (let c = g0; c < end; c++) {
      const a = Math.abs(x[c]);
      if (a > amax) amax = a;
    }
    const scale = Math.fround(amax / 127);
    const inv = scale !== 0 ? Math.fround(1 / scale) : 0;
    scales[gi] = scale;
    for (let c = g0; c < end; c++) {
      let v = Math.fround(x[c] * inv);
      if (v !== v) v = 0;
      v = v > 127 ? 127 : v < -127 ? -127 : v;
      // round half to even
      const f = Math.floor(v);
      const d = v - f;
      q[c] = d > 0.5 || (d === 0.5 && (f & 1) !== 0) ? f + 1 : f;
    }
  }
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

interface OutTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  offset: number;
}

/** Quantizes one safetensors file into another; returns the names written (for the index). */
function quantizeFile(src: string, dst: string, targets: Set<string>, done: string[]): string[] {
  const header = readHeader(src);
  const ordered = [...header.entries.entries()].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const layout: OutTensor[] = [];
  let off = 0;
  const push = (name: string, dtype: string, shape: number[], bytes: number) => {
    off = align8(off);
    layout.push({ name, dtype, shape, bytes, offset: off });
    off += bytes;
  };
  for (const [name, e] of ordered) {
    if (targets.has(name)) {
      if (e.shape.length !== 2 || !['F32', 'F16', 'BF16'].includes(e.dtype))
        throw new Error(`${src}: tensor '${name}' is ${e.dtype} ${JSON.stringify(e.shape)}; expected a 2-D F32/F16/BF16 weight`);
      const [rows, cols] = e.shape;
      push(name, 'I8', [rows, cols], rows * cols);
      push(`${name}.q8_scales`, 'F32', [rows, Math.ceil(cols / Q8_GROUP)], 4 * rows * Math.ceil(cols / Q8_GROUP));
    } else {
      push(name, e.dtype, e.shape, e.data_offsets[1] - e.data_offsets[0]);
    }
  }
  const json: Record<string, unknown> = { __metadata__: { format: 'pt', sdllm_quantization: 'q8_0' } };
  for (const t of layout) json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.offset, t.offset + t.bytes] };
  let text = JSON.stringify(json);
  while (text.length % 8) text += ' ';
  const headerBuf = Buffer.from(text, 'utf8');
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(headerBuf.length));

  const fin = fs.openSync(src, 'r');
  const fout = fs.openSync(dst, 'wx');
  try {
    let pos = 0;
    const write = (b: Buffer) => {
      fs.writeSync(fout, b, 0, b.length, pos);
      pos += b.length;
    };
    write(size);
    write(headerBuf);
    const dataStart = pos;
    const pad = (to: number) => {
      if (dataStart + to > pos) write(Buffer.alloc(dataStart + to - pos));
    };
    const chunk = 8 << 20;
    for (const t of layout) {
      if (t.name.endsWith('.q8_scales') && targets.has(t.name.slice(0, -'.q8_scales'.length))) continue; // with its values
      const e = header.entries.get(t.name)!;
      pad(t.offset);
      const inStart = header.dataStart + e.data_offsets[0];
      if (!targets.has(t.name)) {
        const total = e.data_offsets[1] - e.data_offsets[0];
        for (let done2 = 0; done2 < total; done2 += chunk) {
          const n = Math.min(chunk, total - done2);
          const b = Buffer.alloc(n);
          if (fs.readSync(fin, b, 0, n, inStart + done2) !== n) throw new Error(`${src}: truncated tensor '${t.name}'`);
          write(b);
        }
        continue;
      }
      const [rows, cols] = e.shape;
      const groups = Math.ceil(cols / Q8_GROUP);
      const elem = e.dtype === 'F32' ? 4 : 2;
      const rowsPer = Math.max(1, Math.floor(chunk / (cols * elem)));
      const scales = new Float32Array(rows * groups);
      const row = new Float32Array(cols);
      for (let r0 = 0; r0 < rows; r0 += rowsPer) {
        const nr = Math.min(rowsPer, rows - r0);
        const b = Buffer.alloc(nr * cols * elem);
        if (fs.readSync(fin, b, 0, b.length, inStart + r0 * cols * elem) !== b.length)
          throw new Error(`${src}: truncated tensor '${t.name}'`);
        const q = Buffer.alloc(nr * cols);
        const qi = new Int8Array(q.buffer, q.byteOffset, q.length);
        for (let r = 0; r < nr; r++) {
          widen(e.dtype, b.subarray(r * cols * elem), cols, row);
          quantizeRow(row, qi.subarray(r * cols, (r + 1) * cols), scales.subarray((r0 + r) * groups, (r0 + r + 1) * groups));
        }
        write(q);
      }
      const st = layout.find((x) => x.name === `${t.name}.q8_scales`)!;
      pad(st.offset);
      write(Buffer.from(scales.buffer, scales.byteOffset, scales.byteLength));
      done.push(t.name);
    }
  } finally {
    fs.closeSync(fin);
    fs.closeSync(fout);
  }
  return layout.map((t) => t.name);
}

/** Writes the Q8_0 checkpoint of `dir` into `out` (a new or empty directory). */
export function quantizeCheckpoint(dir: string, out: string): QuantizeReport {
  const t0 = Date.now();
  const src = path.resolve(dir);
  const dst = path.resolve(out);
  if (src === dst) throw new Error('OUT must differ from DIR');
  if (fs.existsSync(dst)) {
    if (!fs.statSync(dst).isDirectory()) throw new Error(`${dst} exists and is not a directory`);
    if (fs.readdirSync(dst).length > 0) throw new Error(`${dst} is not empty: OUT must be a new or empty directory`);
  }
  const configPath = path.join(src, 'config.json');
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  if (config.sdllm_quantization) throw new Error(`${configPath}: the checkpoint is already quantized`);
  const targets = linearNames(config);

  const single = path.join(src, 'model.safetensors');
  const indexPath = path.join(src, 'model.safetensors.index.json');
  let shards: string[];
  let index: { metadata?: unknown; weight_map: Record<string, string> } | null = null;
  if (fs.existsSync(single)) {
    shards = ['model.safetensors'];
  } else if (fs.existsSync(indexPath)) {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    shards = [...new Set(Object.values(index!.weight_map))].sort();
    for (const s of shards)
      if (s.includes('/') || s.includes('\\') || s === '.' || s === '..') throw new Error(`${indexPath}: invalid shard name ${s}`);
  } else {
    throw new Error(`${src}: no model.safetensors or model.safetensors.index.json`);
  }

  fs.mkdirSync(dst, { recursive: true });
  const quantized: string[] = [];
  const weightMap: Record<string, string> = {};
  let bytesIn = 0;
  let bytesOut = 0;
  for (const s of shards) {
    const names = quantizeFile(path.join(src, s), path.join(dst, s), targets, quantized);
    for (const n of names) weightMap[n] = s;
    bytesIn += fs.statSync(path.join(src, s)).size;
    bytesOut += fs.statSync(path.join(dst, s)).size;
  }
  const missing = [...targets].filter((n) => !quantized.includes(n));
  if (missing.length) throw new Error(`${src}: linear weights not found in the checkpoint: ${missing.slice(0, 5).join(', ')}`);
  if (index) {
    const total = bytesOut;
    fs.writeFileSync(path.join(dst, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: total, sdllm_quantization: 'q8_0' }, weight_map: weightMap }, null, 2));
  }
  // The other files of the directory, config.json with the marker.
  for (const f of fs.readdirSync(src)) {
    const p = path.join(src, f);
    if (f.endsWith('.safetensors') || f === 'model.safetensors.index.json' || !fs.statSync(p).isFile()) continue;
    if (f === 'config.json') continue;
    fs.copyFileSync(p, path.join(dst, f), fs.constants.COPYFILE_EXCL);
  }
  const marked = {
    ...config,
    sdllm_quantization: {
      format: 'q8_0',
      group_size: Q8_GROUP,
      scale_dtype: 'F32',
      lm_head: config.model_type === 'llada' ? !config.weight_tying : !config.tie_word_embeddings,
    },
  };
  fs.writeFileSync(path.join(dst, 'config.json'), JSON.stringify(marked, null, 2) + '\n');
  return { out: dst, files: shards, quantized, bytesIn, bytesOut, seconds: (Date.now() - t0) / 1000 };
}

/** The CLI entry: `streaming-dllm quantize DIR OUT`. */
export async function runQuantize(argv: string[]): Promise<number> {
  const positional = argv.filter((a) => !a.startsWith('-'));
  if (argv.includes('-h') || argv.includes('--help') || positional.length !== 2) {
    console.log('Usage: streaming-dllm quantize DIR OUT\n' +
      '  Writes a Q8_0 (8-bit, groups of 32) copy of the checkpoint in DIR into OUT (a new or empty\n' +
      '  directory); loadModel(OUT) then loads 8-bit weights directly (CPU backend).');
    return positional.length === 2 ? 0 : 2;
  }
  const r = quantizeCheckpoint(positional[0], positional[1]);
  console.error(`quantized ${r.quantized.length} tensors into ${r.out} (${r.files.length} file(s), ` +
    `${(r.bytesIn / 1e6).toFixed(1)} MB -> ${(r.bytesOut / 1e6).toFixed(1)} MB, ${r.seconds.toFixed(1)} s)`);
  return 0;
}
