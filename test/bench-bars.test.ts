// Issue 17's bar lines under the bench:torch table (bench/torch/bars.ts): a pure function.
import { BarCell, barSummary, peakSpreadWarning, truncated } from '../bench/torch/bars';

const cell = (size: string, strategy: string, threads: number, ratio: number, percentOfPeak?: number): BarCell =>
  ({ size, strategy, threads, ratio, percentOfPeak });

describe('barSummary', () => {
  test('every cell over both bars: met, with the lowest cell named', () => {
    const lines = barSummary([
      cell('S', 'vanilla', 1, 2.78, 77), cell('S', 'vanilla', 2, 4.43, 57),
      cell('M', 'vanilla', 1, 2.37, 91), cell('M', 'prefix-cache', 2, 3.01, 76),
      cell('L', 'prefix-cache', 1, 2.73, 75),
    ]);
    expect(lines).toEqual([
      "issue 17, S at 2.5x PyTorch's tokens/s or more: met in all 2 cells (lowest 2.78x: S vanilla, 1 thread).",
      'issue 17, M and L forwards at 75% of the FMA peak or more: met in all 3 cells (lowest 75.0%: L prefix-cache, 1 thread).',
    ]);
  });

  test('cells under a bar are each named with their figure; S is judged by its ratio only', () => {
    const lines = barSummary([
      cell('S', 'vanilla', 1, 2.46, 40), cell('S', 'prefix-cache', 2, 3.88, 38),
      cell('M', 'prefix-cache', 2, 3.01, 70), cell('L', 'prefix-cache', 1, 2.73, 74), cell('L', 'vanilla', 2, 2.57, 79),
    ]);
    expect(lines[0]).toBe("issue 17, S at 2.5x PyTorch's tokens/s or more: not met: S vanilla, 1 thread 2.46x (1 of 2 cells met).");
    expect(lines[1]).toBe('issue 17, M and L forwards at 75% of the FMA peak or more: not met: ' +
      'M prefix-cache, 2 threads 70.0%; L prefix-cache, 1 thread 74.0% (1 of 3 cells met).');
  });

  test('a run of one size prints only its bar; cells without a peak are not judged by it', () => {
    expect(barSummary([cell('S', 'vanilla', 1, 3.1)])).toHaveLength(1);
    expect(barSummary([cell('M', 'vanilla', 1, 2.4, 88)])).toEqual([
      'issue 17, M forwards at 75% of the FMA peak or more: met in its one cell (lowest 88.0%: M vanilla, 1 thread).',
    ]);
    expect(barSummary([cell('M', 'vanilla', 1, 2.4)])).toEqual([]);
    expect(barSummary([])).toEqual([]);
  });

  test('a figure just under a bar is not met, and prints cut, not rounded up to the bar', () => {
    const [ratioLine, percentLine] = barSummary([
      cell('S', 'vanilla', 1, 2.4996), cell('M', 'prefix-cache', 2, 3.1, 74.96), cell('L', 'vanilla', 1, 2.7, 75),
    ]);
    expect(ratioLine).toContain('not met: S vanilla, 1 thread 2.49x');
    expect(percentLine).toContain('not met: M prefix-cache, 2 threads 74.9% (1 of 2 cells met)');
  });

  test('a NaN figure (a failed timing) counts as under the bar', () => {
    const [line] = barSummary([cell('S', 'vanilla', 1, Number.NaN), cell('S', 'vanilla', 2, 3)]);
    expect(line).toContain('not met: S vanilla, 1 thread NaNx');
  });
});

describe('truncated', () => {
  test('cuts toward zero at the given decimals', () => {
    expect(truncated(74.96, 1)).toBe('74.9');
    expect(truncated(75, 1)).toBe('75.0');
    expect(truncated(2.5, 2)).toBe('2.50');
    expect(truncated(0.29, 2)).toBe('0.29');  // 0.29 * 100 is 28.999999999999996 in floats
    expect(truncated(-1.25, 1)).toBe('-1.2');
    expect(truncated(Number.NaN, 1)).toBe('NaN');
  });
});

describe('peakSpreadWarning', () => {
  test('readings within 15% of their highest: no warning', () => {
    expect(peakSpreadWarning(new Map([[1, [224, 212, 215, 227]], [2, [431, 418, 429, 400]]]))).toBeUndefined();
    expect(peakSpreadWarning(new Map([[2, [430]]]))).toBeUndefined();
    expect(peakSpreadWarning(new Map())).toBeUndefined();
  });

  test('a reading that fell (a vCPU taken by the host) is named with its share and position', () => {
    const line = peakSpreadWarning(new Map([[1, [224, 212, 215, 227]], [2, [431, 418, 429, 223]]]));
    expect(line).toContain('2 threads: lowest 223 against 431 (52%, reading 4 of 4)');
    expect(line).not.toContain('1 thread:');
    expect(line).toMatch(/^warning: the FMA peak moved during this run/);
  });

  test('a NaN reading counts as moved; the share is a parameter', () => {
    expect(peakSpreadWarning(new Map([[1, [220, Number.NaN]]]))).toContain('1 thread: lowest NaN against NaN (NaN%, reading 2 of 2)');
    expect(peakSpreadWarning(new Map([[1, [220, 200]]]), 0.95)).toContain('lowest 200 against 220 (91%');
  });
});
