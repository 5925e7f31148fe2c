// Test-only: SlowFast sampling written out as decoding.md states it (strategy `slowfast`,
// the authors' released loop), on full float64 logits from RefLLaDA. Greedy only. Exactly K
// exploration calls per sub-cycle, even on a complete block, so `nfe` is the NFE of the
// rules as specified; the trace counts which situations the run went through, so that a
// test can show each case it names really occurred.
import { LayerKV, RefLLaDA, truncateKV } from './llada';
import { propose } from './literal';

export interface SlowFastLiteralOptions {
  genLength: number;
  blockLength: number;
  explorationSteps: number;
  cycleThreshold: number;
  stabilityWindow: number;
  stabilityStd: number;
  highConfidence: number;
  maxSubCycles: number;
  /** The cached variant: calls after a block's first attend to the keys/values of [0, s) it kept. */
  prefixCache: boolean;
}

export interface SlowFastTrace {
  /** Exploration calls made while the block already held no mask (they commit nothing). */
  callsOnCompleteBlock: number;
  wholeSequenceCalls: number;
  /** Fill-loop calls on the prefix only (the second and later calls of a fill loop). */
  prefixCalls: number;
  /** Those of them that leave out a tail (the span ends before the sequence does). */
  prefixCallsDroppingTail: number;
  subCycles: number;
  /** Spans decided by std < S, by the K-th call, and by the K < W fallback. */
  settledByStd: number;
  settledAtLastCall: number;
  fallbackSpans: number;
  /** Exploration estimates smaller than the estimate of the call before, in the same sub-cycle. */
  shrinkingEstimates: number;
  /** Blocks with no mask left after their first exploration call. */
  blocksDoneByFirstCall: number;
  /** Blocks still holding masks when maxSubCycles sub-cycles had run. */
  blocksLeftMasked: number;
}

export interface SlowFastLiteralResult {
  generated: number[];
  /** Every call, as the rules specify. */
  nfe: number;
  trace: SlowFastTrace;
}

/** A trace with every counter at zero (its keys are every situation traced). */
export function emptyTrace(): SlowFastTrace {
  return {
    callsOnCompleteBlock: 0, wholeSequenceCalls: 0, prefixCalls: 0, prefixCallsDroppingTail: 0, subCycles: 0, settledByStd: 0,
    settledAtLastCall: 0, fallbackSpans: 0, shrinkingEstimates: 0, blocksDoneByFirstCall: 0, blocksLeftMasked: 0,
  };
}

const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

export function literalSlowFast(model: RefLLaDA, prompt: number[], o: SlowFastLiteralOptions): SlowFastLiteralResult {
  const M = model.maskId;
  const P = prompt.length;
  const G = o.genLength;
  const Bk = o.blockLength;
  const N = P + G;
  const x = [...prompt, ...new Array(G).fill(M)];
  const trace = emptyTrace();
  let nfe = 0;
  // Generated position i lives at x[P + i].
  const masked = (i: number): boolean => x[P + i] === M;
  const blockHasMask = (s: number): boolean => range(s, s + Bk).some(masked);

  for (let s = 0; s < G; s += Bk) {
    const E = s + Bk;
    let past: LayerKV[] | null = null;

    /**
     * One model call on x[0 : P + end) (end = G: the whole sequence). Returns x0 and conf
     * for generated positions [0, end): conf = softmax prob of x0 if masked, else -inf.
     */
    const callModel = (end: number): { x0: number[]; conf: number[] } => {
      nfe++;
      let logits: Float64Array[];
      let firstPosition: number;
      if (!o.prefixCache || past === null) {
        const out = model.forward(x.slice(0, P + end), range(0, P + end));
        if (o.prefixCache) past = truncateKV(out.kv, P + s);
        logits = out.logits;
        firstPosition = 0;
      } else {
        logits = model.forward(x.slice(P + s, P + end), range(P + s, P + end), past).logits;
        firstPosition = P + s;
      }
      const x0: number[] = [];
      const conf: number[] = [];
      for (let i = 0; i < end; i++) {
        const row = P + i - firstPosition;
        if (row < 0) { x0.push(-1); conf.push(-Infinity); continue; }
        const { token, conf: c } = propose(logits[row], 'prob');
        x0.push(token);
        conf.push(masked(i) ? c : -Infinity);
      }
      return { x0, conf };
    };

    /** commit(C): all of C at >= h if at least two are, else the single most confident. */
    const commit = (C: number[], x0: number[], conf: number[]): void => {
      if (C.length === 0) return;
      const high = C.filter((i) => conf[i] >= o.highConfidence);
      if (high.length >= 2) {
        for (const i of high) x[P + i] = x0[i];
        return;
      }
      let best = C[0];
      for (const i of C) if (conf[i] > conf[best]) best = i; // strict: the lowest position wins ties
      x[P + best] = x0[best];
    };

    let prevEnd = 0;
    let spanEnd = Bk;
    let firstCall = true;
    let subCycles = 0;
    while (blockHasMask(s) && subCycles < o.maxSubCycles) {
      subCycles++;
      trace.subCycles++;
      // 1. Exploration: exactly K calls on the whole sequence.
      const history: number[] = [];
      let settled = false;
      for (let k = 1; k <= o.explorationSteps; k++) {
        if (!blockHasMask(s)) trace.callsOnCompleteBlock++;
        const { x0, conf } = callModel(G);
        trace.wholeSequenceCalls++;
        const C = range(s + prevEnd, E).filter(masked);
        if (!settled) {
          const qualifying = C.filter((i) => conf[i] >= o.cycleThreshold);
          const e = qualifying.length > 0 ? Math.max(...qualifying) - s + 1 : prevEnd + 1;
          if (history.length > 0 && e < history[history.length - 1]) trace.shrinkingEstimates++;
          history.push(e);
          while (history.length > o.stabilityWindow) history.shift();
          if (history.length === o.stabilityWindow) {
            const mean = history.reduce((a, b) => a + b, 0) / history.length;
            const std = Math.sqrt(history.reduce((a, b) => a + (b - mean) ** 2, 0) / history.length);
            if (std < o.stabilityStd) {
              spanEnd = e;
              settled = true;
              trace.settledByStd++;
            } else {
              spanEnd = Math.floor(mean);
              if (k === o.explorationSteps) {
                settled = true;
                trace.settledAtLastCall++;
              }
            }
          }
        }
        commit(C, x0, conf);
        if (firstCall && !blockHasMask(s)) trace.blocksDoneByFirstCall++;
        firstCall = false;
      }
      if (!settled) {
        spanEnd = history.length > 0 ? Math.floor(history.reduce((a, b) => a + b, 0) / history.length) : Math.floor(Bk / 2);
        trace.fallbackSpans++;
      }
      // 2. Fill loop over the span; calls after the first see only the prefix up to its end.
      const span = (): number[] => range(s + prevEnd, s + spanEnd).filter(masked);
      for (let call = 0; span().length > 0; call++) {
        if (call > 4 * Bk) throw new Error('reference fill loop: no progress (the model proposes the mask token)');
        const { x0, conf } = callModel(call === 0 ? G : s + spanEnd);
        if (call === 0) trace.wholeSequenceCalls++;
        else trace.prefixCalls++;
        if (call > 0 && s + spanEnd < G) trace.prefixCallsDroppingTail++;
        commit(span(), x0, conf);
      }
      // 3.
      prevEnd = spanEnd;
    }
    if (blockHasMask(s)) trace.blocksLeftMasked++;
  }
  return { generated: x.slice(P), nfe, trace };
}
