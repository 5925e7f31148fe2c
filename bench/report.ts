// Turns benchmark cells into the paper-style markdown table and an SVG chart of
// accuracy against tokens/s, written by the bench itself. Accuracy cells carry their 95%
// Wilson interval and a mark when an exact McNemar test against vanilla (same problems)
// rejects equal accuracy at 5% (bench/stats.ts).
import { Interval, PairedComparison, RECORD_SAMPLES } from './stats';

export interface CellSummary {
  strategy: string;
  label: string;
  task: string;
  genLength: number;
  samples: number;
  /** Problems solved. */
  correct: number;
  accuracy: number;
  /** 95% Wilson score interval of the accuracy. */
  interval: Interval;
  /** Paired comparison with vanilla's cell of the same column (same problems); null for vanilla or without one. */
  vsVanilla: PairedComparison | null;
  meanNfe: number;
  /** All generated positions / wall time, as the paper counts. */
  tokensPerSecond: number;
  /** Tokens before the first EOS / wall time. */
  tokensPerSecondUntilEos: number;
  meanSeconds: number;
  /** Problems whose timing went into the speed figures (all but those read from the cache). */
  timedSamples: number;
  /** Problems whose answer was read from the vanilla cache. */
  cachedSamples: number;
  /** Over vanilla's tokens/s in the same run and column. */
  speedup: number | null;
  /** Fraction of samples whose extracted answer equals vanilla's on the same item (same run). */
  sameAnswerAsVanilla: number | null;
}

/** Whether a table holds figures of record, and how it says so when not. */
export interface RecordStatus {
  ofRecord: boolean;
  /** Shown above the table (and in the SVG title) when not of record. */
  banner: string | null;
  /** Appended to every accuracy cell when not of record. */
  cellTag: string | null;
}

export function recordStatus(quick: boolean, samples: number): RecordStatus {
  if (quick) {
    return {
      ofRecord: false,
      banner: `**Quick run (${samples} problems per cell): not a figure of record.** ` +
        `Its accuracies only show that the pipeline works; figures of record use ${RECORD_SAMPLES} or more problems per cell (\`npm run bench\` without \`--quick\`).`,
      cellTag: 'quick: not of record',
    };
  }
  if (samples < RECORD_SAMPLES) {
    return {
      ofRecord: false,
      banner: `**${samples} problems per cell: not a figure of record** (those use ${RECORD_SAMPLES} or more).`,
      cellTag: `n=${samples}: not of record`,
    };
  }
  return { ofRecord: true, banner: null, cellTag: null };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}`;

/** `63.5% [56.6, 69.9] ▼`: accuracy, 95% Wilson interval, mark when it differs from vanilla's. */
export function accuracyCell(c: CellSummary, status: RecordStatus): string {
  const mark = c.vsVanilla?.direction === 'worse' ? ' ▼' : c.vsVanilla?.direction === 'better' ? ' ▲' : '';
  const tag = status.cellTag ? ` (${status.cellTag})` : '';
  return `${pct(c.accuracy)}% [${pct(c.interval.low)}, ${pct(c.interval.high)}]${mark}${tag}`;
}

/** The notes that say how to read the accuracy figures; printed with the table and written into docs/BENCHMARKS.md. */
export function accuracyNotes(samples: number, cellsTested: number): string[] {
  return [
    `Accuracy: exact match of the final answer on the first ${samples} problems of the task's fixed held-out split, the same problems in every cell; ` +
      'beside it, in brackets, its 95% Wilson score interval (in %).',
    '▼ / ▲: the cell differs from vanilla in the same column (lower / higher) by an exact McNemar test at the 5% level: ' +
      'the problems solved by exactly one of the two are counted (gains for the strategy, losses), and a two-sided binomial test ' +
      'of gains among gains + losses against 1/2 gives p < 0.05. The test is paired (the same problems are used), which is why it ' +
      'can resolve differences that the two intervals, overlapping, cannot; "vs vanilla" in the detail table gives +gains/-losses and p. ' +
      (cellsTested > 0
        ? `Each cell is tested alone, with no correction for the ${cellsTested} tests of the table: with no real difference anywhere, about one in twenty marks by chance.`
        : 'No cell of this table has a vanilla cell in its column to be tested against.'),
    'Vanilla (greedy, one token per step) is deterministic: its answers are computed once per model and read from a cache (`bench/cache/`, keyed by ' +
      "the model files' content hash, the backend, the decoding options and each problem's id and prompt; `--no-cache` to recompute). " +
      "When they come from the cache, vanilla's tokens/s and s/sample are re-measured in the run on a few problems, whose answers are checked against the cache " +
      '(a mismatch recomputes the cell); "timed" in the detail table says on how many.',
  ];
}

export function markdownTable(cells: CellSummary[], status: RecordStatus): string {
  const columns = [...new Set(cells.map((c) => `${c.task}|${c.genLength}`))];
  const rows = [...new Set(cells.map((c) => c.strategy))];
  const head = ['strategy', ...columns.map((col) => col.replace('|', ' @ '))];
  const lines = status.banner ? [status.banner, ''] : [];
  lines.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const label = cells.find((c) => c.strategy === r)!.label;
    const parts = columns.map((col) => {
      const c = cells.find((x) => x.strategy === r && `${x.task}|${x.genLength}` === col);
      if (!c) return '—';
      const speed = c.speedup === null ? '' : ` (${c.speedup.toFixed(1)}x)`;
      return `${accuracyCell(c, status)} · ${c.tokensPerSecond.toFixed(1)} tok/s${speed} · NFE ${c.meanNfe.toFixed(1)}`;
    });
    lines.push(`| ${label.trim()} | ${parts.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function detailTable(cells: CellSummary[], status: RecordStatus): string {
  const lines = status.banner ? [status.banner, ''] : [];
  lines.push(
    '| task | gen | strategy | samples | correct | accuracy % [95% Wilson] | vs vanilla: +gains/-losses, McNemar p | same answer as vanilla % | mean NFE | tok/s (all) | tok/s (to EOS) | s/sample | timed | speedup |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const c of cells) {
    const same = c.sameAnswerAsVanilla === null ? '—' : pct(c.sameAnswerAsVanilla);
    const vs = c.vsVanilla === null ? '—'
      : `+${c.vsVanilla.gains}/-${c.vsVanilla.losses}, p ${c.vsVanilla.p < 0.001 ? '< 0.001' : c.vsVanilla.p.toFixed(3)}` +
        `${c.vsVanilla.direction === 'worse' ? ' ▼' : c.vsVanilla.direction === 'better' ? ' ▲' : ''}`;
    const acc = `${pct(c.accuracy)} [${pct(c.interval.low)}, ${pct(c.interval.high)}]${status.cellTag ? ` (${status.cellTag})` : ''}`;
    lines.push(`| ${c.task} | ${c.genLength} | ${c.label.trim()} | ${c.samples} | ${c.correct} | ${acc} | ${vs} | ${same} | ${c.meanNfe.toFixed(1)} | ` +
      `${c.tokensPerSecond.toFixed(1)} | ${c.tokensPerSecondUntilEos.toFixed(1)} | ${c.meanSeconds.toFixed(3)} | ` +
      `${c.timedSamples === c.samples ? 'all' : `${c.timedSamples} (${c.cachedSamples} cached)`} | ` +
      `${c.speedup === null ? '—' : `${c.speedup.toFixed(1)}x`} |`);
  }
  return lines.join('\n');
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

/** Accuracy (y) against tokens/s (x, log scale), one colour per strategy, one marker per column. */
export function svgChart(cells: CellSummary[], status?: RecordStatus): string {
  const W = 760, H = 460, L = 70, R = 230, T = 30, B = 60;
  const xs = cells.map((c) => Math.log10(Math.max(c.tokensPerSecond, 1e-3)));
  const x0 = Math.floor(Math.min(...xs)), x1 = Math.ceil(Math.max(...xs) + 1e-9);
  const px = (v: number) => L + ((Math.log10(Math.max(v, 1e-3)) - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const py = (a: number) => T + (1 - a) * (H - T - B);
  const strategies = [...new Set(cells.map((c) => c.strategy))];
  const columns = [...new Set(cells.map((c) => `${c.task} @ ${c.genLength}`))];
  const markers = ['circle', 'square', 'diamond', 'triangle'];
  const shape = (kind: string, x: number, y: number, fill: string) => {
    if (kind === 'circle') return `<circle cx="${x}" cy="${y}" r="5" fill="${fill}"/>`;
    if (kind === 'square') return `<rect x="${x - 4.5}" y="${y - 4.5}" width="9" height="9" fill="${fill}"/>`;
    if (kind === 'diamond') return `<polygon points="${x},${y - 6} ${x + 6},${y} ${x},${y + 6} ${x - 6},${y}" fill="${fill}"/>`;
    return `<polygon points="${x},${y - 6} ${x + 6},${y + 5} ${x - 6},${y + 5}" fill="${fill}"/>`;
  };
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="14">Accuracy (95% Wilson interval) vs throughput per strategy` +
      `${status && !status.ofRecord ? ` (${status.cellTag ?? 'not of record'})` : ''}</text>`];
  for (let a = 0; a <= 1.0001; a += 0.2) {
    out.push(`<line x1="${L}" x2="${W - R}" y1="${py(a)}" y2="${py(a)}" stroke="#ddd"/>`,
      `<text x="${L - 8}" y="${py(a) + 4}" text-anchor="end">${Math.round(a * 100)}%</text>`);
  }
  for (let e = x0; e <= x1; e++) {
    const x = L + ((e - x0) / Math.max(1, x1 - x0)) * (W - L - R);
    out.push(`<line x1="${x}" x2="${x}" y1="${T}" y2="${H - B}" stroke="#ddd"/>`,
      `<text x="${x}" y="${H - B + 18}" text-anchor="middle">${10 ** e}</text>`);
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 15}" text-anchor="middle">tokens/s (all generated positions, log scale)</text>`,
    `<text x="18" y="${(T + H - B) / 2}" transform="rotate(-90 18 ${(T + H - B) / 2})" text-anchor="middle">accuracy</text>`);
  for (const c of cells) {
    const color = COLORS[strategies.indexOf(c.strategy) % COLORS.length];
    const marker = markers[columns.indexOf(`${c.task} @ ${c.genLength}`) % markers.length];
    const x = px(c.tokensPerSecond);
    out.push(`<line x1="${x}" x2="${x}" y1="${py(c.interval.low)}" y2="${py(c.interval.high)}" stroke="${color}" stroke-width="1.5"/>`,
      shape(marker, x, py(c.accuracy), color));
  }
  strategies.forEach((s, i) => {
    const label = cells.find((c) => c.strategy === s)!.label.trim();
    out.push(`<rect x="${W - R + 15}" y="${T + i * 18}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${W - R + 30}" y="${T + i * 18 + 9}">${label.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`);
  });
  columns.forEach((col, i) => {
    const y = T + (strategies.length + 1 + i) * 18;
    out.push(shape(markers[i % markers.length], W - R + 20, y + 4, '#444'), `<text x="${W - R + 30}" y="${y + 9}">${col}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
