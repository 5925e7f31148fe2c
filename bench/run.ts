// `npm run bench`: the paper's table in miniature on the shipped model. Every strategy and
// streaming ablation on the held-out splits, at each generation length; accuracy with its
// 95% Wilson interval and an exact McNemar test against vanilla on the same problems, mean
// NFE, tokens/s both ways, seconds per sample and speedup over vanilla measured in the same run.
// The full run (200 problems per cell, the figures of record) writes bench/results/<time>.json,
// docs/BENCHMARKS.md and docs/benchmarks.svg; vanilla's answers are cached in bench/cache/.
//   node dist/bench/run.js [--quick] [--model DIR] [--samples N] [--tasks arithmetic,list]
//     [--lengths 256,512] [--strategies vanilla,streaming,...] [--threads N]
//     [--sweep window|alpha|threshold] [--no-write] [--no-cache] [--cache-dir DIR] [--vanilla-timing N]
// --quick: 5 problems per cell at gen 256 (unless --samples/--lengths say otherwise), prints
//   the table marked "not a figure of record" and writes no docs and no results file.
// --vanilla-timing N: when vanilla's answers come from the cache, re-run N of them (default 5,
//   quick 2) to measure its speed in this run and check the cache; 0 uses the cached timings.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel, runtimeInfo } from '../lib';
import { packageRoot } from '../lib/native';
import { extractAnswer, makeHeldOut, scoreAnswer, TASKS, TaskName } from '../lib/tasks';
import type { DiffusionModel, GenerateOptions } from '../types';
import { VanillaCache } from './cache';
import { accuracyNotes, CellSummary, detailTable, markdownTable, recordStatus, svgChart } from './report';
import { compareWithVanilla, modelHash, wilsonInterval } from './stats';
import { paperStreaming, RUN_DEFAULTS, STRATEGY_ROWS } from './suite';
import { extractSection, gitCommit } from './doc-section';

interface Args {
  model?: string;
  samples: number;
  tasks: TaskName[];
  lengths: number[];
  strategies: string[];
  threads?: number;
  sweep?: 'window' | 'alpha' | 'threshold';
  write: boolean;
  quick: boolean;
  cache: boolean;
  cacheDir?: string;
  vanillaTiming: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    samples: RUN_DEFAULTS.full.samples, tasks: [...TASKS], lengths: [...RUN_DEFAULTS.full.lengths], strategies: STRATEGY_ROWS.map((r) => r.key),
    write: true, quick: false, cache: true, vanillaTiming: RUN_DEFAULTS.full.vanillaTiming,
  };
  const given = new Set<string>();
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const v = argv[i + 1];
    const need = () => { if (v === undefined) throw new Error(`Expected a value for ${flag}`); i++; return v; };
    given.add(flag);
    switch (flag) {
      case '--quick': a.quick = true; break;
      case '--no-cache': a.cache = false; break;
      case '--cache-dir': a.cacheDir = need(); break;
      case '--vanilla-timing': a.vanillaTiming = Number(need()); break;
      case '--model': a.model = need(); break;
      case '--samples': a.samples = Number(need()); break;
      case '--tasks': a.tasks = list(need()) as TaskName[]; break;
      case '--lengths': a.lengths = list(need()).map(Number); break;
      case '--strategies': a.strategies = list(need()); break;
      case '--threads': a.threads = Number(need()); break;
      case '--sweep': a.sweep = need() as Args['sweep']; break;
      case '--no-write': a.write = false; break;
      default: throw new Error(`Unknown argument ${flag}`);
    }
  }
  if (a.quick) {
    if (!given.has('--samples')) a.samples = RUN_DEFAULTS.quick.samples;
    if (!given.has('--lengths')) a.lengths = [...RUN_DEFAULTS.quick.lengths];
    if (!given.has('--vanilla-timing')) a.vanillaTiming = RUN_DEFAULTS.quick.vanillaTiming;
    a.write = false;
  }
  if (!(Number.isInteger(a.vanillaTiming) && a.vanillaTiming >= 0)) throw new Error(`Expected an integer >= 0 for --vanilla-timing but received ${a.vanillaTiming}`);
  for (const g of a.lengths) if (!(Number.isInteger(g) && g >= 32 && g % 32 === 0)) throw new Error(`Expected multiples of 32 for --lengths but received ${g}`);
  for (const t of a.tasks) if (!TASKS.includes(t)) throw new Error(`Expected one of ${TASKS.join(', ')} for --tasks but received ${t}`);
  for (const s of a.strategies) {
    if (!STRATEGY_ROWS.some((r) => r.key === s)) throw new Error(`Expected one of ${STRATEGY_ROWS.map((r) => r.key).join(', ')} for --strategies but received ${s}`);
  }
  if (!(a.samples >= 1 && a.samples <= 1000)) throw new Error(`Expected 1..1000 for --samples but received ${a.samples}`);
  if (a.sweep && !['window', 'alpha', 'threshold'].includes(a.sweep)) throw new Error(`Expected window, alpha or threshold for --sweep but received ${a.sweep}`);
  return a;
}

/** One line on stderr, redrawn: done/total, elapsed and ETA. */
class Progress {
  private done = 0;
  private readonly started = Date.now();
  constructor(private total: number) {}
  /** Items that will not run after all (answers read from the cache), or extra ones (re-timed). */
  adjust(delta: number): void {
    this.total = Math.max(this.done, this.total + delta);
  }
  tick(label: string): void {
    this.done++;
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = (elapsed / this.done) * (this.total - this.done);
    const width = 24;
    const fill = Math.min(width, Math.round((width * this.done) / this.total));
    const line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${this.done}/${this.total} ${elapsed.toFixed(0)}s eta ${eta.toFixed(0)}s ${label}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(100)}`);
    else if (this.done === this.total || this.done % 25 === 0) process.stderr.write(`${line}\n`);
  }
  end(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}

interface SampleRecord {
  id: string;
  correct: boolean;
  /** The extracted final answer (null when none), to compare strategies sample by sample. */
  answer: string | null;
  /** Generated text up to the first EOS. */
  text: string;
  nfe: number;
  seconds: number;
  tokensUntilEos: number;
  /** Read from the vanilla cache: its seconds are those of the run that computed it. */
  cached: boolean;
}

type Items = ReturnType<typeof makeHeldOut>;

async function runOne(model: DiffusionModel, task: TaskName, item: Items[number], genLength: number, options: GenerateOptions): Promise<SampleRecord> {
  // Block length 32 unless the row sets its own (SlowFast's rows run one block, as its authors do).
  const r = await model.generate(item.prompt, generateOptions(options, genLength));
  return {
    id: item.id, correct: scoreAnswer(task, item, r.text), answer: extractAnswer(task, r.text), text: r.text,
    nfe: r.stats.nfe, seconds: r.stats.seconds, tokensUntilEos: r.stats.tokensUntilEos, cached: false,
  };
}

/** Exactly what generate() receives; also the options part of the vanilla cache key. */
function generateOptions(options: GenerateOptions, genLength: number): GenerateOptions {
  return { blockLength: 32, ...options, genLength };
}

async function runCell(model: DiffusionModel, task: TaskName, items: Items, genLength: number,
  options: GenerateOptions, progress: Progress, label: string): Promise<SampleRecord[]> {
  const records: SampleRecord[] = [];
  for (const item of items) {
    records.push(await runOne(model, task, item, genLength, options));
    progress.tick(label);
  }
  return records;
}

/**
 * Vanilla's cell through the cache: problems missing from it are decoded and stored; when
 * fewer than `timing` were decoded, as many cached ones are decoded again to measure speed
 * in this run and to check the cache (a different answer means the engine's arithmetic
 * changed since: the whole cell is recomputed and the cache overwritten).
 */
async function runVanillaCell(model: DiffusionModel, task: TaskName, items: Items, genLength: number, options: GenerateOptions,
  progress: Progress, label: string, cache: VanillaCache, timing: number, commit: string): Promise<SampleRecord[]> {
  const fromCache = (item: Items[number]): SampleRecord | null => {
    const e = cache.get(item);
    if (!e) return null;
    return { id: item.id, correct: scoreAnswer(task, item, e.text), answer: extractAnswer(task, e.text), text: e.text, nfe: e.nfe, seconds: e.seconds, tokensUntilEos: e.tokensUntilEos, cached: true };
  };
  const store = (item: Items[number], r: SampleRecord) =>
    cache.put(item, { id: item.id, text: r.text, nfe: r.nfe, seconds: r.seconds, tokensUntilEos: r.tokensUntilEos, at: new Date().toISOString(), commit });
  const records: (SampleRecord | null)[] = items.map(fromCache);
  const missing = records.filter((r) => r === null).length;
  const recheck = Math.min(items.length - missing, Math.max(0, timing - missing));
  progress.adjust(recheck - (items.length - missing));
  let rechecked = 0;
  for (let i = 0; i < items.length; i++) {
    const old = records[i];
    if (old !== null && rechecked >= recheck) continue;
    const r = await runOne(model, task, items[i], genLength, options);
    progress.tick(label);
    if (old === null) {
      store(items[i], r);
    } else {
      rechecked++;
      if (old.text !== r.text) {
        process.stderr.write(`\nvanilla cache ${path.basename(cache.file)}: ${items[i].id} decodes to ${JSON.stringify(r.text)} now, ` +
          `${JSON.stringify(old.text)} in the cache; the engine's arithmetic changed: recomputing the cell\n`);
        progress.adjust(items.length - (recheck - rechecked));
        const fresh: SampleRecord[] = [];
        for (const item of items) {
          const x = await runOne(model, task, item, genLength, options);
          store(item, x);
          fresh.push(x);
          progress.tick(label);
        }
        return fresh;
      }
    }
    records[i] = r;
  }
  return records as SampleRecord[];
}

function summarise(key: string, label: string, task: string, genLength: number, recs: SampleRecord[]): CellSummary {
  // Speed from the problems decoded in this run; from the cached timings only when none was.
  const timed = recs.some((r) => !r.cached) ? recs.filter((r) => !r.cached) : recs;
  const seconds = timed.reduce((a, r) => a + r.seconds, 0);
  const correct = recs.filter((r) => r.correct).length;
  return {
    strategy: key, label, task, genLength, samples: recs.length,
    correct, accuracy: correct / recs.length, interval: wilsonInterval(correct, recs.length), vsVanilla: null,
    meanNfe: recs.reduce((a, r) => a + r.nfe, 0) / recs.length,
    tokensPerSecond: (genLength * timed.length) / seconds,
    tokensPerSecondUntilEos: timed.reduce((a, r) => a + r.tokensUntilEos, 0) / seconds,
    meanSeconds: seconds / timed.length,
    timedSamples: recs.filter((r) => !r.cached).length,
    cachedSamples: recs.filter((r) => r.cached).length,
    speedup: null,
    sameAnswerAsVanilla: null,
  };
}

function machine(threads: number) {
  const commit = gitCommit(packageRoot());
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, threads, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}`, commit };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const model = await loadModel(args.model, { threads: args.threads });
  const threads = runtimeInfo().threads;
  const m = machine(threads);
  const root = packageRoot();
  const cells: { summary: CellSummary; options: GenerateOptions; records: SampleRecord[]; wallSeconds: number }[] = [];
  const plan: { key: string; label: string; task: TaskName; genLength: number; options: GenerateOptions }[] = [];
  const vanillaRow = STRATEGY_ROWS.find((r) => r.key === 'vanilla')!;
  for (const task of args.tasks) {
    for (const genLength of args.lengths) {
      if (args.sweep) {
        // Vanilla first (from the cache once computed), so that every sweep point is tested against it.
        plan.push({ key: vanillaRow.key, label: vanillaRow.label, task, genLength, options: vanillaRow.options(task, genLength) });
        // Window and alpha sweep around the paper's settings at tau 0.9; the threshold sweep
        // around the package's defaults (window and alpha as shipped).
        const base: GenerateOptions = args.sweep === 'threshold' ? {} : { threshold: 0.9, ...paperStreaming(task, genLength) };
        const values = args.sweep === 'window' ? [0, 16, 32, 64, 96, 128, 192, genLength]
          : args.sweep === 'alpha' ? [0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8] : [0.8, 0.85, 0.9, 0.95, 0.97, 0.99];
        for (const v of values) {
          const o: GenerateOptions = { strategy: 'streaming', ...base, earlyExit: true, [args.sweep]: v };
          plan.push({ key: `${args.sweep}=${v}`, label: `streaming ${args.sweep} ${v}`, task, genLength, options: o });
        }
      } else {
        for (const row of STRATEGY_ROWS.filter((r) => args.strategies.includes(r.key))) {
          plan.push({ key: row.key, label: row.label, task, genLength, options: row.options(task, genLength) });
        }
      }
    }
  }
  const cacheDir = args.cacheDir ? path.resolve(args.cacheDir) : path.join(root, 'bench', 'cache');
  const hash = args.cache && plan.some((p) => p.key === 'vanilla') ? modelHash(model.dir) : null;
  const progress = new Progress(plan.length * args.samples);
  for (const p of plan) {
    const items = makeHeldOut(p.task, args.samples);
    const label = `${p.task}@${p.genLength} ${p.key}`;
    const t0 = Date.now();
    let records: SampleRecord[];
    if (p.key === 'vanilla' && hash !== null) {
      const cache = new VanillaCache(cacheDir, { modelHash: hash, backend: model.backend, task: p.task, genLength: p.genLength, options: generateOptions(p.options, p.genLength) });
      records = await runVanillaCell(model, p.task, items, p.genLength, p.options, progress, label, cache, args.vanillaTiming, m.commit);
    } else {
      records = await runCell(model, p.task, items, p.genLength, p.options, progress, label);
    }
    cells.push({ summary: summarise(p.key, p.label, p.task, p.genLength, records), options: p.options, records, wallSeconds: (Date.now() - t0) / 1000 });
  }
  progress.end();
  model.dispose();
  const wallSeconds = (Date.now() - started) / 1000;

  for (const c of cells) {
    const base = cells.find((x) => x.summary.strategy === 'vanilla' && x.summary.task === c.summary.task && x.summary.genLength === c.summary.genLength);
    c.summary.speedup = base ? c.summary.tokensPerSecond / base.summary.tokensPerSecond : null;
    // Same held-out items in the same order in every cell of a column.
    c.summary.sameAnswerAsVanilla = base
      ? c.records.filter((r, i) => r.answer === base.records[i].answer).length / c.records.length : null;
    c.summary.vsVanilla = base && base !== c ? compareWithVanilla(c.records.map((r) => r.correct), base.records.map((r) => r.correct)) : null;
  }
  const summaries = cells.map((c) => c.summary);
  const status = recordStatus(args.quick, args.samples);
  const tested = summaries.filter((c) => c.vsVanilla !== null).length;
  const notes = accuracyNotes(args.samples, tested);
  // Seconds per problem measured here times the problems of a cell: what the same cells cost
  // with every problem decoded (an empty vanilla cache), and with vanilla read from the cache.
  const estimate = (samples: number, vanillaCached: boolean) => summaries.reduce((a, c) =>
    a + c.meanSeconds * (c.strategy === 'vanilla' && vanillaCached ? Math.min(samples, args.vanillaTiming) : samples), 0);
  const hours = (s: number) => (s >= 5400 ? `${(s / 3600).toFixed(1)} h` : `${(s / 60).toFixed(1)} min`);
  const duration = `This run: ${hours(wallSeconds)} of wall time. From the seconds per problem measured in it, the same cells at ` +
    `${RUN_DEFAULTS.full.samples} problems take about ${hours(estimate(RUN_DEFAULTS.full.samples, false))} from an empty vanilla cache ` +
    `and ${hours(estimate(RUN_DEFAULTS.full.samples, true))} with vanilla's answers cached.`;
  const table = markdownTable(summaries, status);
  const detail = detailTable(summaries, status);
  console.log(`\n${table}\n\n${detail}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n\n${duration}\n`);
  if (!args.write) return;

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(root, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const jsonFile = path.join(resultsDir, `${args.sweep ? `sweep-${args.sweep}-` : ''}${stamp}.json`);
  fs.writeFileSync(jsonFile, JSON.stringify({ machine: m, model: path.relative(root, model.dir) || model.dir, modelHash: hash, args, wallSeconds, cells }, null, 1));
  console.log(`wrote ${path.relative(root, jsonFile)}`);
  if (args.sweep) return;
  const svgName = 'benchmarks.svg';
  fs.writeFileSync(path.join(root, 'docs', svgName), svgChart(summaries, status));
  const cmd = `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim();
  const doc = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (\`${cmd}\`) at commit ${m.commit}, ${new Date().toISOString().slice(0, 10)}.`,
    `Machine: ${m.cpu}, ${m.cores} cores (${m.threads} threads used), ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; ${model.backend.toUpperCase()} backend.`,
    `Model: \`${path.relative(root, model.dir) || model.dir}\`; held-out split, ${args.samples} samples per cell; block length 32 (SlowFast rows: one block).`,
    status.ofRecord
      ? `Figures of record: ${args.samples} problems per cell (${RUN_DEFAULTS.full.samples} or more make a figure of record).`
      : status.banner!,
    duration,
    'Tokens/s counts all generated positions (early-exit EOS fill included) over wall time, as the paper does;',
    '"to EOS" counts only tokens before the first EOS. Speedups are over vanilla in the same run and column.',
    `Raw per-sample figures: \`${path.relative(root, jsonFile)}\`.`,
    'Accuracy is only as meaningful as the model: read the model card of the model used before comparing accuracies.',
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    '## Table (accuracy [95% interval] · tokens/s (speedup) · mean NFE)',
    '',
    table,
    '',
    `![accuracy vs tokens/s](${svgName})`,
    '',
    '## Every cell',
    '',
    detail,
    '',
  ].join('\n');
  // The serving section belongs to `npm run bench:serve`: carried over as it was.
  const docFile = path.join(root, 'docs', 'BENCHMARKS.md');
  const serving = fs.existsSync(docFile) ? extractSection(fs.readFileSync(docFile, 'utf8'), 'bench:serve') : null;
  fs.writeFileSync(docFile, serving ? `${doc}\n${serving}\n` : doc);
  console.log('wrote docs/BENCHMARKS.md and docs/benchmarks.svg');
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
