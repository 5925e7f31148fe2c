// Turns benchmark cells into the paper-style markdown table and an SVG chart of
// accuracy against tokens/s, written by the bench itself.
export interface CellSummary {
  strategy: string;
  label: string;
  task: string;
  genLength: number;
  samples: number;
  accuracy: number;
  meanNfe: number;
  /** All generated positions / wall time, as the paper counts. */
  tokensPerSecond: number;
  /** Tokens before the first EOS / wall time. */
  tokensPerSecondUntilEos: number;
  meanSeconds: number;
  /** Over vanilla's tokens/s in the same run and column. */
  speedup: number | null;
  /** Fraction of samples whose extracted answer equals vanilla's on the same item (same run). */
  sameAnswerAsVanilla: number | null;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}`;

export function markdownTable(cells: CellSummary[]): string {
  const columns = [...new Set(cells.map((c) => `${c.task}|${c.genLength}`))];
  const rows = [...new Set(cells.map((c) => c.strategy))];
  const head = ['strategy', ...columns.map((col) => col.replace('|', ' @ '))];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const label = cells.find((c) => c.strategy === r)!.label;
    const parts = columns.map((col) => {
      const c = cells.find((x) => x.strategy === r && `${x.task}|${x.genLength}` === col);
      if (!c) return '—';
      const speed = c.speedup === null ? '' : ` (${c.speedup.toFixed(1)}x)`;
      return `${pct(c.accuracy)}% · ${c.tokensPerSecond.toFixed(1)} tok/s${speed} · NFE ${c.meanNfe.toFixed(1)}`;
    });
    lines.push(`| ${label.trim()} | ${parts.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function detailTable(cells: CellSummary[]): string {
  const lines = [
    '| task | gen | strategy | samples | accuracy % | same answer as vanilla % | mean NFE | tok/s (all) | tok/s (to EOS) | s/sample | speedup |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const c of cells) {
    const same = c.sameAnswerAsVanilla === null ? '—' : pct(c.sameAnswerAsVanilla);
    lines.push(`| ${c.task} | ${c.genLength} | ${c.label.trim()} | ${c.samples} | ${pct(c.accuracy)} | ${same} | ${c.meanNfe.toFixed(1)} | ` +
      `${c.tokensPerSecond.toFixed(1)} | ${c.tokensPerSecondUntilEos.toFixed(1)} | ${c.meanSeconds.toFixed(3)} | ` +
      `${c.speedup === null ? '—' : `${c.speedup.toFixed(1)}x`} |`);
  }
  return lines.join('\n');
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

/** Accuracy (y) against tokens/s (x, log scale), one colour per strategy, one marker per column. */
export function svgChart(cells: CellSummary[]): string {
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
    `<text x="${L}" y="18" font-size="14">Accuracy vs throughput per strategy (CPU backend, shipped model)</text>`];
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
    out.push(shape(marker, px(c.tokensPerSecond), py(c.accuracy), color));
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
