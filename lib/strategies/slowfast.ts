// SlowFast sampling (arXiv 2506.10848), as the authors' released code runs it
// (decoding.md, strategy `slowfast`). Per block, sub-cycles of: a slow exploration phase
// (K calls on the whole sequence that estimate how far the confident region reaches and
// commit over the rest of the block), then a fast fill loop over that span whose later
// calls feed only the prefix up to the span's end. With `prefixCache` every call of a
// block after its first attends to a KV cache of [0, s) written by that first call.
import { DecodeContext, range, StepInput } from '../decoder';
import { Candidate, slowFastCommit } from '../transfer';
import type { Strategy } from './strategy';

/**
 * Span estimation of one sub-cycle's exploration. `prevEnd` and the estimates are
 * offsets inside the block (0..blockLength).
 */
export class SpanEstimator {
  private readonly estimates: number[] = [];
  settled = false;

  constructor(
    private readonly prevEnd: number,
    private readonly window: number,
    private readonly stabilityStd: number,
  ) {}

  /**
   * One exploration call's estimate: the farthest candidate with confidence >= c, as an
   * end offset (else prevEnd + 1). Returns the new span end, or null while fewer than W
   * estimates are held. `last` says this is the K-th call, which settles the span anyway.
   */
  observe(blockStart: number, candidates: readonly Candidate[], cycleThreshold: number, last: boolean): number | null {
    let farthest = -1;
    for (const c of candidates) if (c.confidence >= cycleThreshold && c.position > farthest) farthest = c.position;
    const estimate = farthest < 0 ? this.prevEnd + 1 : farthest - blockStart + 1;
    this.estimates.push(estimate);
    if (this.estimates.length > this.window) this.estimates.shift();
    if (this.estimates.length < this.window) return null;
    if (populationStd(this.estimates) < this.stabilityStd) {
      this.settled = true;
      return estimate;
    }
    if (last) this.settled = true;
    return Math.floor(mean(this.estimates));
  }

  /** The span end when K calls ended unsettled (K < W): the estimates' floored mean. */
  fallback(blockLength: number): number {
    return this.estimates.length > 0 ? Math.floor(mean(this.estimates)) : Math.floor(blockLength / 2);
  }
}

function mean(v: readonly number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

function populationStd(v: readonly number[]): number {
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) * (b - m), 0) / v.length);
}

/** A fill loop makes progress every call unless the model commits the mask token itself. */
function fillLimit(ctx: DecodeContext): number {
  return 4 * ctx.options.blockLength;
}

export const slowfast: Strategy = {
  cacheSlots: (n) => n,
  async decodeBlock(ctx, b) {
    const o = ctx.options;
    const { explorationSteps: K, cycleThreshold, stabilityWindow, stabilityStd, maxSubCycles } = o.slowfast;
    const rule = slowFastCommit(o.slowfast.highConfidence);
    const s = ctx.blockStart(b);
    const E = ctx.blockEnd(b);
    const Bk = o.blockLength;
    const n = ctx.length;
    let cacheWritten = false;

    /** The input of a call on x[0:end): the whole sequence when end = n, else a prefix. */
    const input = (end: number): { input: StepInput; rowOf: (p: number) => number } => {
      if (!o.prefixCache) {
        return { input: { tokens: ctx.x.subarray(0, end), positions: range(0, end), cacheAttend: 0, attendSelf: true }, rowOf: (p) => p };
      }
      if (!cacheWritten) {
        // The block's first call is always on the whole sequence (exploration comes first).
        cacheWritten = true;
        return { input: { tokens: ctx.x.subarray(0, end), positions: range(0, end), cacheAttend: 0, cacheWrite: { start: 0, rows: s }, attendSelf: true }, rowOf: (p) => p };
      }
      return { input: { tokens: ctx.x.subarray(s, end), positions: range(s, end), cacheAttend: s, attendSelf: true }, rowOf: (p) => p - s };
    };
    const call = (end: number, among: number[]): Promise<Candidate[]> => {
      const { input: i, rowOf } = input(end);
      return ctx.stepAmong(b, i, rowOf, rule, among);
    };
    const maskedIn = (from: number, to: number): number[] => {
      const out: number[] = [];
      for (let p = from; p < to; p++) if (ctx.x[p] === ctx.maskId) out.push(p);
      return out;
    };

    let prevEnd = 0;
    let spanEnd = Bk;
    for (let cycle = 0; cycle < maxSubCycles && maskedIn(s, E).length > 0; cycle++) {
      // Exploration: K calls on the whole sequence. Checked first: once the block holds no
      // mask the remaining calls could commit nothing, so they are not run (and not counted).
      const span = new SpanEstimator(prevEnd, stabilityWindow, stabilityStd);
      for (let k = 0; k < K; k++) {
        const candidates = maskedIn(s + prevEnd, E);
        if (candidates.length === 0) break;
        const proposals = await call(n, candidates);
        if (!span.settled) {
          const end = span.observe(s, proposals, cycleThreshold, k === K - 1);
          if (end !== null) spanEnd = end;
        }
      }
      if (maskedIn(s, E).length === 0) break;
      if (!span.settled) spanEnd = span.fallback(Bk);

      // Fill loop over [s + prevEnd, s + spanEnd): the first call on the whole sequence,
      // later ones on the prefix ending at the span's end.
      for (let i = 0; ; i++) {
        const candidates = maskedIn(s + prevEnd, s + spanEnd);
        if (candidates.length === 0) break;
        if (i >= fillLimit(ctx)) {
          throw new Error(`block ${b}: the fill loop made no progress in ${i} calls: the model keeps proposing the mask token`);
        }
        await call(i === 0 ? n : s + spanEnd, candidates);
      }
      prevEnd = spanEnd;
    }
  },
};
