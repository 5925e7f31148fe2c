// The block loop shared by every strategy: the working sequence, the per-step commit,
// early exit and the per-block stream of final tokens. A strategy (lib/strategies/)
// only says what each step feeds the model and which rule it commits with.
import type { NativeConfidenceKind, NativeForwardRequest, NativeForwardResult, NativeSession } from '../types/native';
import type { Schedule } from './family';
import type { ResolvedOptions } from './options';
import { Candidate, selectTransfers, StepRule } from './transfer';

const CONFIDENCE_KIND: Record<ResolvedOptions['confidence'], NativeConfidenceKind> = {
  prob: 0,
  margin: 1,
  entropy: 2,
  random: 3,
};

/** One forward pass of a sequence's request, however it is scheduled. */
export type SequenceForward = (request: NativeForwardRequest) => Promise<NativeForwardResult>;

/** What one forward pass feeds: the rows, where they sit, and what it does with the cache. */
export interface StepInput {
  tokens: Int32Array;
  positions: Int32Array;
  cacheAttend: number;
  cacheWrite?: { start: number; rows: number };
  attendSelf: boolean;
}

export class DecodeContext {
  /** Working sequence: prompt, then genLength positions (mask until committed). */
  readonly x: Int32Array;
  readonly promptLength: number;
  readonly length: number;
  nfe = 0;

  constructor(
    readonly session: NativeSession,
    prompt: Int32Array,
    readonly options: ResolvedOptions,
    readonly maskId: number,
    readonly eosId: number,
    /**
     * Runs one forward of this sequence: the session's own by default; under the batching
     * scheduler (lib/scheduler.ts) it joins the next batched forward instead.
     */
    private readonly forward: SequenceForward = (request) => session.forward(request),
  ) {
    this.promptLength = prompt.length;
    this.length = prompt.length + options.genLength;
    this.x = new Int32Array(this.length).fill(maskId);
    this.x.set(prompt);
  }

  blockStart(b: number): number {
    return this.promptLength + b * this.options.blockLength;
  }
  blockEnd(b: number): number {
    return this.blockStart(b) + this.options.blockLength;
  }
  /** Masked positions of block b, ascending. */
  maskedInBlock(b: number): number[] {
    const out: number[] = [];
    for (let p = this.blockStart(b); p < this.blockEnd(b); p++) if (this.x[p] === this.maskId) out.push(p);
    return out;
  }

  /** The fixed schedule of block b (the family's), taken when the block starts. */
  scheduleOf(b: number): Schedule {
    return this.options.family.schedule(this.maskedInBlock(b).length, this.options.stepsPerBlock);
  }

  /**
   * The rule of step i of block b: the family's first-step rule, else the factor rule, the
   * threshold `tau` given by the strategy, or the schedule's count for the masks left now.
   */
  ruleAt(b: number, i: number, schedule: Schedule, tau: number | null): StepRule {
    const o = this.options;
    if (i === 0 && o.family.firstStepCommitsBlockStart) return { kind: 'blockStart' };
    if (o.factor !== null) return { kind: 'factor', factor: o.factor };
    if (tau !== null) return { kind: 'threshold', tau };
    return { kind: 'count', k: schedule(i, this.maskedInBlock(b).length) };
  }

  /**
   * Runs one forward pass and commits by `rule` among the block's masked positions.
   * `rowOf(position)` maps a sequence position to its row in `input`; the family says
   * which logit row predicts that row (Dream: the row before).
   */
  async step(b: number, input: StepInput, rowOf: (position: number) => number, rule: StepRule): Promise<void> {
    await this.stepAmong(b, input, rowOf, rule);
  }

  /**
   * `step`, with the candidates narrowed to `among` (masked positions of block b) when
   * given. Returns the candidates with the proposals and confidences the forward gave them
   * (a strategy such as slowfast reads them beyond the commit).
   */
  async stepAmong(
    b: number, input: StepInput, rowOf: (position: number) => number, rule: StepRule, among?: readonly number[],
  ): Promise<Candidate[]> {
    const signal = this.options.signal;
    if (signal?.aborted) throw abortError(signal);
    const { family, temperature } = this.options;
    // The block-start rule needs one prediction; the LM head then runs on one row only.
    const all = among ? among.filter((p) => p >= this.blockStart(b) && p < this.blockEnd(b) && this.x[p] === this.maskId) : this.maskedInBlock(b);
    const masked = rule.kind === 'blockStart' ? all.slice(0, 1) : all;
    const request: NativeForwardRequest = {
      ...input,
      predictRows: Int32Array.from(masked, (p) => family.predictionRow(rowOf(p))),
      confidence: CONFIDENCE_KIND[this.options.confidence],
      temperature,
      confidenceTemperature: family.temperedConfidence && temperature > 0 ? temperature : 1,
      seed: this.options.seed,
      noiseCounter: this.nfe,
      returnLogits: false,
    };
    const result = await this.forward(request);
    this.nfe++;
    const candidates: Candidate[] = masked.map((position, i) => ({
      position,
      token: result.tokenIds[i],
      confidence: result.confidences[i],
    }));
    for (const c of selectTransfers(candidates, rule)) this.x[c.position] = c.token;
    return candidates;
  }

  /** Early exit: a finished block holding EOS ends generation; the rest becomes EOS. */
  exitIfEos(b: number): boolean {
    const block = this.x.subarray(this.blockStart(b), this.blockEnd(b));
    if (!block.includes(this.eosId)) return false;
    this.x.fill(this.eosId, this.blockEnd(b));
    return true;
  }
}

export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error) return reason;
  const e = new Error('The generation was aborted');
  e.name = 'AbortError';
  return e;
}

/** Positions [from, to) as an Int32Array. */
export function range(from: number, to: number): Int32Array {
  const out = new Int32Array(Math.max(0, to - from));
  for (let i = 0; i < out.length; i++) out[i] = from + i;
  return out;
}
