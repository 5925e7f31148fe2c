// Held-out accuracy of a checkpoint on the task suite (lib/tasks), with NFE and tokens/s.
//   npx tsc -p tsconfig.build.json && node dist/bench/accuracy.js --model models/dllm-mini-arith \
//       --task arithmetic --samples 200 --strategy vanilla --gen-length 256 --block-length 32 --steps 256
// Optional: --threshold T (or 'none'), --window W, --alpha A, --early-exit true|false,
//   --threads N, --show K (print K generations), --json FILE (per-item results),
//   --weights file|q8 (loadModel's weights option: q8 quantizes the linear weights at load),
//   --offset K (problems K .. K + samples - 1 of the held-out split instead of the first ones:
//   a tuning split disjoint from the 200 of the published table).
import * as fs from 'fs';
import { loadModel } from '../lib';
import { makeHeldOut, scoreAnswer, extractAnswer, TaskName, TASKS } from '../lib/tasks';
import type { GenerateOptions, StrategyName } from '../types';
import { wilsonInterval } from './stats';

interface Args {
  model?: string;
  task: TaskName;
  samples: number;
  offset: number;
  threads?: number;
  weights?: 'file' | 'q8';
  show: number;
  json?: string;
  options: GenerateOptions;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { task: 'arithmetic', samples: 200, offset: 0, show: 0, options: { strategy: 'vanilla', genLength: 256, blockLength: 32 } };
  const o = a.options;
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${argv[i]} needs a value`);
    switch (argv[i]) {
      case '--model': a.model = v; break;
      case '--task':
        if (!TASKS.includes(v as TaskName)) throw new Error(`--task must be one of ${TASKS.join(', ')}`);
        a.task = v as TaskName; break;
      case '--samples': a.samples = Number(v); break;
      case '--offset': a.offset = Number(v); break;
      case '--threads': a.threads = Number(v); break;
      case '--weights': a.weights = v as 'file' | 'q8'; break;
      case '--show': a.show = Number(v); break;
      case '--json': a.json = v; break;
      case '--strategy': o.strategy = v as StrategyName; break;
      case '--gen-length': o.genLength = Number(v); break;
      case '--block-length': o.blockLength = Number(v); break;
      case '--steps': o.steps = Number(v); break;
      case '--threshold': o.threshold = v === 'none' ? null : Number(v); break;
      case '--window': o.window = Number(v); break;
      case '--alpha': o.alpha = Number(v); break;
      case '--early-exit': o.earlyExit = v === 'true'; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
    i++;
  }
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!(Number.isInteger(args.offset) && args.offset >= 0)) throw new Error(`Expected a non-negative integer for --offset but received ${args.offset}`);
  const items = makeHeldOut(args.task, args.offset + args.samples).slice(args.offset);
  const model = await loadModel(args.model, { threads: args.threads, weights: args.weights });
  let correct = 0, nfe = 0, seconds = 0, genTokens = 0, tokensToEos = 0;
  const rows: object[] = [];
  try {
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const r = await model.generate(item.prompt, args.options);
      const ok = scoreAnswer(args.task, item, r.text);
      correct += ok ? 1 : 0;
      nfe += r.stats.nfe;
      seconds += r.stats.seconds;
      genTokens += r.tokens.length;
      const eos = r.tokens.indexOf(model.info.eosTokenId);
      tokensToEos += eos < 0 ? r.tokens.length : eos;
      rows.push({ id: item.id, ok, answer: item.answer, got: extractAnswer(args.task, r.text), text: r.text, nfe: r.stats.nfe });
      if (i < args.show) console.log(`--- ${item.id} (${ok ? 'ok' : 'WRONG'}) ${item.prompt}\n${r.text}`);
      if ((i + 1) % 20 === 0) process.stderr.write(`${i + 1}/${items.length}: ${correct} correct\n`);
    }
  } finally {
    model.dispose();
  }
  const n = items.length;
  const o = args.options;
  console.log(`model ${model.dir}  task ${args.task}  samples ${n}  strategy ${o.strategy}  gen ${o.genLength}  ` +
    `block ${o.blockLength}  steps ${o.steps ?? o.genLength}` + (o.threshold !== undefined ? `  threshold ${o.threshold}` : ''));
  const w = wilsonInterval(correct, n);
  console.log(`accuracy ${(100 * correct / n).toFixed(1)}% (${correct}/${n}), 95% Wilson interval [${(100 * w.low).toFixed(1)}, ${(100 * w.high).toFixed(1)}]`);
  console.log(`mean NFE ${(nfe / n).toFixed(1)}`);
  console.log(`tokens/s (all generated positions) ${(genTokens / seconds).toFixed(1)}  ` +
    `(up to first EOS) ${(tokensToEos / seconds).toFixed(1)}  total ${seconds.toFixed(1)} s`);
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ args, correct, n, interval95: w, nfe: nfe / n, seconds, rows }, null, 1));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
