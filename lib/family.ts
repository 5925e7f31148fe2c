// What differs between the model families in decoding (decoding.md, "Dream family
// differences"). The forward pass and the block loop are shared; a family only changes
// which logit row predicts a position, what the first step of a block commits, the
// schedule used without a threshold, how temperature enters the confidence, and defaults.
import type { NativeFamily } from '../types/native';

/** Tokens to commit at step i of a block, given how many of its positions are still masks. */
export type Schedule = (step: number, maskedNow: number) => number;

export interface FamilyRules {
  readonly name: NativeFamily;
  /**
   * Row of the logits that predicts the token of input row `row`. Dream is trained to
   * predict the next token, so position i reads row i-1; its references shift the fed
   * rows' logits by one and reuse row 0 for the first fed row (Streaming-dLLM and
   * Fast-dLLM `Dream/model/generation_utils_block.py`: `cat([logits[:, :1], logits[:, :-1]])`).
   */
  predictionRow(row: number): number;
  /** Step 0 of every block commits only the block's first position, whatever its confidence. */
  readonly firstStepCommitsBlockStart: boolean;
  /** The schedule of a block without a threshold or factor, fixed when the block starts. */
  schedule(maskedAtStart: number, stepsPerBlock: number): Schedule;
  /** Confidence used with the schedule when the caller names none. */
  readonly scheduleConfidence: 'prob' | 'entropy';
  /** Whether confidences come from softmax(l / T) rather than softmax(l) when T > 0. */
  readonly temperedConfidence: boolean;
  /** Prepend the tokenizer's BOS to text prompts when the encoding does not start with it. */
  readonly prependBos: boolean;
  /** Early exit and the text end on the tokenizer's EOS (else the config's eos_token_id). */
  readonly eosFromTokenizer: boolean;
  /** Streaming's defaults for this family (block 32): suffix window, alpha, base threshold tau. */
  readonly streaming: { window: number; alpha: number; threshold: number };
}

/** Rule 1 of decoding.md: k_i = floor(m/spb) + (i < m mod spb ? 1 : 0), fixed at block start. */
export function evenSchedule(masked: number, stepsPerBlock: number): Schedule {
  const base = Math.floor(masked / stepsPerBlock);
  const rem = masked % stepsPerBlock;
  return (i) => (i < stepsPerBlock ? base + (i < rem ? 1 : 0) : Number.MAX_SAFE_INTEGER);
}

const f32 = Math.fround;

/**
 * torch.linspace(1, eps, n) in float32 as torch computes it: step = (end - start)/(n - 1);
 * the first half counts up from start, the second half down from end.
 */
export function linspaceF32(start: number, end: number, n: number): number[] {
  const a = f32(start);
  const b = f32(end);
  const step = f32(f32(b - a) / (n - 1));
  const half = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i < half ? f32(a + f32(step * i)) : f32(b - f32(step * (n - i - 1)))));
}

/** Dream's sampling eps: the timesteps run from 1 down to eps. */
export const DREAM_EPS = 1e-3;

/**
 * Dream's schedule inside a block: step 0 is the block-start rule; step i = 1..spb-2
 * commits int(n * (1 - t_{i+1}/t_i)) of the n positions still masked, with
 * t = linspace(1, eps, spb+1) in float32; step spb-1 (and any later) commits the rest.
 */
export function dreamSchedule(_maskedAtStart: number, stepsPerBlock: number): Schedule {
  const t = linspaceF32(1, DREAM_EPS, stepsPerBlock + 1);
  return (i, maskedNow) => {
    if (i >= stepsPerBlock - 1) return maskedNow;
    return Math.trunc(f32(maskedNow * f32(1 - f32(t[i + 1] / t[i]))));
  };
}

export const LLADA: FamilyRules = {
  name: 'llada',
  predictionRow: (row) => row,
  firstStepCommitsBlockStart: false,
  schedule: evenSchedule,
  scheduleConfidence: 'prob',
  temperedConfidence: false,
  prependBos: false,
  eosFromTokenizer: false,
  // Window 96 as the paper's LLaDA settings; alpha 0 (a fixed threshold) and tau 0.95 from
  // measurement on the shipped model: alpha 0.3 lost about 2 points on 200 + 400 held-out
  // problems against alpha 0 for ~4% fewer forwards, and tau 0.95 is the lowest threshold
  // within a point of vanilla on the tuning split (0.9 was 2 points short) for ~11% more
  // forwards (models/dllm-mini-arith/README.md, "Streaming defaults").
  streaming: { window: 96, alpha: 0, threshold: 0.95 },
};

export const DREAM: FamilyRules = {
  name: 'dream',
  predictionRow: (row) => Math.max(0, row - 1),
  firstStepCommitsBlockStart: true,
  schedule: dreamSchedule,
  scheduleConfidence: 'entropy',
  temperedConfidence: true,
  prependBos: true,
  eosFromTokenizer: true,
  // Streaming-dLLM's Dream GSM8K setting (window 32, alpha 0.3, tau 0.9); code tasks use
  // window 192. Not re-measured: no Dream-layout model ships with the package.
  streaming: { window: 32, alpha: 0.3, threshold: 0.9 },
};

export function familyRules(family: NativeFamily | undefined): FamilyRules {
  return family === 'dream' ? DREAM : LLADA;
}
