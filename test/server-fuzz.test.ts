// Seeded mutations of valid OpenAI requests (fields deleted, replaced by odd values, odd
// fields added) against a real server: every answer is a 200 (a stream ending in [DONE]) or
// an OpenAI error object with a 4xx status, never a 5xx, a hang or a dropped connection,
// and the server still answers a plain request afterwards.
import { serve } from '../lib';
import { makeRng } from '../lib/tasks/rng';
import type { RunningServer } from '../types';
import { QUESTION, post } from './helpers/http';

const VALID: Array<[string, Record<string, unknown>]> = [
  ['/v1/completions', { prompt: 'What is 2+3?', max_tokens: 32, strategy: 'streaming', block_length: 32 }],
  ['/v1/completions', { prompt: ['a', [5, 6, 7]], max_tokens: 32, n: 2, temperature: 0.5, stop: ['\n'], stream: true, stream_options: { include_usage: true } }],
  ['/v1/chat/completions', { messages: [{ role: 'system', content: 'x' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }], max_tokens: 32, stream: true }],
  ['/v1/chat/completions', { messages: [{ role: 'user', content: QUESTION }], gen_length: 32, block_length: 16, strategy: 'dual-cache', threshold: 0.9, stop: 'x' }],
];
const ODD: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -1e308, '', 'x', '\u0000', '\ud800', [], [null], {}, { a: 1 }, [[]],
  2 ** 53, 'streaming', 'vanilla', 'slowfast', [1, 2], ['a'], 'A'.repeat(3000), 64, 32, 1024, 4096];
const ADDED = ['extra', 'n', 'stop', 'seed', 'temperature', 'steps', 'window', 'alpha', 'factor', 'logprobs', 'echo'];

function mutate(valid: unknown, r: () => number): unknown {
  const odd = () => structuredClone(ODD[Math.floor(r() * ODD.length)]);
  let root = structuredClone(valid) as unknown;
  const paths: string[][] = [];
  const walk = (v: unknown, p: string[]) => {
    paths.push(p);
    if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], [...p, k]);
  };
  walk(root, []);
  for (let i = 1 + Math.floor(r() * 3); i > 0; i--) {
    const p = paths[Math.floor(r() * paths.length)];
    if (p.length === 0) {
      if (r() < 0.1) root = odd();
      continue;
    }
    let parent = root as Record<string, unknown> | null;
    for (const k of p.slice(0, -1)) parent = parent !== null && typeof parent === 'object' ? (parent[k] as Record<string, unknown>) : null;
    if (parent === null || typeof parent !== 'object') continue;
    const c = r();
    if (c < 0.3) delete parent[p[p.length - 1]];
    else if (c < 0.9) parent[p[p.length - 1]] = odd();
    else parent[ADDED[Math.floor(r() * ADDED.length)]] = odd();
  }
  return root;
}

let server: RunningServer;
beforeAll(async () => {
  server = await serve({ port: 0, threads: 2, maxBatch: 4, maxQueue: 8 });
  await server.ready;
});
afterAll(() => server.close());

test.each([1, 2])('seed %i: 150 mutated requests, 200 or a 4xx error object each, never a 5xx', async (seed) => {
  const r = makeRng(seed);
  const statuses = new Map<number, number>();
  for (let i = 0; i < 150; i++) {
    const [route, valid] = VALID[Math.floor(r() * VALID.length)];
    const body = mutate(valid, r);
    const { status, json, text } = await post(server.url, route, body);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    const what = `${route} ${JSON.stringify(body).slice(0, 200)} -> ${status} ${text.slice(0, 200)}`;
    if (status === 200) {
      const streamed = body !== null && typeof body === 'object' && (body as { stream?: unknown }).stream === true;
      if (streamed) expect({ what, done: text.endsWith('data: [DONE]\n\n') }).toEqual({ what, done: true });
      else expect({ what, choices: Array.isArray(json?.choices) }).toEqual({ what, choices: true });
    } else {
      expect({ what, client: status >= 400 && status < 500 }).toEqual({ what, client: true });
      expect({ what, message: typeof json?.error?.message }).toEqual({ what, message: 'string' });
    }
  }
  // Both kinds happen: the mutations are neither all harmless nor all fatal.
  expect(statuses.get(200) ?? 0).toBeGreaterThan(5);
  expect(statuses.get(400) ?? 0).toBeGreaterThan(50);
  const after = await post(server.url, '/v1/completions', { prompt: QUESTION, max_tokens: 32 });
  expect(after.status).toBe(200);
});
