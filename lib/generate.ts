// The block loop: blocks in order, each decoded by the strategy, then early exit.
// Yields each block's tokens the moment the block is final; the consumer may end the loop
// there (`next(true)`: a stop sequence was found in the text so far).
import type { NativeSession } from '../types/native';
import { DecodeContext, SequenceForward } from './decoder';
import type { ResolvedOptions } from './options';
import { strategies } from './strategies';

export interface FinishedBlock {
  blockIndex: number;
  tokens: Int32Array;
}

export interface DecodeSummary {
  /** All generated positions, EOS fill included; only the decoded blocks' when the consumer stopped the loop. */
  generated: Int32Array;
  nfe: number;
  blocksDecoded: number;
  seconds: number;
}

/** KV cache slots a session needs for this prompt and these options. */
export function cacheSlotsFor(promptLength: number, options: ResolvedOptions): number {
  return strategies[options.strategy].cacheSlots(promptLength + options.genLength);
}

export async function* decodeBlocks(
  session: NativeSession,
  prompt: Int32Array,
  options: ResolvedOptions,
  maskId: number,
  eosId: number,
  forward?: SequenceForward,
): AsyncGenerator<FinishedBlock, DecodeSummary, boolean | undefined> {
  const started = process.hrtime.bigint();
  const ctx = new DecodeContext(session, prompt, options, maskId, eosId, forward);
  const strategy = strategies[options.strategy];
  const blocks = options.genLength / options.blockLength;
  let decoded = 0;
  let end = ctx.x.length;
  for (let b = 0; b < blocks; b++) {
    await strategy.decodeBlock(ctx, b);
    decoded++;
    const exit = options.earlyExit && ctx.exitIfEos(b);
    const stop = yield { blockIndex: b, tokens: ctx.x.slice(ctx.blockStart(b), ctx.blockEnd(b)) };
    if (stop === true) end = ctx.blockEnd(b);
    if (exit || stop === true) break;
  }
  return {
    // Stopped by the consumer: the blocks after this one were never decoded (still masks).
    generated: ctx.x.slice(ctx.promptLength, end),
    nfe: ctx.nfe,
    blocksDecoded: decoded,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}
