// What a decoding strategy is: how many cache slots it needs, and how it decodes a block.
import type { DecodeContext } from '../decoder';

export interface Strategy {
  /** KV cache slots the session must hold for a working sequence of this length. */
  cacheSlots(sequenceLength: number): number;
  /** Runs the steps of block b until it holds no mask (or its step budget ends). */
  decodeBlock(ctx: DecodeContext, b: number): Promise<void>;
}

/**
 * Runs `step(i)` for i = 0, 1, ... while block b still has masks, at most `limit` times.
 * Checking first means a block finished by its first step costs one forward, not two.
 */
export async function whileMasked(
  ctx: DecodeContext,
  b: number,
  limit: number,
  step: (i: number) => Promise<void>,
): Promise<number> {
  let i = 0;
  while (i < limit && ctx.maskedInBlock(b).length > 0) await step(i++);
  return i;
}

/**
 * Step budget of a block decoded until done: enough for one commit per position beyond
 * the schedule; exceeded only if the model keeps proposing the mask token itself.
 */
export function untilDoneLimit(ctx: DecodeContext): number {
  return ctx.options.stepsPerBlock + 4 * ctx.options.blockLength;
}

export function assertBlockDone(ctx: DecodeContext, b: number): void {
  if (ctx.maskedInBlock(b).length > 0) {
    throw new Error(
      `block ${b} still holds masks after ${untilDoneLimit(ctx)} steps: the model keeps proposing the mask token`,
    );
  }
}
