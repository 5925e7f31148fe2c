// `streaming-dllm serve [--model DIR] [--port 8080] [--host 127.0.0.1] [--max-batch N]
// [--max-queue N] [--threads N] [--drain-seconds 30] [--log-requests]`: runs until SIGINT or SIGTERM, then
// lets the admitted generations finish (at most --drain-seconds; a second signal stops at
// once) and closes.
import type { ServeOptions } from '../../types';
import { serve } from './index';

export const SERVE_USAGE = `Usage: streaming-dllm serve [--model DIR] [--port 8080] [--host 127.0.0.1]
                            [--max-batch 8] [--max-queue 64] [--max-batch-rows 8192] [--threads N] [--drain-seconds 30]
                            [--cors '*' | --cors ORIGIN[,ORIGIN...]] [--api-key KEY]... [--log-requests]
  The API key may also come from STREAMING_DLLM_API_KEY (keeps it out of the process list).
  --log-requests: one JSON line per answered request on stderr (id, route, status, ms, tokens,
  NFE; never prompts or answers). Without it only internal errors are logged, with their stack.
  Every response carries X-Request-Id (the client's own when it sends a plain one).
  POST /v1/completions, POST /v1/chat/completions (OpenAI shapes; diffusion options as
  snake_case fields, e.g. "strategy", "gen_length"), GET /v1/models[/{id}], /health, /metrics`;

/** ServeOptions.log for --log-requests: JSON lines on stderr. */
export function jsonLinesLog(write: (line: string) => void = (line) => process.stderr.write(line)): ServeOptions['log'] {
  return (entry) => write(`${JSON.stringify(entry)}\n`);
}

function parseServeArgs(argv: string[]): ServeOptions & { drainSeconds: number; apiKey?: string[] } {
  // --api-key repeats: the keys collect here (the environment's is added by runServe).
  const options: ServeOptions & { drainSeconds: number; apiKey?: string[] } = { drainSeconds: 30 };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isInteger(n)) throw new Error(`Expected an integer for ${flag} but received ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--log-requests') {  // the one flag without a value
      options.log = jsonLinesLog();
      continue;
    }
    const v = argv[i + 1];
    switch (a) {
      case '--model': options.model = v; i++; break;
      case '--host': options.host = v; i++; break;
      case '--port': options.port = num(a, v); i++; break;
      case '--max-batch': options.maxBatch = num(a, v); i++; break;
      case '--max-queue': options.maxQueue = num(a, v); i++; break;
      case '--max-batch-rows': options.maxBatchRows = num(a, v); i++; break;
      case '--threads': options.threads = num(a, v); i++; break;
      case '--drain-seconds': options.drainSeconds = num(a, v); i++; break;
      case '--cors': options.cors = v === undefined ? v : v.split(','); i++; break;
      case '--api-key': if (v !== undefined) options.apiKey = [...(options.apiKey ?? []), v]; i++; break;
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
  const { drainSeconds, ...serveOptions } = parseServeArgs(argv);
  const envKey = process.env.STREAMING_DLLM_API_KEY;
  if (envKey !== undefined && envKey !== '') {
    serveOptions.apiKey = [...(serveOptions.apiKey ?? []), envKey];
  }
  if (drainSeconds < 0) throw new Error(`Expected an integer >= 0 for --drain-seconds but received ${drainSeconds}`);
  const running = await serve(serveOptions);
  console.error(`streaming-dllm: listening on ${running.url} (loading the model)`);
  running.ready.then(
    (model) => console.error(`streaming-dllm: ${model.dir} loaded (${model.backend}); serving`),
    (e: Error) => console.error(`streaming-dllm: the model failed to load: ${e.message} (/health answers 503)`),
  );
  await nextSignal();
  console.error(`streaming-dllm: shutting down (letting running generations finish, at most ${drainSeconds} s; signal again to stop now)`);
  // A second signal while draining: stop now.
  const again = nextSignal();
  await Promise.race([running.close({ drainMs: drainSeconds * 1000 }), again]);
  again.cancel();
  return 0;
}

/** The next SIGINT or SIGTERM; cancel() removes the listeners (a process with none left exits on a signal as usual). */
function nextSignal(): Promise<void> & { cancel(): void } {
  let stop!: () => void;
  const signalled = new Promise<void>((resolve) => {
    stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return Object.assign(signalled, { cancel: () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); } });
}
