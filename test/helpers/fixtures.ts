// Tiny LLaDA checkpoints for decoding tests. A random model often ranks the mask token
// first; the reference loops then never finish a block (LLaDA's own model never proposes
// it), so these fixtures zero the mask token's LM-head row: its logit is always 0 while
// the others spread with std ~2. They also scale the query/key projections up: with
// sharp, position-dependent attention, mask positions stop all predicting the same token,
// which would make token-for-token comparisons weak.
import * as path from 'path';
import { TensorSpec, TinyModelOptions, writeSafetensors, writeTinyLlada } from './checkpoint';

/** Larger than the loader's tiny default: 3 layers of width 64 give position-dependent outputs. */
export const DECODING_CONFIG = { d_model: 64, n_heads: 4, n_kv_heads: 4, n_layers: 3, mlp_hidden_size: 96 };

export interface DecodingFixtureOptions extends TinyModelOptions {
  /** Give EOS this token's LM-head row scaled by 1.05, so EOS wins wherever that token would. */
  eosLike?: number;
}

export function writeDecodingLlada(dir: string, opts: DecodingFixtureOptions = {}): void {
  const ckpt = writeTinyLlada(dir, { ...opts, config: { ...DECODING_CONFIG, ...opts.config }, shards: 1 });
  const maskId = ckpt.config.mask_token_id as number;
  const d = ckpt.config.d_model as number;
  const headName = ckpt.config.weight_tying ? 'model.transformer.wte.weight' : 'model.transformer.ff_out.weight';
  const specs: Record<string, TensorSpec> = {};
  for (const [name, t] of Object.entries(ckpt.tensors)) {
    const data = new Float32Array(t.data);
    if (name === headName) data.fill(0, maskId * d, (maskId + 1) * d);
    if (name === headName && opts.eosLike !== undefined) {
      const eos = ckpt.config.eos_token_id as number;
      for (let i = 0; i < d; i++) data[eos * d + i] = 1.05 * data[opts.eosLike * d + i];
    }
    if (/\.(q_proj|k_proj)\.weight$/.test(name)) for (let i = 0; i < data.length; i++) data[i] *= 4;
    specs[name] = { dtype: ckpt.dtype, shape: t.shape, data };
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), specs, { format: 'pt' });
}
