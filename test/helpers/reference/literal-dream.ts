// Test-only: the Dream loops written out step by step as the references run them —
// Fast-dLLM and Streaming-dLLM `Dream/model/generation_utils_block.py` (`_sample`) — on full
// float64 logits from the literal forward. Greedy (temperature 0) only.
//
// What they do, in their words:
// - logits = cat([logits[:, :1], logits[:, :-1]]): fed row r is predicted by logit row
//   r-1, row 0 by itself;
// - per block, step 0 runs the prefix (vanilla, prefix/dual: the whole x; streaming:
//   x[0:e) + the kept suffix) and sets x[s] = its proposal, nothing else;
// - the prefix cache keeps rows [0, s); later steps feed x[s:N) (prefix-cache), x[s:e)
//   over the whole cache (dual), or x[s:e) + kept suffix (streaming);
// - with a threshold: the most confident block candidate always, the others when
//   conf >= tau (streaming: tau * (1 - alpha * (1 - r)), r = masks / fed rows, before the commit);
// - without: steps i = 1..spb-1 commit int(n * (1 - t[i+1]/t[i])) (t = linspace(1, eps,
//   spb+1) in float32; n = masks left in the block), step spb-1 all that are left;
// - streaming: when the block has no mask, EOS in it fills the rest with EOS and stops.
// The block-done check comes before each step here, as everywhere in the project.
import { linspaceF32 } from '../../../lib/family';
import { LayerKV, RefLLaDA, truncateKV } from './llada';
import { LiteralOptions, LiteralResult, propose } from './literal';

const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
const f32 = Math.fround;

/** `shift: false` reads each row's own logits (only to show that the tests see the shift). */
export interface DreamVariant {
  shift?: boolean;
}

export function literalGenerateDream(model: RefLLaDA, prompt: number[], o: LiteralOptions, variant: DreamVariant = {}): LiteralResult {
  // The reference's shift over the fed rows.
  const shifted = (logits: Float64Array[]): Float64Array[] =>
    variant.shift === false ? logits : logits.map((_, r) => logits[Math.max(0, r - 1)]);
  const M = model.maskId;
  const P = prompt.length;
  const N = P + o.genLength;
  const x = [...prompt, ...new Array(o.genLength).fill(M)];
  const nb = o.genLength / o.blockLength;
  const spb = o.steps / nb;
  const t = linspaceF32(1, 1e-3, spb + 1);
  let nfe = 0;
  const masksIn = (s: number, e: number): number => x.slice(s, e).filter((v) => v === M).length;

  for (let b = 0; b < nb; b++) {
    const s = P + b * o.blockLength;
    const e = s + o.blockLength;
    const kept = N - e <= o.window ? range(e, N) : [...range(e, e + o.window), N - 1];
    const streamIds = [...range(0, e), ...kept];

    // Step 0: x[s] = the proposal of its shifted row.
    let out;
    if (o.strategy === 'streaming') out = model.forward(x.slice(0, streamIds.length), streamIds);
    else out = model.forward(x, range(0, N));
    nfe++;
    x[s] = propose(shifted(out.logits)[s], o.confidence).token;
    const past: LayerKV[] = o.strategy === 'dual-cache' ? out.kv : truncateKV(out.kv, s);

    for (let i = 1; masksIn(s, e) > 0; i++) {
      if (o.threshold === null && i === spb) break;
      // What this step feeds: rows and their positions.
      let rowPositions: number[];
      let logits: Float64Array[];
      let tau = o.threshold;
      if (o.strategy === 'vanilla') {
        rowPositions = range(0, N);
        logits = model.forward(x, rowPositions).logits;
      } else if (o.strategy === 'prefix-cache') {
        rowPositions = range(s, N);
        logits = model.forward(x.slice(s), rowPositions, past).logits;
      } else if (o.strategy === 'dual-cache') {
        rowPositions = range(s, e);
        logits = model.forward(x.slice(s, e), rowPositions, past, s).logits;
      } else {
        rowPositions = streamIds.slice(s);
        const fed = x.slice(s, streamIds.length);
        const ratio = fed.filter((v) => v === M).length / fed.length;
        if (tau !== null) tau = tau * (1 - o.alpha * (1 - ratio));
        logits = model.forward(fed, rowPositions, past).logits;
      }
      nfe++;
      const rows = shifted(logits);
      const cands: { pos: number; token: number; conf: number }[] = [];
      rowPositions.forEach((pos, r) => {
        if (pos >= s && pos < e && x[pos] === M) cands.push({ pos, ...propose(rows[r], o.confidence) });
      });
      const sorted = [...cands].sort((a, c) => c.conf - a.conf || a.pos - c.pos);
      let chosen;
      if (tau !== null) {
        chosen = sorted.filter((c, k) => k === 0 || c.conf >= tau!);
      } else {
        const n = cands.length;
        const k = i < spb - 1 ? Math.trunc(f32(n * f32(1 - f32(t[i + 1] / t[i])))) : n;
        chosen = sorted.slice(0, k);
      }
      for (const c of chosen) x[c.pos] = c.token;
    }
    if (o.earlyExit && masksIn(s, e) === 0 && x.slice(s, e).includes(model.eosId)) {
      for (let p = e; p < N; p++) x[p] = model.eosId;
      break;
    }
  }
  return { generated: x.slice(P), nfe };
}
