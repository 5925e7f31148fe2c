// The benchmark matrix of `npm run bench`: every strategy of the paper's table, the
// streaming ablations (the paper's window/alpha per task shape and length), and SlowFast.
import type { GenerateOptions } from '../types';
import type { TaskName } from '../lib/tasks';

export interface StrategyRow {
  /** Stable key used on the command line (--strategies) and in the JSON. */
  key: string;
  label: string;
  options: (task: TaskName, genLength: number) => GenerateOptions;
}

/**
 * Streaming-dLLM's LLaDA-1.5 settings: arithmetic is shaped like GSM8K (window 96 and
 * alpha 0.4 at 256; window 128 and alpha 0.6 at 512), the list task like MBPP
 * (window 96, alpha 0.3).
 */
export function paperStreaming(task: TaskName, genLength: number): { window: number; alpha: number } {
  if (task === 'arithmetic') return genLength >= 512 ? { window: 128, alpha: 0.6 } : { window: 96, alpha: 0.4 };
  return { window: 96, alpha: 0.3 };
}

export const STRATEGY_ROWS: StrategyRow[] = [
  { key: 'vanilla', label: 'LLaDA (vanilla, 1 token/step)', options: (_t, g) => ({ strategy: 'vanilla', steps: g, threshold: null }) },
  { key: 'prefix-cache', label: 'Fast-dLLM prefix cache (tau 0.9)', options: () => ({ strategy: 'prefix-cache', threshold: 0.9 }) },
  { key: 'dual-cache', label: 'Fast-dLLM dual cache (tau 0.9)', options: () => ({ strategy: 'dual-cache', threshold: 0.9 }) },
  {
    key: 'streaming', label: 'Streaming-dLLM (tau 0.9)',
    options: (t, g) => ({ strategy: 'streaming', threshold: 0.9, ...paperStreaming(t, g), earlyExit: true }),
  },
  // What `generate(prompt, { strategy: 'streaming' })` runs: the package's shipped defaults
  // (lib/family.ts), the same in every column, where the row above takes the paper's per-task settings.
  {
    key: 'streaming-defaults', label: 'Streaming-dLLM, package defaults',
    options: () => ({ strategy: 'streaming' }),
  },
  {
    key: 'pruning-only', label: '  suffix pruning only',
    options: (t, g) => ({ strategy: 'streaming', threshold: 0.9, window: paperStreaming(t, g).window, alpha: 0, earlyExit: false }),
  },
  {
    key: 'dynamic-only', label: '  dynamic threshold only',
    options: (t, g) => ({ strategy: 'streaming', threshold: 0.9, window: g, alpha: paperStreaming(t, g).alpha, earlyExit: false }),
  },
  {
    key: 'exit-only', label: '  early exit only',
    options: (_t, g) => ({ strategy: 'streaming', threshold: 0.9, window: g, alpha: 0, earlyExit: true }),
  },
  // SlowFast sampling as the authors' released scripts run it: their defaults (K 6, c 0.3,
  // W 2, S 1.0, h 0.9) with one block of genLength. These rows set their own blockLength.
  {
    key: 'slowfast', label: 'SlowFast (released: K 6, c 0.3, h 0.9, one block)',
    options: (_t, g) => ({ strategy: 'slowfast', blockLength: g }),
  },
  {
    key: 'slowfast-paper', label: 'SlowFast (paper text: K 8, c 0.1, h 0.85, one block)',
    options: (_t, g) => ({ strategy: 'slowfast', blockLength: g, explorationSteps: 8, cycleThreshold: 0.1, highConfidence: 0.85 }),
  },
  {
    key: 'slowfast-cache', label: 'SlowFast + prefix cache (released settings, one block)',
    options: (_t, g) => ({ strategy: 'slowfast', blockLength: g, prefixCache: true }),
  },
];

/** Defaults of the full run (figures of record) and of `--quick` (a smoke test, a few minutes). */
export const RUN_DEFAULTS = {
  // Gen 256 only: the figures of record (issue 20's bar is at 256). `--lengths 256,512` adds
  // the long column, whose vanilla cells take ~3 h on 2 cores the first time per model.
  full: { samples: 200, lengths: [256], vanillaTiming: 5 },
  quick: { samples: 5, lengths: [256], vanillaTiming: 2 },
} as const;
