// Streaming-dLLM: suffix pruning (the block sees only a window of the masked suffix plus
// its trailing position, at their true position ids), a prefix cache rebuilt per block,
// and a dynamic threshold that relaxes as the fed rows fill in. Early exit lives in the
// shared block loop (lib/generate.ts).
import { range } from '../decoder';
import { dynamicThreshold } from '../transfer';
import { assertBlockDone, Strategy, untilDoneLimit, whileMasked } from './strategy';

/** The kept suffix positions after a block ending at e: all if short, else the first w and the last. */
export function suffixWindow(blockEnd: number, length: number, window: number): Int32Array {
  const suffixLength = length - blockEnd;
  if (suffixLength <= window) return range(blockEnd, length);
  const kept = new Int32Array(window + 1);
  kept.set(range(blockEnd, blockEnd + window));
  kept[window] = length - 1;
  return kept;
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export const streaming: Strategy = {
  cacheSlots: (n) => n,
  async decodeBlock(ctx, b) {
    const o = ctx.options;
    const s = ctx.blockStart(b);
    const e = ctx.blockEnd(b);
    const kept = suffixWindow(e, ctx.length, o.window);
    const schedule = ctx.scheduleOf(b);
    // Every kept suffix position is still a mask, so the fed token ids are x[0 : e + kept].
    const step0Positions = concat(range(0, e), kept);
    const stepPositions = concat(range(s, e), kept);
    const fedRows = e - s + kept.length;
    await whileMasked(ctx, b, untilDoneLimit(ctx), (i) => {
      if (i === 0) {
        return ctx.step(b,
          { tokens: ctx.x.subarray(0, e + kept.length), positions: step0Positions, cacheAttend: 0, cacheWrite: { start: 0, rows: s }, attendSelf: true },
          (p) => p, ctx.ruleAt(b, 0, schedule, o.threshold));
      }
      // Mask ratio over every row fed after the prefix cache, before this step commits.
      const maskRatio = (ctx.maskedInBlock(b).length + kept.length) / fedRows;
      const tau = o.threshold === null ? null : dynamicThreshold(o.threshold, o.alpha, maskRatio);
      return ctx.step(b,
        { tokens: ctx.x.subarray(s, e + kept.length), positions: stepPositions, cacheAttend: s, attendSelf: true },
        (p) => p - s, ctx.ruleAt(b, i, schedule, tau));
    });
    assertBlockDone(ctx, b);
  },
};
