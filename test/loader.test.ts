// loadModel through the native binding: tiny LLaDA and Dream checkpoints load in every
// dtype, single-file and sharded, and every malformed input of the checkpoint spec is
// rejected with a message naming the file (and the tensor where there is one).
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../lib/native';
import type { NativeModelInfo } from '../types/native';
import {
  StDType,
  TensorSpec,
  TinyCheckpoint,
  encodeSafetensors,
  makeTempDir,
  removeDir,
  shardName,
  writeRawSafetensors,
  writeTinyDream,
  writeTinyLlada,
} from './helpers/checkpoint';

let root: string;
let counter = 0;

beforeAll(() => {
  root = makeTempDir('sdllm-loader-');
});
afterAll(() => removeDir(root));

function freshDir(name: string): string {
  const dir = path.join(root, `${counter++}-${name}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function loadInfo(dir: string): Promise<NativeModelInfo> {
  const model = await native.loadModel(dir, { threads: 1 });
  try {
    return model.info;
  } finally {
    model.dispose();
  }
}

/** Loads `dir`, expecting a rejection whose message contains every needle. */
async function expectLoadError(dir: string, ...needles: Array<string | RegExp>): Promise<string> {
  let error: unknown;
  try {
    const model = await native.loadModel(dir, { threads: 1 });
    model.dispose();
  } catch (e) {
    error = e;
  }
  // Native errors come from another realm under jest, so check the shape, not instanceof.
  expect(error).toBeDefined();
  const message = String((error as { message?: unknown }).message);
  for (const n of needles) {
    if (typeof n === 'string') expect(message).toContain(n);
    else expect(message).toMatch(n);
  }
  return message;
}

const WTE = 'model.transformer.wte.weight';
const LN_F = 'model.transformer.ln_f.weight';
const HEAD = 'model.transformer.ff_out.weight';
const ATTN_NORM0 = 'model.transformer.blocks.0.attn_norm.weight';
const K_PROJ1 = 'model.transformer.blocks.1.k_proj.weight';

/** The tensors of a written checkpoint, ready to re-encode. */
function specsOf(ckpt: TinyCheckpoint): Record<string, TensorSpec> {
  const out: Record<string, TensorSpec> = {};
  for (const [name, t] of Object.entries(ckpt.tensors)) out[name] = { dtype: ckpt.dtype, shape: t.shape, data: t.data };
  return out;
}

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/**
 * A valid tiny LLaDA directory whose model.safetensors is then rewritten from a header and
 * data section that `edit` may change. Returns the directory and the file path.
 */
function lladaWithEditedFile(
  name: string,
  edit: (header: Header, data: Buffer) => { header: string | object; data: Buffer; declaredHeaderSize?: number } | void,
): { dir: string; file: string } {
  const dir = freshDir(name);
  const ckpt = writeTinyLlada(dir, { seed: 3 });
  const { header, data } = encodeSafetensors(specsOf(ckpt));
  const file = path.join(dir, 'model.safetensors');
  const edited = edit(header as Header, data) ?? { header, data };
  writeRawSafetensors(file, edited.header, edited.data, { declaredHeaderSize: edited.declaredHeaderSize });
  return { dir, file };
}

describe('successful loads', () => {
  const dtypes: StDType[] = ['F32', 'F16', 'BF16'];

  describe.each(dtypes)('LLaDA %s', (dtype) => {
    test.each([1, 3])('%i file(s)', async (shards) => {
      const dir = freshDir(`llada-${dtype}-${shards}`);
      const ckpt = writeTinyLlada(dir, { dtype, shards, seed: 11 });
      const info = await loadInfo(dir);
      expect(info).toMatchObject({
        family: 'llada',
        modelType: 'llada',
        dModel: 32,
        nHeads: 4,
        nKvHeads: 4,
        headDim: 8,
        nLayers: 2,
        mlpHidden: 64,
        vocabSize: 48,
        embeddingSize: 56,
        maxSequenceLength: 512,
        weightTying: false,
        qkvBias: false,
        maskTokenId: 47,
        eosTokenId: 46,
        padTokenId: 46,
        bosTokenId: -1,
        dtype,
      });
      expect(info.ropeTheta).toBeCloseTo(10000);
      expect(info.rmsNormEps).toBeCloseTo(1e-5, 10);
      expect(info.files).toEqual(shards === 1 ? ['model.safetensors'] : [1, 2, 3].map((k) => shardName(k, 3)));
      expect(info.weightBytes).toBe(ckpt.weightBytes);
    });
  });

  describe.each(dtypes)('Dream %s', (dtype) => {
    test.each([1, 3])('%i file(s)', async (shards) => {
      const dir = freshDir(`dream-${dtype}-${shards}`);
      const ckpt = writeTinyDream(dir, { dtype, shards, seed: 12, generationEos: 40 });
      const info = await loadInfo(dir);
      expect(info).toMatchObject({
        family: 'dream',
        modelType: 'Dream',
        dModel: 32,
        nHeads: 4,
        nKvHeads: 2,
        headDim: 8,
        nLayers: 2,
        mlpHidden: 64,
        vocabSize: 48,
        embeddingSize: 48,
        maxSequenceLength: 512,
        weightTying: false,
        qkvBias: true,
        maskTokenId: 47,
        eosTokenId: 40, // from generation_config.json, not config.json's 46
        padTokenId: 46,
        bosTokenId: 45,
        dtype,
      });
      expect(info.rmsNormEps).toBeCloseTo(1e-6, 12);
      expect(info.files).toHaveLength(shards);
      expect(info.weightBytes).toBe(ckpt.weightBytes);
    });
  });

  test('tied LLaDA: no ff_out.weight, the head is wte', async () => {
    const dir = freshDir('llada-tied');
    const ckpt = writeTinyLlada(dir, { tieWeights: true });
    expect(ckpt.tensors[HEAD]).toBeUndefined();
    const info = await loadInfo(dir);
    expect(info.weightTying).toBe(true);
    expect(info.weightBytes).toBe(ckpt.weightBytes);
  });

  test('tied Dream: no lm_head.weight', async () => {
    const dir = freshDir('dream-tied');
    writeTinyDream(dir, { tieWeights: true });
    expect((await loadInfo(dir)).weightTying).toBe(true);
  });

  test('LLaDA with GQA, QKV biases and no embedding_size', async () => {
    const dir = freshDir('llada-gqa');
    writeTinyLlada(dir, { config: { n_kv_heads: 2, include_qkv_bias: true, embedding_size: undefined } });
    const info = await loadInfo(dir);
    expect(info).toMatchObject({ nKvHeads: 2, qkvBias: true, embeddingSize: 48 });
  });

  test('LLaDA with n_kv_heads null means one KV head per head', async () => {
    const dir = freshDir('llada-kv-null');
    writeTinyLlada(dir, { config: { n_kv_heads: null } });
    expect((await loadInfo(dir)).nKvHeads).toBe(4);
  });

  test('Dream without generation_config.json takes eos from config.json', async () => {
    const dir = freshDir('dream-no-gen');
    writeTinyDream(dir, { generationEos: null });
    expect((await loadInfo(dir)).eosTokenId).toBe(46);
  });

  test('tensors listed out of offset order, __metadata__ and unused extra tensors are fine', async () => {
    const { dir } = lladaWithEditedFile('unsorted-ok', (header, data) => {
      const reversed: Record<string, unknown> = { __metadata__: { format: 'pt', note: 'x' } };
      for (const k of Object.keys(header).reverse()) reversed[k] = header[k];
      // An unused I64 buffer after the weights must not stop the load.
      const extra = Buffer.alloc(8);
      reversed['model.transformer.position_ids'] = { dtype: 'I64', shape: [1], data_offsets: [data.length, data.length + 8] };
      return { header: reversed, data: Buffer.concat([data, extra]) };
    });
    expect((await loadInfo(dir)).family).toBe('llada');
  });
});

describe('malformed safetensors files are rejected naming the file and tensor', () => {
  test('file shorter than 8 bytes', async () => {
    const dir = freshDir('short');
    writeTinyLlada(dir);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.from([1, 2, 3]));
    await expectLoadError(dir, path.join(dir, 'model.safetensors'), 'too short');
  });

  test('empty file', async () => {
    const dir = freshDir('empty');
    writeTinyLlada(dir);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.alloc(0));
    await expectLoadError(dir, 'model.safetensors', 'too short');
  });

  test('header size larger than the file', async () => {
    const { dir, file } = lladaWithEditedFile('header-size', (header, data) => ({
      header,
      data,
      declaredHeaderSize: 1e12,
    }));
    await expectLoadError(dir, file, 'header size 1000000000000 exceeds the file size');
  });

  test('header that is not JSON', async () => {
    const { dir, file } = lladaWithEditedFile('not-json', (_h, data) => ({ header: '{"a": this is not json}', data }));
    await expectLoadError(dir, file, 'header is not valid JSON', /at byte \d+/);
  });

  test('header that is JSON but not an object', async () => {
    const { dir, file } = lladaWithEditedFile('not-object', (_h, data) => ({ header: '[1, 2, 3]', data }));
    await expectLoadError(dir, file, 'not a JSON object');
  });

  test('duplicate tensor names in the header', async () => {
    const { dir, file } = lladaWithEditedFile('duplicate', (header, data) => {
      const text = JSON.stringify(header);
      const dup = `"${LN_F}": ${JSON.stringify(header[LN_F])}`;
      return { header: `{${dup}, ${text.slice(1)}`, data };
    });
    await expectLoadError(dir, file, `duplicate key "${LN_F}"`);
  });

  test.each(['dtype', 'shape', 'data_offsets'] as const)('entry missing %s', async (key) => {
    const { dir, file } = lladaWithEditedFile(`missing-${key}`, (header) => {
      delete (header[ATTN_NORM0] as Record<string, unknown>)[key];
    });
    await expectLoadError(dir, file, `tensor '${ATTN_NORM0}'`, `missing "${key}"`);
  });

  test('entry with wrong types', async () => {
    const { dir, file } = lladaWithEditedFile('wrong-types', (header) => {
      (header[ATTN_NORM0] as Record<string, unknown>).shape = '32';
    });
    await expectLoadError(dir, file, `tensor '${ATTN_NORM0}'`, '"shape" is not an array');
  });

  test('unknown dtype', async () => {
    const { dir, file } = lladaWithEditedFile('dtype-unknown', (header) => {
      header[LN_F].dtype = 'Q4_K';
    });
    await expectLoadError(dir, file, `tensor '${LN_F}'`, "unsupported dtype 'Q4_K'");
  });

  test('a weight in a dtype the engine cannot use', async () => {
    const { dir, file } = lladaWithEditedFile('dtype-i32', (header) => {
      header[LN_F].dtype = 'I32'; // same width as F32, so only the dtype is wrong
    });
    await expectLoadError(dir, file, `tensor '${LN_F}'`, "unsupported dtype 'I32'", 'F32, F16, BF16');
  });

  test('data_offsets beyond the data section', async () => {
    const { dir, file } = lladaWithEditedFile('beyond', (header, data) => {
      header[HEAD].data_offsets = [data.length - 4, data.length + 4];
    });
    await expectLoadError(dir, file, `tensor '${HEAD}'`, 'beyond the data section');
  });

  test('data_offsets with begin after end', async () => {
    const { dir, file } = lladaWithEditedFile('begin-after-end', (header) => {
      const [b, e] = header[LN_F].data_offsets;
      header[LN_F].data_offsets = [e, b];
    });
    await expectLoadError(dir, file, `tensor '${LN_F}'`, 'begin after end');
  });

  test('truncated file', async () => {
    const dir = freshDir('truncated');
    writeTinyLlada(dir);
    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expectLoadError(dir, file, /tensor 'model\.transformer\.[^']+'/, 'beyond the data section');
  });

  test('truncated inside the header', async () => {
    const dir = freshDir('truncated-header');
    writeTinyLlada(dir);
    const file = path.join(dir, 'model.safetensors');
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 100));
    await expectLoadError(dir, file, 'exceeds the file size');
  });

  test('byte length that does not match the shape', async () => {
    const { dir, file } = lladaWithEditedFile('length', (header) => {
      header[ATTN_NORM0].shape = [33];
    });
    await expectLoadError(dir, file, `tensor '${ATTN_NORM0}'`, 'byte length 128', 'prod(shape [33]) * 4 (F32) = 132');
  });

  test('shape whose byte count overflows 64 bits', async () => {
    const { dir, file } = lladaWithEditedFile('overflow', (header) => {
      header[ATTN_NORM0].shape = [2 ** 40, 2 ** 40];
    });
    await expectLoadError(dir, file, `tensor '${ATTN_NORM0}'`, '64 bits');
  });

  test('overlapping ranges', async () => {
    const { dir, file } = lladaWithEditedFile('overlap', (header) => {
      header[ATTN_NORM0].data_offsets = [64, 64 + 128]; // inside wte, which starts at 0
    });
    await expectLoadError(dir, file, `'${WTE}'`, `'${ATTN_NORM0}'`, 'overlap');
  });

  test('unsorted but overlapping ranges', async () => {
    const { dir, file } = lladaWithEditedFile('unsorted-overlap', (header) => {
      const [b] = header[LN_F].data_offsets;
      const reordered: Header = {};
      for (const k of Object.keys(header).reverse()) reordered[k] = header[k];
      // ln_f (listed first now) keeps its place; the head, listed before it, is moved onto it.
      reordered[HEAD].data_offsets = [b + 4, b + 4 + reordered[HEAD].shape[0] * reordered[HEAD].shape[1] * 4];
      return { header: reordered, data: Buffer.alloc(b + 4 + 56 * 32 * 4) };
    });
    await expectLoadError(dir, file, `'${LN_F}'`, `'${HEAD}'`, 'overlap');
  });
});

describe('checkpoints that do not match the config are rejected', () => {
  test('shape that does not match the config', async () => {
    const dir = freshDir('shape');
    writeTinyLlada(dir, { shapeOverrides: { [K_PROJ1]: [16, 32] } });
    await expectLoadError(dir, 'model.safetensors', `tensor '${K_PROJ1}'`, 'shape [16, 32]', 'expected [32, 32]');
  });

  test('transposed linear weight', async () => {
    const dir = freshDir('transposed');
    writeTinyLlada(dir, { shapeOverrides: { 'model.transformer.blocks.0.ff_out.weight': [64, 32] } });
    await expectLoadError(dir, 'model.transformer.blocks.0.ff_out.weight', 'shape [64, 32]', 'expected [32, 64]');
  });

  test('missing tensor', async () => {
    const dir = freshDir('missing-tensor');
    writeTinyLlada(dir, { omitTensors: [K_PROJ1] });
    await expectLoadError(dir, 'model.safetensors', `tensor '${K_PROJ1}'`, 'missing');
  });

  test('missing LM head when weight_tying is false', async () => {
    const dir = freshDir('missing-head');
    writeTinyLlada(dir, { omitTensors: [HEAD] });
    await expectLoadError(dir, `tensor '${HEAD}'`, 'missing');
  });

  test('missing Dream QKV bias', async () => {
    const dir = freshDir('dream-missing-bias');
    writeTinyDream(dir, { omitTensors: ['model.layers.1.self_attn.v_proj.bias'] });
    await expectLoadError(dir, "tensor 'model.layers.1.self_attn.v_proj.bias'", 'missing');
  });

  test('Dream GQA shapes are checked against num_key_value_heads', async () => {
    const dir = freshDir('dream-gqa');
    writeTinyDream(dir, { shapeOverrides: { 'model.layers.0.self_attn.k_proj.weight': [32, 32] } });
    await expectLoadError(dir, "'model.layers.0.self_attn.k_proj.weight'", 'expected [16, 32]');
  });
});

describe('broken directories and configs are rejected', () => {
  test('missing config.json', async () => {
    const dir = freshDir('no-config');
    writeTinyLlada(dir);
    fs.unlinkSync(path.join(dir, 'config.json'));
    await expectLoadError(dir, path.join(dir, 'config.json'));
  });

  test('config.json that is not JSON', async () => {
    const dir = freshDir('bad-config');
    writeTinyLlada(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": "llada",');
    await expectLoadError(dir, 'config.json', 'invalid JSON', /at byte \d+/);
  });

  test('unknown model_type', async () => {
    const dir = freshDir('unknown-type');
    writeTinyLlada(dir, { config: { model_type: 'llama' } });
    await expectLoadError(dir, 'config.json', 'unsupported model_type "llama"', '"llada"', '"Dream"');
  });

  test('missing model_type', async () => {
    const dir = freshDir('no-type');
    writeTinyLlada(dir, { config: { model_type: undefined } });
    await expectLoadError(dir, 'config.json', 'unsupported model_type ""');
  });

  test.each<[Record<string, unknown>, string]>([
    [{ include_bias: true }, 'include_bias'],
    [{ block_type: 'sequential' }, 'block_type "sequential"'],
    [{ activation_type: 'swiglu' }, 'activation_type "swiglu"'],
    [{ layer_norm_type: 'default' }, 'layer_norm_type "default"'],
    [{ alibi: true }, 'alibi'],
    [{ d_model: 30 }, 'multiple'],
    [{ n_layers: '2' }, '"n_layers" must be an integer'],
    [{ n_layers: undefined }, 'required key "n_layers" is missing'],
    [{ mask_token_id: 48 }, 'mask_token_id 48 is outside the vocabulary'],
    [{ embedding_size: 40 }, 'embedding_size 40 is smaller than vocab_size 48'],
  ])('LLaDA config %j -> %s', async (override, needle) => {
    const dir = freshDir('llada-config');
    // Write weights for the default shapes: the config check must fire before any tensor is read.
    writeTinyLlada(dir);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    for (const [k, v] of Object.entries(override)) {
      if (v === undefined) delete config[k];
      else config[k] = v;
    }
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    await expectLoadError(dir, 'config.json', needle);
  });

  test('Dream with rope_scaling', async () => {
    const dir = freshDir('dream-rope-scaling');
    writeTinyDream(dir, { config: { rope_scaling: { type: 'yarn', factor: 4 } } });
    await expectLoadError(dir, 'config.json', 'rope_scaling');
  });

  test('no weights at all', async () => {
    const dir = freshDir('no-weights');
    writeTinyLlada(dir);
    fs.unlinkSync(path.join(dir, 'model.safetensors'));
    await expectLoadError(dir, 'model.safetensors');
  });

  test('missing shard file', async () => {
    const dir = freshDir('missing-shard');
    writeTinyLlada(dir, { shards: 3 });
    fs.unlinkSync(path.join(dir, shardName(2, 3)));
    await expectLoadError(dir, shardName(2, 3));
  });

  test('index pointing to a shard that lacks the tensor', async () => {
    const dir = freshDir('index-wrong-shard');
    writeTinyLlada(dir, { shards: 3 });
    const indexPath = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    index.weight_map[LN_F] = shardName(1, 3); // it was written to the last shard
    fs.writeFileSync(indexPath, JSON.stringify(index));
    await expectLoadError(dir, shardName(1, 3), `tensor '${LN_F}'`, 'missing');
  });

  test('index without an entry for a tensor', async () => {
    const dir = freshDir('index-missing-entry');
    writeTinyLlada(dir, { shards: 2 });
    const indexPath = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    delete index.weight_map[K_PROJ1];
    fs.writeFileSync(indexPath, JSON.stringify(index));
    await expectLoadError(dir, 'model.safetensors.index.json', `tensor '${K_PROJ1}'`, shardName(1, 2));
  });

  test('index naming a shard outside the directory', async () => {
    const dir = freshDir('index-escape');
    writeTinyLlada(dir, { shards: 2 });
    const indexPath = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    index.weight_map[K_PROJ1] = '../elsewhere.safetensors';
    fs.writeFileSync(indexPath, JSON.stringify(index));
    await expectLoadError(dir, 'model.safetensors.index.json', `'${K_PROJ1}'`, 'invalid shard');
  });

  test('a malformed shard is named', async () => {
    const dir = freshDir('bad-shard');
    writeTinyDream(dir, { shards: 2 });
    const shard = path.join(dir, shardName(2, 2));
    fs.writeFileSync(shard, fs.readFileSync(shard).subarray(0, 7));
    await expectLoadError(dir, shard, 'too short');
  });
});
