// Tokens/s and NFE of every strategy on one checkpoint, measured in the same run.
//   npm run build:ts && node dist/bench/strategies.js [--model DIR] [--prompt TEXT | --tokens 1,2,3]
//       [--gen-length 256] [--block-length 32] [--threads N] [--repeat 1]
import * as os from 'os';
import { loadModel } from '../lib';
import type { GenerateOptions } from '../types';

interface Args {
  model?: string;
  prompt: string | number[];
  genLength: number;
  blockLength: number;
  threads?: number;
  repeat: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { prompt: 'Tom has 12 apples and buys 7 more. How many apples does he have now?', genLength: 256, blockLength: 32, repeat: 1 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--model': a.model = v; i++; break;
      case '--prompt': a.prompt = v; i++; break;
      case '--tokens': a.prompt = v.split(',').map(Number); i++; break;
      case '--gen-length': a.genLength = Number(v); i++; break;
      case '--block-length': a.blockLength = Number(v); i++; break;
      case '--threads': a.threads = Number(v); i++; break;
      case '--repeat': a.repeat = Number(v); i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const model = await loadModel(args.model, { threads: args.threads });
  const { genLength, blockLength } = args;
  const rows: [string, GenerateOptions][] = [
    ['vanilla (1 token/step)', { strategy: 'vanilla', steps: genLength }],
    ['prefix-cache tau 0.9', { strategy: 'prefix-cache', threshold: 0.9 }],
    ['dual-cache tau 0.9', { strategy: 'dual-cache', threshold: 0.9 }],
    ['streaming (w 96, a 0.3, exit)', { strategy: 'streaming' }],
  ];
  console.log(`model ${model.dir}: d_model ${model.info.dModel}, ${model.info.nLayers} layers, ${model.info.dtype}, ` +
    `${(model.info.weightBytes / 1e6).toFixed(1)} MB; ${os.cpus()[0]?.model ?? 'cpu'}, gen ${genLength}, block ${blockLength}`);
  console.log('| strategy | NFE | s | tok/s (all) | tok/s (to EOS) | speedup | same tokens as vanilla |');
  console.log('|---|---|---|---|---|---|---|');
  let base: { seconds: number; tokens: Int32Array } | undefined;
  for (const [name, o] of rows) {
    let seconds = 0;
    let last;
    for (let r = 0; r < args.repeat; r++) {
      last = await model.generate(args.prompt, { ...o, genLength, blockLength });
      seconds += last.stats.seconds;
    }
    seconds /= args.repeat;
    const s = last!.stats;
    if (!base) base = { seconds, tokens: last!.tokens };
    const eosAt = (t: Int32Array) => { const i = t.indexOf(model.info.eosTokenId); return i < 0 ? t.length : i; };
    const same = eosAt(last!.tokens) === eosAt(base.tokens) &&
      last!.tokens.subarray(0, eosAt(base.tokens)).every((t, i) => t === base!.tokens[i]);
    console.log(`| ${name} | ${s.nfe} | ${seconds.toFixed(3)} | ${(genLength / seconds).toFixed(1)} | ` +
      `${(s.tokensUntilEos / seconds).toFixed(1)} | ${(base.seconds / seconds).toFixed(1)}x | ${same ? 'yes' : 'no'} |`);
  }
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
