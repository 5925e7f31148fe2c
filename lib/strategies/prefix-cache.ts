// Fast-dLLM's prefix cache: step 0 of a block runs the whole sequence and caches the
// keys/values of the prefix [0, s); later steps run x[s:N] (block and whole suffix)
// against that cache. The prefix is re-encoded once per block.
import { range } from '../decoder';
import { assertBlockDone, Strategy, untilDoneLimit, whileMasked } from './strategy';

export const prefixCache: Strategy = {
  cacheSlots: (n) => n,
  async decodeBlock(ctx, b) {
    const o = ctx.options;
    const s = ctx.blockStart(b);
    const schedule = ctx.scheduleOf(b);
    const all = range(0, ctx.length);
    const suffix = range(s, ctx.length);
    await whileMasked(ctx, b, untilDoneLimit(ctx), (i) => {
      const rule = ctx.ruleAt(b, i, schedule, o.threshold);
      if (i === 0) {
        return ctx.step(b, { tokens: ctx.x, positions: all, cacheAttend: 0, cacheWrite: { start: 0, rows: s }, attendSelf: true },
          (p) => p, rule);
      }
      return ctx.step(b, { tokens: ctx.x.subarray(s), positions: suffix, cacheAttend: s, attendSelf: true }, (p) => p - s, rule);
    });
    assertBlockDone(ctx, b);
  },
};
