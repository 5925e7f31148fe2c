// The statistics and the cache key behind the accuracy figures of `npm run bench`
// (bench/stats.ts, bench/report.ts, bench/cache.ts): pure functions, no model.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { VanillaCache } from '../bench/cache';
import { extractSection, spliceSection } from '../bench/doc-section';
import { accuracyCell, CellSummary, detailTable, markdownTable, recordStatus } from '../bench/report';
import {
  binomialTwoSidedP, canonicalJson, compareWithVanilla, modelHash, problemKey, vanillaCacheKey, VanillaCacheKeyInput, wilsonInterval,
} from '../bench/stats';

describe('wilsonInterval', () => {
  // Reference values: scipy.stats.binomtest(k, n).proportion_ci(method='wilson'), rounded.
  test('matches an independent implementation', () => {
    // 144/200 (the shipped model's vanilla figure): 65.4% .. 77.8%
    const a = wilsonInterval(144, 200);
    expect(a.low).toBeCloseTo(0.65408, 4);
    expect(a.high).toBeCloseTo(0.77763, 4);
    // 8/10: 49.0% .. 94.3%
    const b = wilsonInterval(8, 10);
    expect(b.low).toBeCloseTo(0.49016, 4);
    expect(b.high).toBeCloseTo(0.94332, 4);
  });

  test('the ends: never outside [0, 1], never empty', () => {
    const zero = wilsonInterval(0, 10);
    expect(zero.low).toBe(0);
    expect(zero.high).toBeCloseTo(0.27753, 4);
    const all = wilsonInterval(200, 200);
    expect(all.high).toBe(1);
    expect(all.low).toBeCloseTo(0.98115, 4);
    const one = wilsonInterval(1, 1);
    expect(one.low).toBeGreaterThan(0);
    expect(one.high).toBe(1);
  });

  test('contains the point estimate, symmetric in k <-> n-k, narrows with n', () => {
    for (const [k, n] of [[3, 7], [50, 200], [199, 200], [13, 16]]) {
      const w = wilsonInterval(k, n);
      expect(w.low).toBeLessThanOrEqual(k / n);
      expect(w.high).toBeGreaterThanOrEqual(k / n);
      const m = wilsonInterval(n - k, n);
      expect(m.low).toBeCloseTo(1 - w.high, 12);
      expect(m.high).toBeCloseTo(1 - w.low, 12);
    }
    const small = wilsonInterval(7, 10), big = wilsonInterval(140, 200);
    expect(big.high - big.low).toBeLessThan(small.high - small.low);
  });

  test('refuses what is not a count', () => {
    expect(() => wilsonInterval(3, 0)).toThrow(RangeError);
    expect(() => wilsonInterval(11, 10)).toThrow(RangeError);
    expect(() => wilsonInterval(0.5, 10)).toThrow(RangeError);
  });
});

describe('binomialTwoSidedP (exact, p = 1/2)', () => {
  test('small cases by hand', () => {
    expect(binomialTwoSidedP(0, 0)).toBe(1);
    expect(binomialTwoSidedP(0, 1)).toBe(1);
    expect(binomialTwoSidedP(0, 5)).toBeCloseTo(2 / 32, 15);
    expect(binomialTwoSidedP(5, 5)).toBeCloseTo(2 / 32, 15);
    expect(binomialTwoSidedP(1, 5)).toBeCloseTo(12 / 32, 15);
    expect(binomialTwoSidedP(2, 4)).toBe(1);
    // 0 of 6 is significant at 5% (p = 2/64), 1 of 6 is not (p = 14/64)
    expect(binomialTwoSidedP(0, 6)).toBeCloseTo(0.03125, 15);
    expect(binomialTwoSidedP(1, 6)).toBeCloseTo(0.21875, 15);
  });

  test('agrees with a direct sum of the binomial coefficients', () => {
    const choose = (n: number, k: number) => { let c = 1; for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1); return c; };
    for (const [k, n] of [[3, 20], [10, 40], [7, 25], [30, 50]]) {
      const m = Math.min(k, n - k);
      let tail = 0;
      for (let i = 0; i <= m; i++) tail += choose(n, i);
      expect(binomialTwoSidedP(k, n)).toBeCloseTo(Math.min(1, (2 * tail) / 2 ** n), 12);
    }
  });

  test('large n stays finite and tiny', () => {
    const p = binomialTwoSidedP(0, 1000);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(1e-290);
    expect(binomialTwoSidedP(500, 1000)).toBe(1);
    expect(binomialTwoSidedP(450, 1000)).toBeLessThan(0.002);
  });
});

describe('compareWithVanilla (exact McNemar)', () => {
  const run = (pairs: [boolean, boolean][]) => compareWithVanilla(pairs.map((p) => p[0]), pairs.map((p) => p[1]));
  const repeat = <T>(x: T, n: number): T[] => Array.from({ length: n }, () => x);

  test('only discordant problems count', () => {
    // 100 both right, 50 both wrong, 2 gains, 12 losses: p = P(X <= 2 | 14) * 2
    const r = run([...repeat<[boolean, boolean]>([true, true], 100), ...repeat<[boolean, boolean]>([false, false], 50),
      ...repeat<[boolean, boolean]>([true, false], 2), ...repeat<[boolean, boolean]>([false, true], 12)]);
    expect(r.gains).toBe(2);
    expect(r.losses).toBe(12);
    expect(r.p).toBeCloseTo((2 * (1 + 14 + 91)) / 2 ** 14, 12);
    expect(r.significant).toBe(true);
    expect(r.direction).toBe('worse');
  });

  test('the issue 20 case: 72.0% vanilla, 63.5% streaming on 200 problems', () => {
    // 144 vs 127 correct; with 20 losses and 3 gains the paired test rejects (p = 0.00049, as
    // scipy.stats.binomtest(3, 23) gives), although the
    // two 95% intervals overlap ([65.4, 77.8] and [56.6, 69.9]).
    const pairs: [boolean, boolean][] = [
      ...repeat<[boolean, boolean]>([true, true], 124), ...repeat<[boolean, boolean]>([false, true], 20),
      ...repeat<[boolean, boolean]>([true, false], 3), ...repeat<[boolean, boolean]>([false, false], 53),
    ];
    const r = run(pairs);
    expect([r.gains, r.losses]).toEqual([3, 20]);
    expect(r.p).toBeLessThan(0.001);
    expect(r.direction).toBe('worse');
    const s = wilsonInterval(127, 200), v = wilsonInterval(144, 200);
    expect(s.high).toBeGreaterThan(v.low);
  });

  test('balanced or few discordant problems are not marked; gains can be', () => {
    expect(run([[true, false], [false, true], [true, true]])).toMatchObject({ gains: 1, losses: 1, p: 1, significant: false, direction: null });
    expect(run(repeat<[boolean, boolean]>([true, false], 5))).toMatchObject({ gains: 5, losses: 0, significant: false });
    expect(run(repeat<[boolean, boolean]>([true, false], 6))).toMatchObject({ gains: 6, losses: 0, significant: true, direction: 'better' });
    expect(run(repeat<[boolean, boolean]>([true, true], 10))).toMatchObject({ gains: 0, losses: 0, p: 1, significant: false });
  });

  test('refuses results on different problems', () => {
    expect(() => compareWithVanilla([true], [true, false])).toThrow(RangeError);
  });
});

describe('vanilla cache key', () => {
  const base: VanillaCacheKeyInput = {
    modelHash: 'a'.repeat(64), backend: 'cpu', task: 'arithmetic', genLength: 256,
    options: { blockLength: 32, strategy: 'vanilla', steps: 256, threshold: null, genLength: 256 },
  };

  test('canonical JSON sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 3 }], c: undefined } })).toBe('{"a":{"d":[1,{"x":3,"y":2}]},"b":1}');
    expect(canonicalJson(null)).toBe('null');
    expect(() => canonicalJson({ x: NaN })).toThrow(TypeError);
  });

  test('stable under key order, changed by anything that decides the output', () => {
    const k = vanillaCacheKey(base);
    expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(vanillaCacheKey({ ...base, options: { genLength: 256, threshold: null, steps: 256, strategy: 'vanilla', blockLength: 32 } })).toBe(k);
    const variants: VanillaCacheKeyInput[] = [
      { ...base, modelHash: 'b'.repeat(64) },
      { ...base, backend: 'cuda' },
      { ...base, task: 'list' },
      { ...base, genLength: 512 },
      { ...base, options: { ...base.options, steps: 128 } },
      { ...base, options: { ...base.options, blockLength: 64 } },
      { ...base, options: { ...base.options, temperature: 0.5 } },
    ];
    const keys = new Set([k, ...variants.map(vanillaCacheKey)]);
    expect(keys.size).toBe(variants.length + 1);
  });

  test('a problem is keyed by its id and its prompt', () => {
    const a = problemKey({ id: 'arithmetic-heldout-3', prompt: 'Ann has 2 pens. How many pens now?' });
    expect(a.startsWith('arithmetic-heldout-3:')).toBe(true);
    expect(problemKey({ id: 'arithmetic-heldout-3', prompt: 'Ann has 3 pens. How many pens now?' })).not.toBe(a);
    expect(problemKey({ id: 'arithmetic-heldout-4', prompt: 'Ann has 2 pens. How many pens now?' })).not.toBe(a);
  });

  test('modelHash covers weights, config, tokenizer and template, and nothing else', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdllm-hash-'));
    try {
      const write = (f: string, s: string) => fs.writeFileSync(path.join(dir, f), s);
      write('config.json', '{"d_model":8}');
      write('tokenizer.json', '{}');
      write('tokenizer_config.json', '{"chat_template":"x"}');
      write('model.safetensors', 'weights');
      const h = modelHash(dir);
      expect(h).toMatch(/^[0-9a-f]{64}$/);
      write('README.md', 'a model card');
      expect(modelHash(dir)).toBe(h);
      for (const [f, s] of [['model.safetensors', 'weightz'], ['config.json', '{"d_model":9}'], ['tokenizer.json', '{ }'], ['tokenizer_config.json', '{"chat_template":"y"}']]) {
        const old = fs.readFileSync(path.join(dir, f), 'utf8');
        write(f, s);
        expect(modelHash(dir)).not.toBe(h);
        write(f, old);
        expect(modelHash(dir)).toBe(h);
      }
      fs.unlinkSync(path.join(dir, 'tokenizer.json'));
      expect(() => modelHash(dir)).toThrow(/tokenizer\.json/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('VanillaCache stores per problem, survives a reload, merges concurrent writers', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdllm-cache-'));
    try {
      const item = { id: 'arithmetic-heldout-0', prompt: 'p0' };
      const other = { id: 'arithmetic-heldout-1', prompt: 'p1' };
      const answer = { id: item.id, text: '1+1=2\n#### 2', nfe: 256, seconds: 5.8, tokensUntilEos: 12, at: 'now', commit: 'abc' };
      const a = new VanillaCache(dir, base);
      const b = new VanillaCache(dir, base);
      expect(a.get(item)).toBeUndefined();
      a.put(item, answer);
      b.put(other, { ...answer, id: other.id });
      const c = new VanillaCache(dir, base);
      expect(c.size).toBe(2);
      expect(c.get(item)).toEqual(answer);
      expect(c.get({ ...item, prompt: 'changed' })).toBeUndefined();
      expect(new VanillaCache(dir, { ...base, genLength: 512 }).size).toBe(0);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tables', () => {
  const cell = (over: Partial<CellSummary>): CellSummary => ({
    strategy: 'streaming', label: 'Streaming-dLLM', task: 'arithmetic', genLength: 256, samples: 200, correct: 127,
    accuracy: 0.635, interval: wilsonInterval(127, 200), vsVanilla: null, meanNfe: 4.7, tokensPerSecond: 5000,
    tokensPerSecondUntilEos: 400, meanSeconds: 0.05, timedSamples: 200, cachedSamples: 0, speedup: 100, sameAnswerAsVanilla: 0.8, ...over,
  });

  test('an accuracy cell: interval, and a mark only when the paired test rejects', () => {
    const record = recordStatus(false, 200);
    expect(record.ofRecord).toBe(true);
    expect(accuracyCell(cell({}), record)).toBe('63.5% [56.6, 69.9]');
    const worse = compareWithVanilla([...Array(20).fill(false), ...Array(3).fill(true)], [...Array(20).fill(true), ...Array(3).fill(false)]);
    expect(accuracyCell(cell({ vsVanilla: worse }), record)).toBe('63.5% [56.6, 69.9] ▼');
  });

  test('quick and small runs say on the table and in every accuracy cell that they are not of record', () => {
    const quick = recordStatus(true, 5);
    expect(quick.ofRecord).toBe(false);
    expect(recordStatus(true, 500).ofRecord).toBe(false);
    const small = recordStatus(false, 10);
    expect(small.ofRecord).toBe(false);
    for (const status of [quick, small]) {
      const cells = [cell({ strategy: 'vanilla', label: 'vanilla' }), cell({}), cell({ genLength: 512 })];
      for (const t of [markdownTable(cells, status), detailTable(cells, status)]) {
        expect(t.split('\n')[0]).toMatch(/not a figure of record/);
        const accuracyCells = t.match(/\d+\.\d% \[|\| \d+\.\d \[/g) ?? [];
        const tagged = t.match(/not of record\)/g) ?? [];
        expect(accuracyCells.length).toBe(cells.length);
        expect(tagged.length).toBe(cells.length);
      }
    }
    expect(markdownTable([cell({})], quick)).toMatch(/quick: not of record/);
    expect(markdownTable([cell({})], recordStatus(false, 200))).not.toMatch(/record/);
  });
});

describe('sections of docs/BENCHMARKS.md owned by another benchmark (bench/doc-section.ts)', () => {
  const doc = '# Benchmarks\n\nTable of npm run bench.\n';
  test('appended when absent, replaced in place when present, the rest of the document untouched', () => {
    const once = spliceSection(doc, 'bench:serve', '## Serving\n\nrun 1\n');
    expect(once).toBe('# Benchmarks\n\nTable of npm run bench.\n\n<!-- bench:serve:begin -->\n## Serving\n\nrun 1\n<!-- bench:serve:end -->\n');
    const twice = spliceSection(once.replace('Table', 'New table'), 'bench:serve', '## Serving\n\nrun 2 $& $1');
    expect(twice).toContain('New table of npm run bench.');
    expect(twice).toContain('run 2 $& $1');  // replacement patterns are not interpreted
    expect(twice).not.toContain('run 1');
    expect(twice.match(/bench:serve:begin/g)).toHaveLength(1);
  });

  test('extracted with its markers, and what `npm run bench` carries over is what was there', () => {
    const withSection = spliceSection(doc, 'bench:serve', 'the serving table');
    const section = extractSection(withSection, 'bench:serve')!;
    expect(section).toBe('<!-- bench:serve:begin -->\nthe serving table\n<!-- bench:serve:end -->');
    expect(extractSection(`# Regenerated\n\n${section}\n`, 'bench:serve')).toBe(section);
    expect(extractSection(doc, 'bench:serve')).toBeNull();
    // An end marker before the begin marker is no section.
    expect(extractSection('<!-- bench:serve:end -->\n<!-- bench:serve:begin -->', 'bench:serve')).toBeNull();
    expect(extractSection(withSection, 'other')).toBeNull();
  });
});
