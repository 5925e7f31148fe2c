// Test-only: each strategy written out step by step as the reference loops run it
// (LLaDA generate, Fast-dLLM prefix/dual cache, Streaming-dLLM), on full float64 logits
// from RefLLaDA. Greedy (temperature 0) only: the references' RNG cannot be reproduced.
import type { StrategyName } from '../../../types';
import { LayerKV, RefLLaDA, truncateKV } from './llada';

export interface LiteralOptions {
  /** Any strategy name the engine resolves; slowfast has its own reference (./slowfast.ts). */
  strategy: StrategyName;
  genLength: number;
  blockLength: number;
  steps: number;
  threshold: number | null;
  window: number;
  alpha: number;
  earlyExit: boolean;
  confidence: 'prob' | 'margin' | 'entropy';
}

export interface LiteralResult {
  generated: number[];
  nfe: number;
}

/** x0 = argmax (lowest id on ties) and its confidence from the float64 softmax. */
export function propose(logits: Float64Array, kind: LiteralOptions['confidence']): { token: number; conf: number } {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  const m = logits[best];
  let z = 0;
  for (const l of logits) z += Math.exp(l - m);
  const p = Array.from(logits, (l) => Math.exp(l - m) / z);
  if (kind === 'prob') return { token: best, conf: p[best] };
  if (kind === 'margin') {
    const sorted = [...p].sort((a, b) => b - a);
    return { token: best, conf: sorted[0] - (sorted[1] ?? 0) };
  }
  let s = 0;
  for (const q of p) if (q > 0) s += q * Math.log(q);
  return { token: best, conf: s };
}

function schedule(m: number, spb: number): number[] {
  const base = Math.floor(m / spb);
  return Array.from({ length: spb }, (_, i) => base + (i < m % spb ? 1 : 0));
}

/**
 * get_transfer_index over the fed rows: rows whose position is masked and inside the
 * block are candidates; threshold keeps conf >= tau plus the argmax; else top-k (stable).
 */
function transfer(
  x: number[], logits: Float64Array[], rowPositions: number[], s: number, e: number, maskId: number,
  k: number | null, tau: number | null, kind: LiteralOptions['confidence'],
): void {
  const cands: { pos: number; token: number; conf: number }[] = [];
  rowPositions.forEach((pos, row) => {
    if (pos >= s && pos < e && x[pos] === maskId) cands.push({ pos, ...propose(logits[row], kind) });
  });
  if (cands.length === 0) return;
  const sorted = [...cands].sort((a, b) => b.conf - a.conf || a.pos - b.pos);
  const chosen = tau !== null ? sorted.filter((c, i) => i === 0 || c.conf >= tau) : sorted.slice(0, k ?? 0);
  for (const c of chosen) x[c.pos] = c.token;
}

const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

export function literalGenerate(model: RefLLaDA, prompt: number[], o: LiteralOptions): LiteralResult {
  if (o.strategy === 'slowfast') throw new Error('literalGenerate: slowfast has its own reference, literalSlowFast');
  const M = model.maskId;
  const P = prompt.length;
  const N = P + o.genLength;
  const x = [...prompt, ...new Array(o.genLength).fill(M)];
  const nb = o.genLength / o.blockLength;
  const spb = o.steps / nb;
  let nfe = 0;
  const masksIn = (s: number, e: number): number => x.slice(s, e).filter((t) => t === M).length;

  for (let b = 0; b < nb; b++) {
    const s = P + b * o.blockLength;
    const e = s + o.blockLength;
    const ks = schedule(masksIn(s, e), spb);
    const kAt = (i: number): number | null => (o.threshold === null ? ks[i] : null);

    if (o.strategy === 'vanilla') {
      for (let i = 0; (o.threshold !== null || i < spb) && masksIn(s, e) > 0; i++) {
        const { logits } = model.forward(x, range(0, N));
        nfe++;
        transfer(x, logits, range(0, N), s, e, M, kAt(i), o.threshold, o.confidence);
      }
    } else if (o.strategy === 'prefix-cache') {
      const out = model.forward(x, range(0, N));
      nfe++;
      transfer(x, out.logits, range(0, N), s, e, M, kAt(0), o.threshold, o.confidence);
      const past = truncateKV(out.kv, s);
      for (let i = 1; masksIn(s, e) > 0; i++) {
        const { logits } = model.forward(x.slice(s), range(s, N), past);
        nfe++;
        transfer(x, logits, range(s, N), s, e, M, kAt(i), o.threshold, o.confidence);
      }
    } else if (o.strategy === 'dual-cache') {
      const out = model.forward(x, range(0, N));
      nfe++;
      transfer(x, out.logits, range(0, N), s, e, M, kAt(0), o.threshold, o.confidence);
      const past: LayerKV[] = out.kv;
      for (let i = 1; masksIn(s, e) > 0; i++) {
        const { logits } = model.forward(x.slice(s, e), range(s, e), past, s);
        nfe++;
        transfer(x, logits, range(s, e), s, e, M, kAt(i), o.threshold, o.confidence);
      }
    } else {
      const Ls = N - e;
      const kept = Ls <= o.window ? range(e, N) : [...range(e, e + o.window), N - 1];
      const ids = [...range(0, e), ...kept];
      const out = model.forward(x.slice(0, ids.length), ids);
      nfe++;
      transfer(x, out.logits, ids, s, e, M, kAt(0), o.threshold, o.confidence);
      const past = truncateKV(out.kv, s);
      for (let i = 1; ; i++) {
        if (masksIn(s, e) === 0) {
          if (o.earlyExit && x.slice(s, e).includes(model.eosId)) {
            for (let p = e; p < N; p++) x[p] = model.eosId;
            return { generated: x.slice(P), nfe };
          }
          break;
        }
        const fed = x.slice(s, ids.length);
        const ratio = fed.filter((t) => t === M).length / fed.length;
        const tau = o.threshold === null ? null : o.threshold * (1 - o.alpha * (1 - ratio));
        const { logits } = model.forward(fed, ids.slice(s), past);
        nfe++;
        transfer(x, logits, ids.slice(s), s, e, M, kAt(i), tau, o.confidence);
      }
    }
    if (o.strategy !== 'streaming' && o.earlyExit && x.slice(s, e).includes(model.eosId)) {
      for (let p = e; p < N; p++) x[p] = model.eosId;
      break;
    }
  }
  return { generated: x.slice(P), nfe };
}
