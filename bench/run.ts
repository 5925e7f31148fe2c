// `npm run bench`: the paper's table in miniature on the shipped model. Every strategy and
// streaming ablation on the held-out splits, at each generation length; accuracy, mean NFE,
// tokens/s both ways, seconds per sample and speedup over vanilla measured in the same run.
// Writes bench/results/<time>.json, docs/BENCHMARKS.md and docs/benchmarks.svg.
//   node dist/bench/run.js [--model DIR] [--samples N] [--tasks arithmetic,list]
//     [--lengths 256,512] [--strategies vanilla,streaming,...] [--threads N]
//     [--sweep window|alpha] [--no-write]
import { execSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel, runtimeInfo } from '../lib';
import { packageRoot } from '../lib/native';
import { extractAnswer, makeHeldOut, scoreAnswer, TASKS, TaskName } from '../lib/tasks';
import type { DiffusionModel, GenerateOptions } from '../types';
import { CellSummary, detailTable, markdownTable, svgChart } from './report';
import { paperStreaming, STRATEGY_ROWS } from './suite';

interface Args {
  model?: string;
  samples: number;
  tasks: TaskName[];
  lengths: number[];
  strategies: string[];
  threads?: number;
  sweep?: 'window' | 'alpha';
  write: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { samples: 200, tasks: [...TASKS], lengths: [256, 512], strategies: STRATEGY_ROWS.map((r) => r.key), write: true };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const v = argv[i + 1];
    const need = () => { if (v === undefined) throw new Error(`Expected a value for ${flag}`); i++; return v; };
    switch (flag) {
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
  for (const t of a.tasks) if (!TASKS.includes(t)) throw new Error(`Expected one of ${TASKS.join(', ')} for --tasks but received ${t}`);
  for (const s of a.strategies) {
    if (!STRATEGY_ROWS.some((r) => r.key === s)) throw new Error(`Expected one of ${STRATEGY_ROWS.map((r) => r.key).join(', ')} for --strategies but received ${s}`);
  }
  if (!(a.samples >= 1 && a.samples <= 1000)) throw new Error(`Expected 1..1000 for --samples but received ${a.samples}`);
  if (a.sweep && a.sweep !== 'window' && a.sweep !== 'alpha') throw new Error(`Expected window or alpha for --sweep but received ${a.sweep}`);
  return a;
}

/** One line on stderr, redrawn: done/total, elapsed and ETA. */
class Progress {
  private done = 0;
  private readonly started = Date.now();
  constructor(private readonly total: number) {}
  tick(label: string): void {
    this.done++;
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = (elapsed / this.done) * (this.total - this.done);
    const width = 24;
    const fill = Math.round((width * this.done) / this.total);
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
  nfe: number;
  seconds: number;
  tokensUntilEos: number;
}

async function runCell(model: DiffusionModel, task: TaskName, items: ReturnType<typeof makeHeldOut>, genLength: number,
  options: GenerateOptions, progress: Progress, label: string): Promise<SampleRecord[]> {
  const records: SampleRecord[] = [];
  for (const item of items) {
    // Block length 32 unless the row sets its own (SlowFast's rows run one block, as its authors do).
    const r = await model.generate(item.prompt, { blockLength: 32, ...options, genLength });
    records.push({ id: item.id, correct: scoreAnswer(task, item, r.text), answer: extractAnswer(task, r.text), nfe: r.stats.nfe, seconds: r.stats.seconds, tokensUntilEos: r.stats.tokensUntilEos });
    progress.tick(label);
  }
  return records;
}

function summarise(key: string, label: string, task: string, genLength: number, recs: SampleRecord[]): CellSummary {
  const seconds = recs.reduce((a, r) => a + r.seconds, 0);
  return {
    strategy: key, label, task, genLength, samples: recs.length,
    accuracy: recs.filter((r) => r.correct).length / recs.length,
    meanNfe: recs.reduce((a, r) => a + r.nfe, 0) / recs.length,
    tokensPerSecond: (genLength * recs.length) / seconds,
    tokensPerSecondUntilEos: recs.reduce((a, r) => a + r.tokensUntilEos, 0) / seconds,
    meanSeconds: seconds / recs.length,
    speedup: null,
    sameAnswerAsVanilla: null,
  };
}

function machine(threads: number) {
  let commit = 'unknown';
  try { commit = execSync('git rev-parse --short HEAD', { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { /* not a checkout */ }
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, threads, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}`, commit };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const model = await loadModel(args.model, { threads: args.threads });
  const threads = runtimeInfo().threads;
  const cells: { summary: CellSummary; options: GenerateOptions; records: SampleRecord[] }[] = [];
  const plan: { key: string; label: string; task: TaskName; genLength: number; options: GenerateOptions }[] = [];
  for (const task of args.tasks) {
    for (const genLength of args.lengths) {
      if (args.sweep) {
        const base = paperStreaming(task, genLength);
        const values = args.sweep === 'window' ? [0, 16, 32, 64, 96, 128, 192, genLength] : [0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8];
        for (const v of values) {
          const o: GenerateOptions = { strategy: 'streaming', threshold: 0.9, ...base, earlyExit: true, [args.sweep]: v };
          plan.push({ key: `${args.sweep}=${v}`, label: `streaming ${args.sweep} ${v}`, task, genLength, options: o });
        }
      } else {
        for (const row of STRATEGY_ROWS.filter((r) => args.strategies.includes(r.key))) {
          plan.push({ key: row.key, label: row.label, task, genLength, options: row.options(task, genLength) });
        }
      }
    }
  }
  const progress = new Progress(plan.length * args.samples);
  for (const p of plan) {
    const items = makeHeldOut(p.task, args.samples);
    const records = await runCell(model, p.task, items, p.genLength, p.options, progress, `${p.task}@${p.genLength} ${p.key}`);
    cells.push({ summary: summarise(p.key, p.label, p.task, p.genLength, records), options: p.options, records });
  }
  progress.end();
  model.dispose();

  for (const c of cells) {
    const base = cells.find((x) => x.summary.strategy === 'vanilla' && x.summary.task === c.summary.task && x.summary.genLength === c.summary.genLength);
    c.summary.speedup = base ? c.summary.tokensPerSecond / base.summary.tokensPerSecond : null;
    // Same held-out items in the same order in every cell of a column.
    c.summary.sameAnswerAsVanilla = base
      ? c.records.filter((r, i) => r.answer === base.records[i].answer).length / c.records.length : null;
  }
  const summaries = cells.map((c) => c.summary);
  const m = machine(threads);
  const table = markdownTable(summaries);
  const detail = detailTable(summaries);
  console.log(`\n${table}\n\n${detail}\n`);
  if (!args.write) return;

  const root = packageRoot();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(root, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const jsonFile = path.join(resultsDir, `${args.sweep ? `sweep-${args.sweep}-` : ''}${stamp}.json`);
  fs.writeFileSync(jsonFile, JSON.stringify({ machine: m, model: path.relative(root, model.dir) || model.dir, args, cells }, null, 1));
  console.log(`wrote ${path.relative(root, jsonFile)}`);
  if (args.sweep) return;
  const svgName = 'benchmarks.svg';
  fs.writeFileSync(path.join(root, 'docs', svgName), svgChart(summaries));
  const cmd = `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim();
  const doc = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (\`${cmd}\`) at commit ${m.commit}, ${new Date().toISOString().slice(0, 10)}.`,
    `Machine: ${m.cpu}, ${m.cores} cores (${m.threads} threads used), ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; CPU backend.`,
    `Model: \`${path.relative(root, model.dir) || model.dir}\`; held-out split, ${args.samples} samples per cell; block length 32.`,
    'Tokens/s counts all generated positions (early-exit EOS fill included) over wall time, as the paper does;',
    '"to EOS" counts only tokens before the first EOS. Speedups are over vanilla in the same run and column.',
    `Raw per-sample figures: \`${path.relative(root, jsonFile)}\`.`,
    'Accuracy is only as meaningful as the model: read the model card of the model used before comparing accuracies.',
    '',
    '## Table (accuracy · tokens/s (speedup) · mean NFE)',
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
  fs.writeFileSync(path.join(root, 'docs', 'BENCHMARKS.md'), doc);
  console.log('wrote docs/BENCHMARKS.md and docs/benchmarks.svg');
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
