// Test-only: a literal float64 LLaDA forward in plain TypeScript, written from the block
// equations of checkpoints.md, with the reference code's cache semantics (prefix cache by
// concatenation, dual cache by in-place replacement of a range). Slow and obvious on purpose.
import { readCheckpoint, RefTensor } from './weights';

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

  constructor(dir: string) {
    const { config: c, tensors } = readCheckpoint(dir);
    this.t = tensors;
    this.d = c.d_model;
    this.nHeads = c.n_heads;
    this.nKv = c.effective_n_kv_heads ?? c.n_kv_heads ?? c.n_heads;
    this.hd = this.d / this.nHeads;
    this.nLayers = c.n_layers;
    this.vocab = c.vocab_size;
    this.theta = c.rope_theta;
    this.eps = c.rms_norm_eps;
    this.maskId = c.mask_token_id;
    this.eosId = c.eos_token_id;
    this.tied = !!c.weight_tying;
  }

  private w(name: string): RefTensor {
    const t = this.t.get(`model.transformer.${name}`);
    if (!t) throw new Error(`reference: missing ${name}`);
    return t;
  }

  private linear(x: Float64Array, w: RefTensor, rows = w.shape[0]): Float64Array {
    const cols = w.shape[1];
    const y = new Float64Array(rows);
    for (let o = 0; o < rows; o++) {
      let s = 0;
      for (let i = 0; i < cols; i++) s += x[i] * w.data[o * cols + i];
      y[o] = s;
    }
    return y;
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
    const n = tokens.length;
    const wte = this.w('wte.weight');
    let x: Float64Array[] = Array.from({ length: n }, (_, i) => wte.data.slice(tokens[i] * this.d, (tokens[i] + 1) * this.d));
    const kvOut: LayerKV[] = [];
    const group = this.nHeads / this.nKv;
    for (let l = 0; l < this.nLayers; l++) {
      const p = `blocks.${l}.`;
      const h = x.map((r) => this.rms(r, this.w(`${p}attn_norm.weight`)));
      const q = h.map((r, i) => this.rope(this.linear(r, this.w(`${p}q_proj.weight`)), this.nHeads, positions[i]));
      const k = h.map((r, i) => this.rope(this.linear(r, this.w(`${p}k_proj.weight`)), this.nKv, positions[i]));
      const v = h.map((r) => this.linear(r, this.w(`${p}v_proj.weight`)));
      let keys: Float64Array[];
      let values: Float64Array[];
      if (past && replaceStart !== undefined) {
        keys = past[l].k;
        values = past[l].v;
        for (let i = 0; i < n; i++) {
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
        const o = this.linear(att[i], this.w(`${p}attn_out.weight`));
        return r.map((val, c) => val + o[c]);
      });
      x = x.map((r) => {
        const n2 = this.rms(r, this.w(`${p}ff_norm.weight`));
        const g = this.linear(n2, this.w(`${p}ff_proj.weight`));
        const u = this.linear(n2, this.w(`${p}up_proj.weight`));
        const act = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
        const down = this.linear(act, this.w(`${p}ff_out.weight`));
        return r.map((val, c) => val + down[c]);
      });
    }
    const head = this.tied ? this.w('wte.weight') : this.w('ff_out.weight');
    const logits = x.map((r) => this.linear(this.rms(r, this.w('ln_f.weight')), head, this.vocab));
    return { logits, kv: kvOut };
  }
}

/** Keeps the first `rows` keys/values of each layer (the reference's cache truncation). */
export function truncateKV(kv: LayerKV[], rows: number): LayerKV[] {
  return kv.map((l) => ({ k: l.k.slice(0, rows), v: l.v.slice(0, rows) }));
}
