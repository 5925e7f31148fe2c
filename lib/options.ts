// Generation options: defaults (the papers' settings) and validation, before any native call.
import type { ConfidenceName, GenerateOptions, StrategyName } from '../types';
import type { NativeFamily } from '../types/native';
import { FamilyRules, familyRules, LLADA } from './family';
import { boolean, fail, integer, oneOf, real } from './validate';

export const STRATEGIES: readonly StrategyName[] = ['vanilla', 'prefix-cache', 'dual-cache', 'streaming', 'slowfast'];
export const CONFIDENCES: readonly ConfidenceName[] = ['prob', 'margin', 'entropy', 'random'];

/** Every option with its value decided; what the block loop reads. */
export interface ResolvedOptions {
  strategy: StrategyName;
  genLength: number;
  blockLength: number;
  steps: number;
  /** Steps per block of the fixed schedule. */
  stepsPerBlock: number;
  threshold: number | null;
  factor: number | null;
  window: number;
  alpha: number;
  earlyExit: boolean;
  temperature: number;
  confidence: ConfidenceName;
  seed: number;
  chat: boolean | undefined;
  signal: AbortSignal | undefined;
  /** Stop sequences (none: empty). */
  stop: string[];
  /** SlowFast sampling's parameters (read only by strategy `slowfast`). */
  slowfast: SlowFastOptions;
  /** Strategy `slowfast` over a prefix KV cache of the committed blocks (off by default). */
  prefixCache: boolean;
  /** The model family's decoding rules (lib/family.ts). */
  family: FamilyRules;
}

/** Streaming's defaults for LLaDA-layout models (lib/family.ts, measured on the shipped model); Dream's are there too. */
export const STREAMING_DEFAULTS = { window: LLADA.streaming.window, alpha: LLADA.streaming.alpha, threshold: LLADA.streaming.threshold } as const;
/** SlowFast's parameters (decoding.md, strategy `slowfast`): K, c, W, S, h, Cmax. */
export interface SlowFastOptions {
  explorationSteps: number;
  cycleThreshold: number;
  stabilityWindow: number;
  stabilityStd: number;
  highConfidence: number;
  maxSubCycles: number;
}

/** The defaults of the authors' released code (the paper's text states K 8, c 0.1, h 0.85). */
export const SLOWFAST_DEFAULTS: SlowFastOptions = {
  explorationSteps: 6, cycleThreshold: 0.3, stabilityWindow: 2, stabilityStd: 1.0, highConfidence: 0.9, maxSubCycles: 256,
};

/** Fast-dLLM's parallel-decoding threshold. */
export const FAST_DLLM_THRESHOLD = 0.9;

const KNOWN = new Set([
  'strategy', 'genLength', 'blockLength', 'steps', 'threshold', 'factor', 'window', 'alpha',
  'earlyExit', 'temperature', 'confidence', 'seed', 'chat', 'signal', 'stop',
  'explorationSteps', 'cycleThreshold', 'stabilityWindow', 'stabilityStd', 'highConfidence', 'maxSubCycles', 'prefixCache',
]);

/** Options with every default filled for the model family (LLaDA when not given), validated. */
export function resolveOptions(options: GenerateOptions = {}, familyName: NativeFamily = 'llada'): ResolvedOptions {
  const family = familyRules(familyName);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) fail('an options object', 'options', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) fail(`one of ${[...KNOWN].join(', ')}`, 'an option name', key);
  }
  const strategy = oneOf('strategy', options.strategy ?? 'streaming', STRATEGIES);
  // Its rules read position i's prediction from logit row i; Dream's rows are shifted by one.
  if (strategy === 'slowfast' && family.name !== 'llada') throw new Error(`slowfast is not supported for the ${family.name} family yet`);
  const genLength = integer('genLength', options.genLength ?? 256, 1);
  const blockLength = integer('blockLength', options.blockLength ?? 32, 1);
  if (genLength % blockLength !== 0) {
    fail(`a blockLength that divides genLength (${genLength})`, 'blockLength', blockLength);
  }
  const blocks = genLength / blockLength;
  const steps = integer('steps', options.steps ?? genLength, 1);
  if (steps % blocks !== 0) fail(`a multiple of the number of blocks (${blocks})`, 'steps', steps);

  const defaultThreshold = strategy === 'vanilla' || strategy === 'slowfast' ? null : strategy === 'streaming' ? family.streaming.threshold : FAST_DLLM_THRESHOLD;
  const threshold = options.threshold === undefined ? defaultThreshold : options.threshold === null ? null : real('threshold', options.threshold, 0, 1);
  const factor = options.factor == null ? null : real('factor', options.factor, Number.MIN_VALUE, 1e6);
  if (factor !== null && options.threshold != null) fail('either threshold or factor, not both', 'factor', factor);
  // SlowFast commits by its own level (highConfidence); a threshold or factor would be ignored.
  if (strategy === 'slowfast' && options.threshold != null) fail("no threshold with strategy 'slowfast' (its level is highConfidence)", 'threshold', options.threshold);
  if (strategy === 'slowfast' && factor !== null) fail("no factor with strategy 'slowfast' (its level is highConfidence)", 'factor', factor);

  const fixedSchedule = factor === null && threshold === null;
  // Dream's step 0 commits only the block start; its reference then stops a block after
  // stepsPerBlock steps, so one step per block would leave masks behind.
  if (family.firstStepCommitsBlockStart && fixedSchedule && blockLength > 1 && steps / blocks < 2) {
    fail(`at least 2 steps per block (${2 * blocks}) for the ${family.name} schedule`, 'steps', steps);
  }

  const window = integer('window', options.window ?? family.streaming.window, 0);
  const alpha = real('alpha', options.alpha ?? family.streaming.alpha, 0, 1);
  const earlyExit = boolean('earlyExit', options.earlyExit ?? strategy === 'streaming');
  const temperature = real('temperature', options.temperature ?? 0, 0, 1e6);
  const confidence = oneOf('confidence', options.confidence ?? (fixedSchedule ? family.scheduleConfidence : 'prob'), CONFIDENCES);
  // SlowFast's thresholds c and h are probabilities of the proposed token.
  if (strategy === 'slowfast' && confidence !== 'prob') fail("'prob' for strategy 'slowfast'", 'confidence', confidence);
  const seed = integer('seed', options.seed ?? 0, 0, 2 ** 53 - 1);
  const chat = options.chat === undefined ? undefined : boolean('chat', options.chat);
  const signal = options.signal;
  if (signal !== undefined && (signal === null || typeof signal.aborted !== 'boolean')) fail('an AbortSignal', 'signal', signal);

  const stop = stopSequences(options.stop);

  const slowfast: SlowFastOptions = {
    explorationSteps: integer('explorationSteps', options.explorationSteps ?? SLOWFAST_DEFAULTS.explorationSteps, 1),
    cycleThreshold: real('cycleThreshold', options.cycleThreshold ?? SLOWFAST_DEFAULTS.cycleThreshold, 0, 1),
    stabilityWindow: integer('stabilityWindow', options.stabilityWindow ?? SLOWFAST_DEFAULTS.stabilityWindow, 1),
    stabilityStd: real('stabilityStd', options.stabilityStd ?? SLOWFAST_DEFAULTS.stabilityStd, 0, 1e6),
    highConfidence: real('highConfidence', options.highConfidence ?? SLOWFAST_DEFAULTS.highConfidence, 0, 1),
    maxSubCycles: integer('maxSubCycles', options.maxSubCycles ?? SLOWFAST_DEFAULTS.maxSubCycles, 1),
  };
  const prefixCache = boolean('prefixCache', options.prefixCache ?? false);
  if (prefixCache && strategy !== 'slowfast') fail("false unless strategy is 'slowfast'", 'prefixCache', prefixCache);

  return {
    strategy, genLength, blockLength, steps, stepsPerBlock: steps / blocks,
    threshold: factor !== null ? null : threshold, factor, window, alpha, earlyExit,
    temperature, confidence, seed, chat, signal, stop, slowfast, prefixCache, family,
  };
}

/** Most stop sequences a call may give, and the longest one (in UTF-16 units). */
export const MAX_STOP_SEQUENCES = 16;
export const MAX_STOP_LENGTH = 1024;

/** `stop`: nothing, null, one string or an array of them; each non-empty and at most MAX_STOP_LENGTH long. */
function stopSequences(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length > MAX_STOP_SEQUENCES) {
    fail(`a string or an array of at most ${MAX_STOP_SEQUENCES} strings`, 'stop', value);
  }
  list.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0 || s.length > MAX_STOP_LENGTH) {
      fail(`a non-empty string of at most ${MAX_STOP_LENGTH} characters`, Array.isArray(value) ? `stop[${i}]` : 'stop', s);
    }
  });
  return [...list] as string[];
}
