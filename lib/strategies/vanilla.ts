// LLaDA's plain block decoding: every step runs the whole sequence, no cache.
// With the fixed schedule a block gets at most stepsPerBlock steps (LLaDA's `generate`);
// with a threshold or factor it runs until the block is done (Fast-dLLM without cache).
import { range } from '../decoder';
import { assertBlockDone, Strategy, untilDoneLimit, whileMasked } from './strategy';

export const vanilla: Strategy = {
  cacheSlots: () => 1,
  async decodeBlock(ctx, b) {
    const o = ctx.options;
    const schedule = ctx.scheduleOf(b);
    const fixed = o.threshold === null && o.factor === null;
    const positions = range(0, ctx.length);
    await whileMasked(ctx, b, fixed ? o.stepsPerBlock : untilDoneLimit(ctx), (i) =>
      ctx.step(b, { tokens: ctx.x, positions, cacheAttend: 0, attendSelf: true }, (p) => p,
        ctx.ruleAt(b, i, schedule, o.threshold)),
    );
    if (!fixed) assertBlockDone(ctx, b);
  },
};
