// Fast-dLLM's dual cache: step 0 of a block runs the whole sequence and caches all N
// positions; later steps run only the block, overwrite its cache slots with fresh
// keys/values, and attend to the whole cache (prefix, block, and the stale suffix).
import { range } from '../decoder';
import { assertBlockDone, Strategy, untilDoneLimit, whileMasked } from './strategy';

export const dualCache: Strategy = {
  cacheSlots: (n) => n,
  async decodeBlock(ctx, b) {
    const o = ctx.options;
    const s = ctx.blockStart(b);
    const e = ctx.blockEnd(b);
    const n = ctx.length;
    const schedule = ctx.scheduleOf(b);
    const all = range(0, n);
    const block = range(s, e);
    await whileMasked(ctx, b, untilDoneLimit(ctx), (i) => {
      const rule = ctx.ruleAt(b, i, schedule, o.threshold);
      if (i === 0) {
        return ctx.step(b, { tokens: ctx.x, positions: all, cacheAttend: 0, cacheWrite: { start: 0, rows: n }, attendSelf: true },
          (p) => p, rule);
      }
      return ctx.step(b,
        { tokens: ctx.x.subarray(s, e), positions: block, cacheAttend: n, cacheWrite: { start: s, rows: e - s }, attendSelf: false },
        (p) => p - s, rule);
    });
    assertBlockDone(ctx, b);
  },
};
