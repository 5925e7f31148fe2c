// Test helpers that write model checkpoints: safetensors files (well-formed or deliberately
// broken) and tiny LLaDA / Dream model directories in the exact Hugging Face layouts of the
// real models (docs: the project spec, shared/spec/checkpoints.md), with seeded random weights.
//
// Typical use:
//   const ckpt = writeTinyLlada(dir, { dtype: 'BF16', seed: 1 });
//   const model = await native.loadModel(dir, { threads: 1 });
//   // ckpt.tensors holds every weight as the engine will see it (already rounded to BF16),
//   // so a reference forward pass in TypeScript can use exactly the same numbers.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export type StDType = 'F32' | 'F16' | 'BF16';

/** A tensor to write: values in float32, converted to `dtype` on write. Row-major. */
export interface TensorSpec {
  dtype: StDType;
  shape: number[];
  data: Float32Array;
}

/** One header entry of a safetensors file, as the format spells it. */
export interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

// ---------------------------------------------------------------------------
// Scalar conversions

const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

function f32Bits(x: number): number {
  f32Buf[0] = x;
  return u32Buf[0];
}

function bitsF32(u: number): number {
  u32Buf[0] = u >>> 0;
  return f32Buf[0];
}

/** float32 -> bfloat16 bits, round-to-nearest-even (as torch casts); NaN stays NaN. */
export function f32ToBf16(x: number): number {
  const u = f32Bits(x);
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; the sum stays below 2^32.
  return ((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

export function bf16ToF32(h: number): number {
  return bitsF32((h & 0xffff) << 16);
}

/**
 * float32 -> IEEE half bits, round-to-nearest-even, with subnormals, overflow to
 * infinity and NaN preserved.
 */
export function f32ToF16(x: number): number {
  const u = f32Bits(x);
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: value = q * 2^-24 with q = m * 2^(e - 14), m the 24-bit significand.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1))) q++;
    return sign | q; // q may carry into 0x400, the smallest normal: still the right bits
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1))) q++; // a carry into exponent 31 gives infinity
  return sign | q;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function dtypeSize(dtype: StDType): number {
  return dtype === 'F32' ? 4 : 2;
}

/** Little-endian bytes of `data` in `dtype`. */
export function encodeTensorData(dtype: StDType, data: Float32Array): Buffer {
  const buf = Buffer.alloc(data.length * dtypeSize(dtype));
  for (let i = 0; i < data.length; i++) {
    if (dtype === 'F32') buf.writeFloatLE(data[i], 4 * i);
    else buf.writeUInt16LE(dtype === 'BF16' ? f32ToBf16(data[i]) : f32ToF16(data[i]), 2 * i);
  }
  return buf;
}

/** The values a reader of `dtype` sees: `data` rounded through that dtype. */
export function roundToDtype(dtype: StDType, data: Float32Array): Float32Array {
  if (dtype === 'F32') return Float32Array.from(data);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++)
    out[i] = dtype === 'BF16' ? bf16ToF32(f32ToBf16(data[i])) : f16ToF32(f32ToF16(data[i]));
  return out;
}

// ---------------------------------------------------------------------------
// safetensors writers

/**
 * The header object and data section of a safetensors file holding `tensors`, in
 * insertion order. Tests that need a broken file can edit the header and pass both
 * to writeRawSafetensors.
 */
export function encodeSafetensors(
  tensors: Record<string, TensorSpec>,
  metadata?: Record<string, string>,
): { header: Record<string, unknown>; data: Buffer } {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(`tensor ${name}: shape [${t.shape}] holds ${count} values, data has ${t.data.length}`);
    const bytes = encodeTensorData(t.dtype, t.data);
    const entry: HeaderEntry = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    header[name] = entry;
    chunks.push(bytes);
    offset += bytes.length;
  }
  return { header, data: Buffer.concat(chunks) };
}

/** Writes a well-formed safetensors file. */
export function writeSafetensors(
  file: string,
  tensors: Record<string, TensorSpec>,
  metadata?: Record<string, string>,
): void {
  const { header, data } = encodeSafetensors(tensors, metadata);
  writeRawSafetensors(file, header, data);
}

export interface RawSafetensorsOptions {
  /** Header size to declare in the first 8 bytes instead of the real one (to craft bad files). */
  declaredHeaderSize?: bigint | number;
  /** Pad the header with spaces to a multiple of 8 bytes, as real writers do (default true). */
  pad?: boolean;
}

/**
 * Writes `8-byte size | header | data` with no validation at all, so that tests can
 * craft malformed files: a header string that is not JSON, offsets past the end, etc.
 */
export function writeRawSafetensors(
  file: string,
  headerJson: string | object,
  dataBytes: Buffer,
  options: RawSafetensorsOptions = {},
): void {
  let text = typeof headerJson === 'string' ? headerJson : JSON.stringify(headerJson);
  let header = Buffer.from(text, 'utf8');
  if (options.pad !== false && header.length % 8 !== 0) {
    text += ' '.repeat(8 - (header.length % 8));
    header = Buffer.from(text, 'utf8');
  }
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(options.declaredHeaderSize ?? header.length));
  fs.writeFileSync(file, Buffer.concat([size, header, dataBytes]));
}

// ---------------------------------------------------------------------------
// Seeded random numbers

/** mulberry32: tiny, fast and good enough for test weights; the same seed gives the same weights. */
export class Prng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u = 1 - this.next(); // (0, 1]: log stays finite
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** `n` values ~ N(mean, std^2). */
  normals(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }
}

// ---------------------------------------------------------------------------
// Tiny model directories

export type ConfigObject = Record<string, unknown>;

/** Merges overrides into defaults; an override of `undefined` removes the key. */
function mergeConfig(defaults: ConfigObject, overrides: ConfigObject = {}): ConfigObject {
  const out: ConfigObject = { ...defaults };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * config.json of a tiny LLaDA model, with every key the real LLaDA-8B config has that the
 * engine reads. Defaults: d_model 32, 4 heads (MHA), 2 layers, MLP 64, vocab 48 with 56
 * embedding rows (more rows than tokens, as in the real model), mask 47, eos/pad 46.
 */
export function tinyLladaConfig(overrides: ConfigObject = {}): ConfigObject {
  return mergeConfig(
    {
      architectures: ['LLaDAModelLM'],
      model_type: 'llada',
      d_model: 32,
      n_heads: 4,
      n_kv_heads: 4,
      n_layers: 2,
      mlp_hidden_size: 64,
      mlp_ratio: 2,
      vocab_size: 48,
      embedding_size: 56,
      rope: true,
      rope_theta: 10000.0,
      rope_full_precision: true,
      rms_norm_eps: 1e-5,
      weight_tying: false,
      include_bias: false,
      include_qkv_bias: false,
      block_type: 'llama',
      activation_type: 'silu',
      layer_norm_type: 'rms',
      layer_norm_with_affine: true,
      alibi: false,
      attention_layer_norm: false,
      multi_query_attention: null,
      clip_qkv: null,
      scale_logits: false,
      input_emb_norm: false,
      mask_token_id: 47,
      eos_token_id: 46,
      pad_token_id: 46,
      max_sequence_length: 512,
    },
    overrides,
  );
}

/**
 * config.json of a tiny Dream (Qwen2-layout) model. Defaults: hidden 32, 4 heads with 2 KV
 * heads (GQA), 2 layers, MLP 64, vocab 48, mask 47, eos/pad 46, bos 45.
 */
export function tinyDreamConfig(overrides: ConfigObject = {}): ConfigObject {
  return mergeConfig(
    {
      architectures: ['DreamModel'],
      model_type: 'Dream',
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      hidden_act: 'silu',
      rope_theta: 10000.0,
      rope_scaling: null,
      rms_norm_eps: 1e-6,
      vocab_size: 48,
      tie_word_embeddings: false,
      use_sliding_window: false,
      mask_token_id: 47,
      pad_token_id: 46,
      bos_token_id: 45,
      eos_token_id: 46,
      max_position_embeddings: 512,
    },
    overrides,
  );
}

export interface TinyModelOptions {
  /** Merged into the tiny config; `undefined` values delete keys. Shapes follow the merged config. */
  config?: ConfigObject;
  /** Storage dtype of every tensor (default F32). */
  dtype?: StDType;
  /** PRNG seed (default 1). */
  seed?: number;
  /** > 1 writes model-0000k-of-0000n.safetensors plus model.safetensors.index.json (default 1). */
  shards?: number;
  /** Tie the LM head to the embedding (sets weight_tying / tie_word_embeddings, omits the head tensor). */
  tieWeights?: boolean;
  /** Standard deviation of the LM head (default 2/sqrt(d_model): logits of std about 2). */
  headStd?: number;
  /** Tensors to leave out of the files (to test missing-tensor errors). */
  omitTensors?: string[];
  /** Shapes to write instead of the config's for some tensors (to test shape checks). */
  shapeOverrides?: Record<string, number[]>;
  /** Dream only: eos_token_id of generation_config.json (default: the config's), null to omit the file. */
  generationEos?: number | number[] | null;
}

export interface TinyTensor {
  shape: number[];
  /** The values as stored, already rounded to the file dtype. */
  data: Float32Array;
}

export interface TinyCheckpoint {
  dir: string;
  config: ConfigObject;
  dtype: StDType;
  /** Every tensor written, by its checkpoint name, in file order. */
  tensors: Record<string, TinyTensor>;
  /** The safetensors file names, relative to dir. */
  files: string[];
  /** Total bytes of tensor data over all files. */
  weightBytes: number;
}

type Role = 'embedding' | 'head' | 'norm' | 'linear' | 'bias';
interface Planned {
  name: string;
  shape: number[];
  role: Role;
}

function num(config: ConfigObject, key: string, fallback?: number): number {
  const v = config[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`tiny config: "${key}" must be a number`);
}

/** Tensor names and shapes of an LLaDA checkpoint for `config`, in file order. */
export function lladaTensorShapes(config: ConfigObject): Array<{ name: string; shape: number[] }> {
  return planLlada(config).map(({ name, shape }) => ({ name, shape }));
}

/** Tensor names and shapes of a Dream checkpoint for `config`, in file order. */
export function dreamTensorShapes(config: ConfigObject): Array<{ name: string; shape: number[] }> {
  return planDream(config).map(({ name, shape }) => ({ name, shape }));
}

function planLlada(c: ConfigObject): Planned[] {
  const d = num(c, 'd_model');
  const heads = num(c, 'n_heads');
  const kvHeads = c.multi_query_attention === true ? 1 : num(c, 'n_kv_heads', heads);
  const kv = (kvHeads * d) / heads;
  const ff = num(c, 'mlp_hidden_size', num(c, 'mlp_ratio', 4) * d);
  const emb = num(c, 'embedding_size', num(c, 'vocab_size'));
  const p = 'model.transformer.';
  const out: Planned[] = [{ name: `${p}wte.weight`, shape: [emb, d], role: 'embedding' }];
  for (let i = 0; i < num(c, 'n_layers'); i++) {
    const b = `${p}blocks.${i}.`;
    out.push(
      { name: `${b}attn_norm.weight`, shape: [d], role: 'norm' },
      { name: `${b}ff_norm.weight`, shape: [d], role: 'norm' },
      { name: `${b}q_proj.weight`, shape: [d, d], role: 'linear' },
      { name: `${b}k_proj.weight`, shape: [kv, d], role: 'linear' },
      { name: `${b}v_proj.weight`, shape: [kv, d], role: 'linear' },
    );
    if (c.include_qkv_bias === true)
      out.push(
        { name: `${b}q_proj.bias`, shape: [d], role: 'bias' },
        { name: `${b}k_proj.bias`, shape: [kv], role: 'bias' },
        { name: `${b}v_proj.bias`, shape: [kv], role: 'bias' },
      );
    out.push(
      { name: `${b}attn_out.weight`, shape: [d, d], role: 'linear' },
      { name: `${b}ff_proj.weight`, shape: [ff, d], role: 'linear' },
      { name: `${b}up_proj.weight`, shape: [ff, d], role: 'linear' },
      { name: `${b}ff_out.weight`, shape: [d, ff], role: 'linear' },
    );
  }
  out.push({ name: `${p}ln_f.weight`, shape: [d], role: 'norm' });
  if (c.weight_tying !== true) out.push({ name: `${p}ff_out.weight`, shape: [emb, d], role: 'head' });
  return out;
}

function planDream(c: ConfigObject): Planned[] {
  const d = num(c, 'hidden_size');
  const heads = num(c, 'num_attention_heads');
  const kv = (num(c, 'num_key_value_heads', heads) * d) / heads;
  const ff = num(c, 'intermediate_size');
  const vocab = num(c, 'vocab_size');
  const out: Planned[] = [{ name: 'model.embed_tokens.weight', shape: [vocab, d], role: 'embedding' }];
  for (let i = 0; i < num(c, 'num_hidden_layers'); i++) {
    const b = `model.layers.${i}.`;
    out.push(
      { name: `${b}input_layernorm.weight`, shape: [d], role: 'norm' },
      { name: `${b}self_attn.q_proj.weight`, shape: [d, d], role: 'linear' },
      { name: `${b}self_attn.q_proj.bias`, shape: [d], role: 'bias' },
      { name: `${b}self_attn.k_proj.weight`, shape: [kv, d], role: 'linear' },
      { name: `${b}self_attn.k_proj.bias`, shape: [kv], role: 'bias' },
      { name: `${b}self_attn.v_proj.weight`, shape: [kv, d], role: 'linear' },
      { name: `${b}self_attn.v_proj.bias`, shape: [kv], role: 'bias' },
      { name: `${b}self_attn.o_proj.weight`, shape: [d, d], role: 'linear' },
      { name: `${b}post_attention_layernorm.weight`, shape: [d], role: 'norm' },
      { name: `${b}mlp.gate_proj.weight`, shape: [ff, d], role: 'linear' },
      { name: `${b}mlp.up_proj.weight`, shape: [ff, d], role: 'linear' },
      { name: `${b}mlp.down_proj.weight`, shape: [d, ff], role: 'linear' },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [d], role: 'norm' });
  if (c.tie_word_embeddings !== true) out.push({ name: 'lm_head.weight', shape: [vocab, d], role: 'head' });
  return out;
}

/** Shard file name in the Hugging Face pattern, e.g. model-00001-of-00003.safetensors. */
export function shardName(k: number, n: number): string {
  const pad = (x: number) => String(x).padStart(5, '0');
  return `model-${pad(k)}-of-${pad(n)}.safetensors`;
}

function writeCheckpoint(dir: string, config: ConfigObject, plan: Planned[], opts: TinyModelOptions): TinyCheckpoint {
  const dtype = opts.dtype ?? 'F32';
  const rng = new Prng(opts.seed ?? 1);
  const omit = new Set(opts.omitTensors ?? []);
  const dModel = plan[0].shape[1];
  const headStd = opts.headStd ?? 2 / Math.sqrt(dModel);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));

  const tensors: Record<string, TinyTensor> = {};
  const specs: Array<[string, TensorSpec]> = [];
  for (const t of plan) {
    const shape = opts.shapeOverrides?.[t.name] ?? t.shape;
    const n = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    switch (t.role) {
      case 'embedding': values = rng.normals(n, 1); break;
      case 'head': values = rng.normals(n, headStd); break;
      case 'norm': values = rng.normals(n, 0.1, 1); break; // near 1, but not exactly, to catch a dropped norm weight
      case 'bias': values = rng.normals(n, 0.1); break;
      default: values = rng.normals(n, 1 / Math.sqrt(shape[shape.length - 1]));
    }
    if (omit.has(t.name)) continue;
    tensors[t.name] = { shape, data: roundToDtype(dtype, values) };
    specs.push([t.name, { dtype, shape, data: values }]);
  }

  const shards = Math.max(1, Math.floor(opts.shards ?? 1));
  const files: string[] = [];
  let weightBytes = 0;
  if (shards === 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), Object.fromEntries(specs), { format: 'pt' });
    files.push('model.safetensors');
  } else {
    // Contiguous runs of tensors, balanced by bytes; every shard gets at least one tensor.
    const bytes = specs.map(([, s]) => s.data.length * dtypeSize(s.dtype));
    const total = bytes.reduce((a, b) => a + b, 0);
    const weightMap: Record<string, string> = {};
    let next = 0;
    let acc = 0;
    for (let k = 1; k <= shards; k++) {
      const part: Record<string, TensorSpec> = {};
      const leaveForOthers = shards - k;
      while (next < specs.length - leaveForOthers && (Object.keys(part).length === 0 || k === shards || acc < (total * k) / shards)) {
        part[specs[next][0]] = specs[next][1];
        acc += bytes[next];
        next++;
      }
      const name = shardName(k, shards);
      for (const key of Object.keys(part)) weightMap[key] = name;
      writeSafetensors(path.join(dir, name), part, { format: 'pt' });
      files.push(name);
    }
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
    );
  }
  for (const [, s] of specs) weightBytes += s.data.length * dtypeSize(s.dtype);
  return { dir, config, dtype, tensors, files, weightBytes };
}

/**
 * Writes config.json and the weights of a tiny LLaDA model to `dir` (created if needed)
 * in the exact LLaDA-8B layout: names under model.transformer., [out, in] linear weights,
 * an embedding of embedding_size rows and an untied LM head unless tieWeights.
 * Weights: linear ~ N(0, 1/fan_in), embedding ~ N(0, 1), norms ~ N(1, 0.1^2),
 * LM head ~ N(0, headStd^2).
 */
export function writeTinyLlada(dir: string, opts: TinyModelOptions = {}): TinyCheckpoint {
  const config = tinyLladaConfig({ ...(opts.tieWeights !== undefined ? { weight_tying: opts.tieWeights } : {}), ...opts.config });
  return writeCheckpoint(dir, config, planLlada(config), opts);
}

/**
 * Writes config.json, generation_config.json and the weights of a tiny Dream model in the
 * exact Dream/Qwen2 layout (model.layers.{i}.self_attn.{q,k,v}_proj with biases, GQA, lm_head).
 */
export function writeTinyDream(dir: string, opts: TinyModelOptions = {}): TinyCheckpoint {
  const config = tinyDreamConfig({
    ...(opts.tieWeights !== undefined ? { tie_word_embeddings: opts.tieWeights } : {}),
    ...opts.config,
  });
  const ckpt = writeCheckpoint(dir, config, planDream(config), opts);
  if (opts.generationEos !== null) {
    const eos = opts.generationEos ?? config.eos_token_id;
    fs.writeFileSync(
      path.join(dir, 'generation_config.json'),
      JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: eos, pad_token_id: config.pad_token_id }, null, 2),
    );
  }
  return ckpt;
}

/** A fresh empty directory under the OS temp dir; remove it with removeDir. */
export function makeTempDir(prefix = 'sdllm-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
