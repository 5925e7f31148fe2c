// The server's request log and X-Request-Id, on a real loopback server: one entry per
// answered request with the figures the response itself reports, the refusal's message for
// a 4xx, 499 for a client that left, an internal error's stack (and, with no log option,
// that stack on stderr), and a log function that throws changing nothing.
import * as net from 'net';
import { loadModel, serve } from '../lib';
import { jsonLinesLog } from '../lib/server/cli';
import type { DiffusionModel, RequestLogEntry, RunningServer } from '../types';
import { LONG, QUESTION, SHORT, holdOpen, post, request, sseEvents } from './helpers/http';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The first value `find` returns that is not undefined, polled briefly (undefined if none comes). */
async function waitFor<T>(find: () => T | undefined): Promise<T | undefined> {
  for (let i = 0; i < 200; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

/** The entry for the request with this id (entries are written just after the answer ends: polled briefly). */
async function entryOf(log: RequestLogEntry[], id: string): Promise<RequestLogEntry> {
  const entry = await waitFor(() => {
    const found = log.filter((e) => e.id === id);
    if (found.length > 1) throw new Error(`${found.length} entries for request ${id}`);
    return found[0];
  });
  if (!entry) throw new Error(`no log entry for request ${id}`);
  return entry;
}

/** The model with generate() failing as a bug would (a plain Error, not a refusal). */
function failingModel(model: DiffusionModel): DiffusionModel {
  return new Proxy(model, {
    get(target, key) {
      if (key === 'generate') return async () => { throw new Error('boom in generate'); };
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('request log and X-Request-Id', () => {
  const log: RequestLogEntry[] = [];
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve({ port: 0, threads: 2, log: (e) => log.push(e) });
    await server.ready;
  });
  afterAll(() => server.close());

  test('X-Request-Id: the client\'s plain id is kept, anything else replaced by a UUID, on every route and status', async () => {
    const kept = await request(`${server.url}/health`, 'GET', { 'x-request-id': 'trace-42.a:b_c' });
    expect(kept.headers['x-request-id']).toBe('trace-42.a:b_c');
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', 'caf\u00e9', '']) {
      const replaced = await request(`${server.url}/health`, 'GET', { 'x-request-id': bad });
      expect(replaced.headers['x-request-id']).toMatch(UUID);
    }
    for (const [method, route] of [['GET', '/health'], ['GET', '/nowhere'], ['POST', '/v1/completions'], ['GET', '/metrics']]) {
      const res = await request(`${server.url}${route}`, method, { 'content-type': 'application/json' }, method === 'POST' ? '{"prompt": 5}' : undefined);
      expect(res.headers['x-request-id']).toMatch(UUID);
    }
  });

  test('a completion\'s entry carries the usage and NFE its response reports', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'whole-1' },
      body: JSON.stringify({ prompt: QUESTION, ...SHORT }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    const entry = await entryOf(log, 'whole-1');
    expect(entry).toMatchObject({
      method: 'POST', path: '/v1/completions', status: 200,
      promptTokens: body.usage.prompt_tokens, completionTokens: body.usage.completion_tokens, nfe: body.stats.nfe,
      finishReasons: [expect.stringMatching(/^(eos|stop|length)$/)],
    });
    expect(entry.ms).toBeGreaterThan(0);
    expect(Date.parse(entry.time)).not.toBeNaN();
    expect(entry.error).toBeUndefined();
    // Nothing of the prompt or the answer in the entry.
    expect(JSON.stringify(entry)).not.toContain('apples');
    expect(JSON.stringify(entry)).not.toContain(body.choices[0].text.trim() || '\u0000');
  });

  test('a streamed chat\'s entry counts every run once; n choices of a greedy request share one run', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'stream-1' },
      body: JSON.stringify({ messages: [{ role: 'user', content: QUESTION }], stream: true, n: 3, stream_options: { include_usage: true }, ...SHORT }),
    });
    const events = sseEvents(await res.text());
    const usage = JSON.parse(events[events.length - 2]).usage;
    const entry = await entryOf(log, 'stream-1');
    expect(entry.status).toBe(200);
    expect(entry.finishReasons).toHaveLength(1);
    // usage counts the three choices; the log the one generation that ran.
    expect(entry.completionTokens! * 3).toBe(usage.completion_tokens);
    expect(entry.promptTokens! * 3).toBe(usage.prompt_tokens);
  });

  test('a refusal is logged with the message its client got; a client that leaves is 499', async () => {
    const refused = await post(server.url, '/v1/completions', { prompt: QUESTION, max_tokens: -3 });
    expect(refused.status).toBe(400);
    const id = refused.json && (await waitFor(() => log.find((e) => e.status === 400 && e.error === refused.json.error.message)))?.id;
    expect(id).toBeDefined();
    const entry = await entryOf(log, id!);
    expect(entry).toMatchObject({ method: 'POST', path: '/v1/completions' });
    expect(entry.stack).toBeUndefined();
    expect(entry.nfe).toBeUndefined();

    const before = log.length;
    const held = holdOpen(server.url, '/v1/completions', { prompt: QUESTION, stream: true, ...LONG }, 1);
    await held.started;
    held.req.destroy();
    await held.ended;
    expect(await waitFor(() => log.slice(before).find((e) => e.status === 499))).toMatchObject({ path: '/v1/completions', error: 'The client closed the connection' });
  });

  test('a client that leaves while sending its body is 499 too, not an internal error', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write('POST /v1/completions HTTP/1.1\r\nhost: x\r\nx-request-id: cut-body\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"prompt": "Ann');
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    const entry = await entryOf(log, 'cut-body');
    expect(entry).toMatchObject({ status: 499, error: 'The client closed the connection while sending the body' });
    expect(entry.stack).toBeUndefined();
  });
});

describe('internal errors', () => {
  let model: DiffusionModel;
  beforeAll(async () => {
    model = await loadModel(undefined, { threads: 2 });
  });
  afterAll(() => model.dispose());

  test('an internal error answers 500 and its entry keeps the stack; a throwing log changes nothing', async () => {
    const log: RequestLogEntry[] = [];
    let calls = 0;
    const server = await serve({ port: 0, load: async () => failingModel(model), log: (e) => { calls++; log.push(e); throw new Error('the log itself fails'); } });
    try {
      await server.ready;
      const res = await post(server.url, '/v1/completions', { prompt: QUESTION, ...SHORT });
      expect(res.status).toBe(500);
      expect(res.json.error.message).toBe('Internal error: boom in generate');
      expect(res.json.error.message).not.toMatch(/ at /);  // the stack stays on the server
      const entry = (await waitFor(() => log.find((e) => e.status === 500)))!;
      expect(entry.error).toBe('Internal error: boom in generate');
      expect(entry.stack).toMatch(/Error: boom in generate\n\s+at /);
      // The server still answers after its log threw.
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      expect(calls).toBeGreaterThanOrEqual(2);
    } finally {
      await server.close();
    }
  });

  test('with no log option only internal errors reach stderr, with their stack', async () => {
    const printed: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => { printed.push(args.join(' ')); });
    const server = await serve({ port: 0, load: async () => failingModel(model) });
    try {
      await server.ready;
      expect((await post(server.url, '/v1/completions', { prompt: QUESTION, max_tokens: -3 })).status).toBe(400);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      expect((await post(server.url, '/v1/completions', { prompt: QUESTION, ...SHORT })).status).toBe(500);
      await waitFor(() => (printed.length > 0 ? true : undefined));
      await new Promise((r) => setTimeout(r, 20));  // and nothing more after it
      expect(printed).toHaveLength(1);
      expect(printed[0]).toMatch(/^streaming-dllm: POST \/v1\/completions failed \(request [0-9a-f-]{36}\): Error: boom in generate\n\s+at /);
    } finally {
      spy.mockRestore();
      await server.close();
    }
  });

  test('serve() refuses a log that is not a function; --log-requests writes one JSON line an entry', async () => {
    await expect(serve({ port: 0, log: 'stderr' as never })).rejects.toThrow(/Expected a function \(entry\) => void for log but received/);
    const lines: string[] = [];
    const entry: RequestLogEntry = { time: new Date(0).toISOString(), id: 'a', method: 'GET', path: '/health', status: 200, ms: 0.4 };
    jsonLinesLog((line) => lines.push(line))!(entry);
    expect(lines).toEqual([`${JSON.stringify(entry)}\n`]);
  });
});
