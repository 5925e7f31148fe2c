// Test-only: a literal float64 LLaDA / Dream forward in plain TypeScript, written from the
// block equations of checkpoints.md, with the reference code's cache semantics (prefix cache
// by concatenation, dual cache by in-place replacement of a range). Slow and obvious on
// purpose. Both families run the same block; Dream has Qwen2 names and q/k/v biases.
import * as fs from 'fs';
import * as path from 'path';
import { readCheckpoint, RefTensor } from './weights';

/** Tensor names of one family (checkpoints.md). */
interface Layout {
  embed: string;
  layer: (l: number) => { attnNorm: string; q: string; k: string; v: string; o: string; ffNorm: string; gate: string; up: string; down: string };
  finalNorm: string;
  head: string;
  qkvBias: boolean;
}

const LLADA_LAYOUT: Layout = {
  embed: 'model.transformer.wte.weight',
  layer: (l) => {
    const p = `model.transformer.blocks.${l}.`;
    return {
      attnNorm: `${p}attn_norm.weight`, q: `${p}q_proj`, k: `${p}k_proj`, v: `${p}v_proj`, o: `${p}attn_out.weight`,
      ffNorm: `${p}ff_norm.weight`, gate: `${p}ff_proj.weight`, up: `${p}up_proj.weight`, down: `${p}ff_out.weight`,
    };
  },
  finalNorm: 'model.transformer.ln_f.weight',
  head: 'model.transformer.ff_out.weight',
  qkvBias: false,
};

const DREAM_LAYOUT: Layout = {
  embed: 'model.embed_tokens.weight',
  layer: (l) => {
    const p = `model.layers.${l}.`;
    return {
      attnNorm: `${p}input_layernorm.weight`, q: `${p}self_attn.q_proj`, k: `${p}self_attn.k_proj`, v: `${p}self_attn.v_proj`,
      o: `${p}self_attn.o_proj.weight`, ffNorm: `${p}post_attention_layernorm.weight`, gate: `${p}mlp.gate_proj.weight`,
      up: `${p}mlp.up_proj.weight`, down: `${p}mlp.down_proj.weight`,
    };
  },
  finalNorm: 'model.norm.weight',
  head: 'lm_head.weight',
  qkvBias: true,
};

/** Keys (RoPE applied) and values of one layer, [rows][kvDim]. */
export interface LayerKV {
  k: Float64Array[];
  v: Float64Array[];
}

export interface RefForward {
  logits: Float64Array[]; // one row per input token, vocab entries
  kv: LayerKV[]; // per layer: the keys/values attended to (cache + new, after any replacement)
}

export class RefLLaDA {
  readonly family: 'llada' | 'dream';
  readonly d: number;
  readonly nHeads: number;
  readonly nKv: number;
  readonly hd: number;
  readonly nLayers: number;
  readonly vocab: number;
  readonly theta: number;
  readonly eps: number;
  readonly maskId: number;
  readonly eosId: number;
  private readonly t: Map<string, RefTensor>;
  private readonly tied: boolean;
  private readonly layout: Layout;

  constructor(dir: string) {
    const { config: c, tensors } = readCheckpoint(dir);
    this.t = tensors;
    if (c.model_type === 'Dream') {
      this.family = 'dream';
      this.layout = DREAM_LAYOUT;
      this.d = c.hidden_size;
      this.nHeads = c.num_attention_heads;
      this.nKv = c.num_key_value_heads ?? c.num_attention_heads;
      this.nLayers = c.num_hidden_layers;
      this.tied = !!c.tie_word_embeddings;
      // Dream's EOS comes from generation_config.json when present.
      const gen = path.join(dir, 'generation_config.json');
      const genEos = fs.existsSync(gen) ? JSON.parse(fs.readFileSync(gen, 'utf8')).eos_token_id : undefined;
      this.eosId = Array.isArray(genEos) ? genEos[0] : genEos ?? c.eos_token_id;
    } else {
      this.family = 'llada';
      this.layout = LLADA_LAYOUT;
      this.d = c.d_model;
      this.nHeads = c.n_heads;
      this.nKv = c.effective_n_kv_heads ?? c.n_kv_heads ?? c.n_heads;
      this.nLayers = c.n_layers;
      this.tied = !!c.weight_tying;
      this.eosId = c.eos_token_id;
    }
    this.hd = this.d / this.nHeads;
    this.vocab = c.vocab_size;
    this.theta = c.rope_theta;
    this.eps = c.rms_norm_eps;
    this.maskId = c.mask_token_id;
  }

  private w(name: string): RefTensor {
    const t = this.t.get(name);
    if (!t) throw new Error(`reference: missing ${name}`);
    return t;
  }

  /** y = W x (+ b when the family has q/k/v biases and `bias` names one). */
  private linear(x: Float64Array, w: RefTensor, rows = w.shape[0], bias?: RefTensor): Float64Array {
    const cols = w.shape[1];
    const y = new Float64Array(rows);
    for (let o = 0; o < rows; o++) {
      let s = 0;
      for (let i = 0; i < cols; i++) s += x[i] * w.data[o * cols + i];
      y[o] = bias ? s + bias.data[o] : s;
    }
    return y;
  }

  /** The q/k/v projection `name` (without .weight), with its bias in the Dream layout. */
  private proj(x: Float64Array, name: string): Float64Array {
    const w = this.w(`${name}.weight`);
    return this.linear(x, w, w.shape[0], this.layout.qkvBias ? this.w(`${name}.bias`) : undefined);
  }

  private rms(x: Float64Array, w: RefTensor): Float64Array {
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + this.eps);
    return x.map((v, i) => v * r * w.data[i]);
  }

  private rope(x: Float64Array, heads: number, pos: number): Float64Array {
    const out = new Float64Array(x);
    const half = this.hd / 2;
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < half; j++) {
        const invFreq = Math.fround(1 / Math.fround(Math.pow(this.theta, Math.fround((2 * j) / this.hd))));
        const angle = Math.fround(pos * invFreq);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = x[h * this.hd + j];
        const b = x[h * this.hd + j + half];
        out[h * this.hd + j] = a * c - b * s;
        out[h * this.hd + j + half] = b * c + a * s;
      }
    }
    return out;
  }

  /**
   * One forward pass. `past` (per layer) is concatenated before the new rows, unless
   * `replaceStart` is given: then the new rows overwrite past rows [replaceStart, +n) in place.
   */
  forward(tokens: ArrayLike<number>, positions: ArrayLike<number>, past?: LayerKV[], replaceStart?: number): RefForward {
    const rows = tokens.length;
    const wte = this.w(this.layout.embed);
    let x: Float64Array[] = Array.from({ length: rows }, (_, i) => wte.data.slice(tokens[i] * this.d, (tokens[i] + 1) * this.d));
    const kvOut: LayerKV[] = [];
    const group = this.nHeads / this.nKv;
    for (let l = 0; l < this.nLayers; l++) {
      const n = this.layout.layer(l);
      const h = x.map((r) => this.rms(r, this.w(n.attnNorm)));
      const q = h.map((r, i) => this.rope(this.proj(r, n.q), this.nHeads, positions[i]));
      const k = h.map((r, i) => this.rope(this.proj(r, n.k), this.nKv, positions[i]));
      const v = h.map((r) => this.proj(r, n.v));
      let keys: Float64Array[];
      let values: Float64Array[];
      if (past && replaceStart !== undefined) {
        keys = past[l].k;
        values = past[l].v;
        for (let i = 0; i < rows; i++) {
          keys[replaceStart + i] = k[i];
          values[replaceStart + i] = v[i];
        }
      } else {
        keys = [...(past ? past[l].k : []), ...k];
        values = [...(past ? past[l].v : []), ...v];
      }
      kvOut.push({ k: keys, v: values });
      const att = q.map((qi) => {
        const out = new Float64Array(this.d);
        for (let hh = 0; hh < this.nHeads; hh++) {
          const kvh = Math.floor(hh / group);
          const scores = keys.map((kj) => {
            let s = 0;
            for (let c = 0; c < this.hd; c++) s += qi[hh * this.hd + c] * kj[kvh * this.hd + c];
            return s / Math.sqrt(this.hd);
          });
          const m = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - m));
          const z = e.reduce((a, b) => a + b, 0);
          for (let j = 0; j < keys.length; j++) {
            for (let c = 0; c < this.hd; c++) out[hh * this.hd + c] += (e[j] / z) * values[j][kvh * this.hd + c];
          }
        }
        return out;
      });
      x = x.map((r, i) => {
        const o = this.linear(att[i], this.w(n.o));
        return r.map((val, c) => val + o[c]);
      });
      x = x.map((r) => {
        const n2 = this.rms(r, this.w(n.ffNorm));
        const g = this.linear(n2, this.w(n.gate));
        const u = this.linear(n2, this.w(n.up));
        const act = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
        const down = this.linear(act, this.w(n.down));
        return r.map((val, c) => val + down[c]);
      });
    }
    const head = this.w(this.tied ? this.layout.embed : this.layout.head);
    const logits = x.map((r) => this.linear(this.rms(r, this.w(this.layout.finalNorm)), head, this.vocab));
    return { logits, kv: kvOut };
  }
}

/** Keeps the first `rows` keys/values of each layer (the reference's cache truncation). */
export function truncateKV(kv: LayerKV[], rows: number): LayerKV[] {
  return kv.map((l) => ({ k: l.k.slice(0, rows), v: l.v.slice(0, rows) }));
}

/** The same literal forward; a test of the Dream family names it so. */
export class RefDream extends RefLLaDA {}
