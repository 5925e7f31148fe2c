// Tiny Dream checkpoints for decoding tests, in the exact Dream layout (writeTinyDream),
// made non-degenerate the way fixtures.ts does it for LLaDA: the mask token's LM-head row
// is zeroed (a random model would otherwise often propose the mask itself) and the
// query/key projections are scaled up so that attention is sharp and position-dependent.
import * as path from 'path';
import { TensorSpec, writeSafetensors, writeTinyDream } from './checkpoint';
import type { DecodingFixtureOptions } from './fixtures';

/** Same width and depth as the LLaDA decoding fixture, with GQA (4 heads over 2 KV heads). */
export const DREAM_DECODING_CONFIG = {
  hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 3, intermediate_size: 96,
};

export function writeDecodingDream(dir: string, opts: DecodingFixtureOptions = {}): void {
  const ckpt = writeTinyDream(dir, { ...opts, config: { ...DREAM_DECODING_CONFIG, ...opts.config }, shards: 1 });
  const maskId = ckpt.config.mask_token_id as number;
  const d = ckpt.config.hidden_size as number;
  const headName = ckpt.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const eos = (typeof opts.generationEos === 'number' ? opts.generationEos : ckpt.config.eos_token_id) as number;
  const specs: Record<string, TensorSpec> = {};
  for (const [name, t] of Object.entries(ckpt.tensors)) {
    const data = new Float32Array(t.data);
    if (name === headName) data.fill(0, maskId * d, (maskId + 1) * d);
    if (name === headName && opts.eosLike !== undefined) {
      for (let i = 0; i < d; i++) data[eos * d + i] = 1.05 * data[opts.eosLike * d + i];
    }
    if (/\.(q_proj|k_proj)\.(weight|bias)$/.test(name)) for (let i = 0; i < data.length; i++) data[i] *= 4;
    specs[name] = { dtype: ckpt.dtype, shape: t.shape, data };
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), specs, { format: 'pt' });
}
