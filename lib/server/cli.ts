// `streaming-dllm serve [--model DIR] [--port 8080] [--host 127.0.0.1] [--max-batch N]
// [--max-queue N] [--threads N]`: runs until SIGINT or SIGTERM, then closes cleanly.
import type { ServeOptions } from '../../types';
import { serve } from './index';

export const SERVE_USAGE = `Usage: streaming-dllm serve [--model DIR] [--port 8080] [--host 127.0.0.1]
                            [--max-batch 8] [--max-queue 64] [--threads N]
  POST /v1/completions, POST /v1/chat/completions (OpenAI shapes; diffusion options as
  snake_case fields, e.g. "strategy", "gen_length"), GET /v1/models[/{id}], /health, /metrics`;

function parseServeArgs(argv: string[]): ServeOptions {
  const options: ServeOptions = {};
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isInteger(n)) throw new Error(`Expected an integer for ${flag} but received ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case '--model': options.model = v; i++; break;
      case '--host': options.host = v; i++; break;
      case '--port': options.port = num(a, v); i++; break;
      case '--max-batch': options.maxBatch = num(a, v); i++; break;
      case '--max-queue': options.maxQueue = num(a, v); i++; break;
      case '--threads': options.threads = num(a, v); i++; break;
      default: throw new Error(`Unknown argument ${a}\n${SERVE_USAGE}`);
    }
    if (a !== undefined && v === undefined) throw new Error(`${a} needs a value`);
  }
  return options;
}

export async function runServe(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const running = await serve(parseServeArgs(argv));
  console.error(`streaming-dllm: listening on ${running.url} (loading the model)`);
  running.ready.then(
    (model) => console.error(`streaming-dllm: ${model.dir} loaded (${model.backend}); serving`),
    (e: Error) => console.error(`streaming-dllm: the model failed to load: ${e.message} (/health answers 503)`),
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  console.error('streaming-dllm: shutting down');
  await running.close();
  return 0;
}
