// Issue 17's two speed bars, read off one bench:torch run: the ~1 M model (size S) at
// 2.5x PyTorch's tokens/s or more in every cell, and the larger sizes' forwards at 75% of
// the FMA peak or more in every cell. Printed under the table, so that a run says whether
// it met them and which cells did not, instead of leaving that to whoever reads it.

/** One (size, strategy, threads) cell of the table, as the bars read it. */
export interface BarCell {
  size: string;
  strategy: string;
  threads: number;
  /** ours / PyTorch tokens/s */
  ratio: number;
  /** ours per forward, % of the FMA peak of the same threads (undefined: no peak measured) */
  percentOfPeak?: number;
}

export interface BarRules {
  /** the size judged by its ratio to PyTorch; every other size is judged by % of peak */
  ratioSize: string;
  minRatio: number;
  minPercent: number;
}

export const ISSUE_17: BarRules = { ratioSize: 'S', minRatio: 2.5, minPercent: 75 };

/**
 * A figure cut (not rounded) to `digits` decimals, for the table and the bar lines: the
 * bars judge the unrounded figure, and a cell at 74.8% must not print as 75%, a figure
 * that would meet the bar it missed.
 */
export function truncated(v: number, digits: number): string {
  if (!Number.isFinite(v)) return String(v);
  const f = 10 ** digits;
  return (Math.trunc(v * f + 1e-9 * Math.sign(v)) / f).toFixed(digits);
}

const label = (c: BarCell) => `${c.size} ${c.strategy}, ${c.threads} thread${c.threads === 1 ? '' : 's'}`;

/** One line per bar that the run's cells cover: met or not, the lowest cell, every cell under the bar. */
export function barSummary(cells: BarCell[], rules: BarRules = ISSUE_17): string[] {
  const lines: string[] = [];
  const verdict = (name: string, judged: BarCell[], value: (c: BarCell) => number, min: number, fmt: (v: number) => string) => {
    if (judged.length === 0) return;
    const under = judged.filter((c) => !(value(c) >= min));
    const lowest = judged.reduce((a, b) => (value(b) < value(a) ? b : a));
    const detail = under.length === 0
      ? `met in ${judged.length === 1 ? 'its one cell' : `all ${judged.length} cells`} (lowest ${fmt(value(lowest))}: ${label(lowest)})`
      : `not met: ${under.map((c) => `${label(c)} ${fmt(value(c))}`).join('; ')} (${judged.length - under.length} of ${judged.length} cells met)`;
    lines.push(`${name}: ${detail}.`);
  };
  verdict(`issue 17, ${rules.ratioSize} at ${rules.minRatio}x PyTorch's tokens/s or more`,
    cells.filter((c) => c.size === rules.ratioSize), (c) => c.ratio, rules.minRatio, (v) => `${truncated(v, 2)}x`);
  const others = cells.filter((c) => c.size !== rules.ratioSize && c.percentOfPeak !== undefined);
  const sizes = [...new Set(others.map((c) => c.size))].join(' and ');
  verdict(`issue 17, ${sizes} forwards at ${rules.minPercent}% of the FMA peak or more`,
    others, (c) => c.percentOfPeak!, rules.minPercent, (v) => `${truncated(v, 1)}%`);
  return lines;
}

/**
 * A warning when the yardstick itself moved during the run: a thread count whose lowest
 * FMA peak reading is under `minShare` of its highest. On a shared host a reading that low
 * means a vCPU was taken from this guest for a while (a two-thread reading near the
 * one-thread peak: one vCPU left), and the cells timed in that stretch understate the
 * engine and PyTorch alike. Nothing is dropped or recomputed: the line says which readings
 * and that the run is worth repeating.
 */
export function peakSpreadWarning(readings: Map<number, number[]>, minShare = 0.85): string | undefined {
  const moved: string[] = [];
  for (const [threads, values] of readings) {
    if (values.length < 2) continue;
    const hi = Math.max(...values), lo = Math.min(...values);
    if (!(lo >= minShare * hi))
      moved.push(`${threads} thread${threads === 1 ? '' : 's'}: lowest ${lo.toFixed(0)} against ${hi.toFixed(0)} ` +
        `(${((100 * lo) / hi).toFixed(0)}%, reading ${values.findIndex((v) => v === lo || Number.isNaN(v)) + 1} of ${values.length})`);
  }
  if (moved.length === 0) return undefined;
  return `warning: the FMA peak moved during this run (${moved.join('; ')}): the host took capacity from this ` +
    `guest for a while, and the cells timed then read low for both engines; repeat the run before judging a bar by it.`;
}
