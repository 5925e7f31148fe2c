#!/usr/bin/env node
// `streaming-dllm generate [--model DIR] [--strategy S] [options] "prompt"`: prints text as
// blocks finish, then a stats line.
import type { GenerateOptions } from '../types';
import { loadModel } from './index';
import { formatInspect, inspect } from './inspect';
import { runQuantize } from './quantize';
import { runServe } from './server/cli';

const USAGE = `Usage: streaming-dllm generate [options] "prompt"
       streaming-dllm inspect [--json]
       streaming-dllm quantize DIR OUT   (writes an 8-bit Q8_0 copy of a checkpoint)
       streaming-dllm serve [--model DIR] [--port 8080] [--host 127.0.0.1] [--max-batch N] [--max-queue N]
Options:
  --model DIR            model directory (default: the shipped model)
  --strategy NAME        vanilla | prefix-cache | dual-cache | streaming | slowfast (default streaming)
  --gen-length N         positions to generate (default 256)
  --block-length N       block length (default 32)
  --steps N              fixed-schedule steps (default gen-length)
  --threshold T|none     confidence threshold (default 0.9; streaming 0.95 on LLaDA; none = fixed schedule)
  --window N             streaming suffix window (default 96)
  --alpha A              streaming dynamic-threshold alpha (default: 0 for LLaDA, 0.3 for Dream)
  --early-exit / --no-early-exit
  --exploration-steps K  slowfast: exploration calls per sub-cycle (default 6)
  --cycle-threshold C    slowfast: confidence counted in the span estimate (default 0.3)
  --stability-window W   slowfast: estimates compared to settle the span (default 2)
  --stability-std S      slowfast: settle when their std is below S (default 1.0)
  --high-confidence H    slowfast: commit together at >= H (default 0.9)
  --max-sub-cycles N     slowfast: sub-cycles per block at most (default 256)
  --prefix-cache         slowfast: attend to a KV cache of the committed blocks
  --temperature T        sampling temperature (default 0)
  --confidence KIND      prob | margin | entropy | random
  --seed N
  --stop TEXT            end the text before TEXT (repeat for several; "\\n" is a newline)
  --no-chat              do not apply the chat template
  --threads N            CPU threads
  --weights file|q8      q8: quantize the linear weights to 8 bits at load (CPU backend)`;

interface Parsed {
  command: string;
  prompt?: string;
  model?: string;
  threads?: number;
  weights?: 'file' | 'q8';
  json?: boolean;
  options: GenerateOptions;
}

function parse(argv: string[]): Parsed {
  const [command, ...rest] = argv;
  const options: GenerateOptions = {};
  const parsed: Parsed = { command: command ?? 'help', options };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || Number.isNaN(n)) throw new Error(`Expected a number for ${flag} but received ${v}`);
    return n;
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const next = (): string | undefined => rest[++i];
    switch (a) {
      case '--model': parsed.model = next(); break;
      case '--threads': parsed.threads = num(a, next()); break;
      case '--weights': parsed.weights = next() as Parsed['weights']; break;
      case '--strategy': options.strategy = next() as GenerateOptions['strategy']; break;
      case '--gen-length': options.genLength = num(a, next()); break;
      case '--block-length': options.blockLength = num(a, next()); break;
      case '--steps': options.steps = num(a, next()); break;
      case '--threshold': { const v = next(); options.threshold = v === 'none' ? null : num(a, v); break; }
      case '--window': options.window = num(a, next()); break;
      case '--alpha': options.alpha = num(a, next()); break;
      case '--early-exit': options.earlyExit = true; break;
      case '--no-early-exit': options.earlyExit = false; break;
      case '--exploration-steps': options.explorationSteps = num(a, next()); break;
      case '--cycle-threshold': options.cycleThreshold = num(a, next()); break;
      case '--stability-window': options.stabilityWindow = num(a, next()); break;
      case '--stability-std': options.stabilityStd = num(a, next()); break;
      case '--high-confidence': options.highConfidence = num(a, next()); break;
      case '--max-sub-cycles': options.maxSubCycles = num(a, next()); break;
      case '--prefix-cache': options.prefixCache = true; break;
      case '--temperature': options.temperature = num(a, next()); break;
      case '--confidence': options.confidence = next() as GenerateOptions['confidence']; break;
      case '--seed': options.seed = num(a, next()); break;
      case '--stop': {
        const text = next();
        if (text === undefined) throw new Error('Expected a text for --stop');
        const stops = Array.isArray(options.stop) ? options.stop : [];
        options.stop = [...stops, text.replace(/\\n/g, '\n').replace(/\\t/g, '\t')];
        break;
      }
      case '--no-chat': options.chat = false; break;
      case '--json': parsed.json = true; break;
      case '-h': case '--help': parsed.command = 'help'; break;
      default:
        if (a.startsWith('--')) throw new Error(`Unknown option ${a}\n${USAGE}`);
        parsed.prompt = parsed.prompt === undefined ? a : `${parsed.prompt} ${a}`;
    }
  }
  return parsed;
}

async function main(): Promise<number> {
  if (process.argv[2] === 'serve') return runServe(process.argv.slice(3));
  if (process.argv[2] === 'quantize') return runQuantize(process.argv.slice(3));
  const args = parse(process.argv.slice(2));
  if (args.command === 'inspect') {
    const report = inspect();
    console.log(args.json ? JSON.stringify(report, null, 2) : formatInspect(report));
    return 0;
  }
  if (args.command !== 'generate' || args.prompt === undefined) {
    console.log(USAGE);
    return args.command === 'help' ? 0 : 2;
  }
  const model = await loadModel(args.model, { threads: args.threads, weights: args.weights });
  try {
    let stats;
    for await (const chunk of model.stream(args.prompt, args.options)) {
      if (chunk.text) process.stdout.write(chunk.text);
      if (chunk.result) stats = chunk.result.stats;
    }
    if (stats) {
      process.stdout.write('\n');
      console.error(
        `[${args.options.strategy ?? 'streaming'}] nfe ${stats.nfe}, ${stats.seconds.toFixed(3)} s, ` +
          `${stats.tokensPerSecond.toFixed(1)} tok/s (all positions), ` +
          `${stats.tokensPerSecondUntilEos.toFixed(1)} tok/s (until EOS, ${stats.tokensUntilEos} tokens), ` +
          `${stats.blocksDecoded} blocks`,
      );
    }
  } finally {
    model.dispose();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`streaming-dllm: ${e.message}`);
    process.exit(1);
  },
);
