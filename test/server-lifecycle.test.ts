// The HTTP server's life on an ephemeral loopback port: /health while the model loads or
// after it failed, a full queue (429), clients that disconnect (their slots freed), a drain
// on close or SIGTERM, and CORS.
import * as net from 'net';
import { loadModel, serve } from '../lib';
import { runServe } from '../lib/server/cli';
import { LONG, MESSAGES, QUESTION, SHORT, Sample, holdOpen, metrics, post, rawRequest, request, value, waitForMetrics } from './helpers/http';

describe('loading, a full queue and disconnects', () => {
  test('/health is 503 while the model loads (the server listens first), 200 after', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const server = await serve({ port: 0, load: (limits) => gate.then(() => loadModel(undefined, { threads: 2, ...limits })) });
    try {
      const loading = await fetch(`${server.url}/health`);
      expect(loading.status).toBe(503);
      expect(await loading.json()).toMatchObject({ status: 'loading' });
      const early = await post(server.url, '/v1/completions', { prompt: 'x' });
      expect(early.status).toBe(503);
      expect(early.json.error.code).toBe('model_loading');
      expect(value(await metrics(server.url), 'streaming_dllm_model_loaded')).toBe(0);
      release();
      await server.ready;
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  test('the scheduler limits reach the model: maxBatch, maxQueue, maxBatchRows', async () => {
    const server = await serve({ port: 0, threads: 2, maxBatch: 3, maxQueue: 5, maxBatchRows: 300 });
    try {
      const model = await server.ready;
      expect(model.schedulerStats()).toMatchObject({ maxBatch: 3, maxQueue: 5, maxBatchRows: 300 });
    } finally {
      await server.close();
    }
    await expect(serve({ port: 0, maxBatchRows: 0 })).rejects.toThrow(/an integer >= 1 for maxBatchRows but received 0/);
  });

  test('a load failure keeps /health at 503 with the error', async () => {
    const server = await serve({ port: 0, model: '/nonexistent/model-dir' });
    try {
      await expect(server.ready).rejects.toThrow(/nonexistent/);
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'error', error: expect.stringMatching(/nonexistent/) });
    } finally {
      await server.close();
    }
  });

  test('close({ drainMs }): running generations finish, new ones get 503 and /health draining, then it closes', async () => {
    const server = await serve({ port: 0, threads: 2 });
    await server.ready;
    const streaming = { prompt: QUESTION, strategy: 'vanilla', gen_length: 128, block_length: 32, steps: 128, stream: true };
    // Two connections, each streaming an answer; once both have a block out, the server
    // drains and each connection asks for one more thing.
    const sockets = [0, 1].map(() => net.connect(server.port, '127.0.0.1'));
    const received = ['', ''];
    const ended = sockets.map((s) => new Promise<void>((resolve) => s.on('close', () => resolve())));
    const then = [rawRequest('POST', '/v1/completions', { prompt: QUESTION, ...SHORT }), rawRequest('GET', '/health')];
    let closed: Promise<void> | undefined;
    sockets.forEach((socket, i) => socket.on('data', (d: Buffer) => {
      received[i] += d.toString();
      if (!closed && received.every((r) => r.includes('data: '))) {
        closed = server.close({ drainMs: 60000 });
        sockets.forEach((s, j) => s.write(then[j]));
      }
    }));
    for (const socket of sockets) socket.write(rawRequest('POST', '/v1/completions', streaming));
    await Promise.all(ended);
    await closed;
    for (const r of received) {
      const answers = r.split(/(?=HTTP\/1\.1 )/);
      expect(answers).toHaveLength(2);
      expect(answers[0]).toMatch(/^HTTP\/1\.1 200 /);
      expect(answers[0]).toContain('data: [DONE]');
      expect(answers[1]).toMatch(/^HTTP\/1\.1 503 /);
      expect(answers[1]).toMatch(/connection: close/i);
    }
    expect(received[0]).toContain('"code":"shutting_down"');
    expect(received[1]).toContain('"status":"draining"');
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });

  test('the serve command drains on SIGTERM: the running stream ends with [DONE], then it returns', async () => {
    const listeners = [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')];
    const lines: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((m: unknown) => { lines.push(String(m)); });
    try {
      const done = runServe(['--port', '0', '--threads', '2', '--drain-seconds', '60']);
      const line = async (re: RegExp) => {
        for (let i = 0; i < 400 && !lines.some((l) => re.test(l)); i++) await new Promise((r) => setTimeout(r, 25));
        return lines.find((l) => re.test(l))!;
      };
      const url = /listening on (\S+)/.exec(await line(/listening on/))![1];
      expect(await line(/serving/)).toBeDefined();
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: QUESTION, strategy: 'vanilla', gen_length: 128, block_length: 32, steps: 128, stream: true }),
      });
      const reader = res.body!.getReader();
      let text = new TextDecoder().decode((await reader.read()).value);
      process.emit('SIGTERM');
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        text += new TextDecoder().decode(value);
      }
      expect(text).toMatch(/data: \[DONE\]\n\n$/);
      expect(await done).toBe(0);
      expect(lines.some((l) => /shutting down/.test(l))).toBe(true);
      // Its signal listeners are gone: a later signal does what it would without it.
      expect([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]).toEqual(listeners);
    } finally {
      spy.mockRestore();
    }
  });

  test('cors: allowed origins are named on answers and preflights get 204; others get no CORS headers', async () => {
    await expect(serve({ port: 0, cors: 'example.com' })).rejects.toThrow(/an origin such as http:\/\/localhost:3000 \(no path\) for cors/);
    await expect(serve({ port: 0, cors: [] })).rejects.toThrow(/for cors but received an array/);
    const server = await serve({ port: 0, threads: 2, cors: ['http://app.example', 'https://other.example:8443'] });
    try {
      await server.ready;
      const body = JSON.stringify({ prompt: QUESTION, ...SHORT });
      const json = { 'content-type': 'application/json' };
      const allowed = await request(`${server.url}/v1/completions`, 'POST', { ...json, origin: 'http://app.example' }, body);
      expect(allowed.status).toBe(200);
      expect(allowed.headers['access-control-allow-origin']).toBe('http://app.example');
      expect(allowed.headers.vary).toBe('origin');
      const stranger = await request(`${server.url}/v1/completions`, 'POST', { ...json, origin: 'http://evil.example' }, body);
      expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
      const pre = await request(`${server.url}/v1/chat/completions`, 'OPTIONS', {
        origin: 'https://other.example:8443', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-trace',
      });
      expect(pre.status).toBe(204);
      expect(pre.headers).toMatchObject({
        'access-control-allow-origin': 'https://other.example:8443', 'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'content-type, x-trace',
      });
      const refused = await request(`${server.url}/v1/chat/completions`, 'OPTIONS', { origin: 'http://evil.example', 'access-control-request-method': 'POST' });
      expect(refused.status).toBe(405);
      expect(refused.headers['access-control-allow-origin']).toBeUndefined();
      const health = await request(`${server.url}/health`, 'GET', { origin: 'http://app.example' });
      expect(health.headers['access-control-allow-origin']).toBe('http://app.example');
    } finally {
      await server.close();
    }
    const any = await serve({ port: 0, cors: '*', load: () => new Promise(() => undefined) });
    try {
      const health = await request(`${any.url}/health`, 'GET', { origin: 'http://anywhere.example' });
      expect(health.status).toBe(503);
      expect(health.headers['access-control-allow-origin']).toBe('*');
    } finally {
      await any.close();
    }
  });

  test('apiKey: /v1/ routes need Authorization: Bearer with a key (401 otherwise); /health and /metrics stay open', async () => {
    await expect(serve({ port: 0, apiKey: '' })).rejects.toThrow(/a non-empty key without whitespace for apiKey/);
    const error = await serve({ port: 0, apiKey: ['ok', 'secret value'] }).catch((e: Error) => e);
    expect(String(error)).toMatch(/for apiKey\[1\]/);
    expect(String(error)).not.toContain('secret value');
    const server = await serve({ port: 0, threads: 2, apiKey: ['key-one', 'key-two'], cors: '*' });
    try {
      await server.ready;
      const body = JSON.stringify({ prompt: QUESTION, ...SHORT });
      const json = { 'content-type': 'application/json' };
      const missing = await request(`${server.url}/v1/completions`, 'POST', json, body);
      expect(missing.status).toBe(401);
      expect(missing.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(missing.text).error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error', message: expect.stringMatching(/Missing API key/) });
      const wrong = await request(`${server.url}/v1/completions`, 'POST', { ...json, authorization: 'Bearer key-three' }, body);
      expect(wrong.status).toBe(401);
      expect(JSON.parse(wrong.text).error.message).toBe('Invalid API key');
      const right = await request(`${server.url}/v1/completions`, 'POST', { ...json, authorization: 'Bearer key-two' }, body);
      expect(right.status).toBe(200);
      expect((await request(`${server.url}/v1/models`, 'GET', {})).status).toBe(401);
      expect((await request(`${server.url}/v1/models`, 'GET', { authorization: 'bearer key-one' })).status).toBe(200);
      expect((await request(`${server.url}/health`, 'GET', {})).status).toBe(200);
      expect((await request(`${server.url}/metrics`, 'GET', {})).status).toBe(200);
      // A browser's preflight carries no credentials: it is answered without them.
      const pre = await request(`${server.url}/v1/completions`, 'OPTIONS', { origin: 'http://a.example', 'access-control-request-method': 'POST' });
      expect(pre.status).toBe(204);
    } finally {
      await server.close();
    }
  });

  test('a drain that runs out cuts the generation off', async () => {
    const server = await serve({ port: 0, threads: 2 });
    await server.ready;
    const a = holdOpen(server.url, '/v1/completions', { prompt: QUESTION, ...LONG, stream: true }, 1);
    await a.started;
    const t0 = Date.now();
    await server.close({ drainMs: 100 });
    expect(Date.now() - t0).toBeLessThan(2000);
    await a.ended;
  });

  test('a full queue answers 429; disconnected clients abort and free their slots', async () => {
    const server = await serve({ port: 0, threads: 2, maxBatch: 1, maxQueue: 1 });
    try {
      await server.ready;
      const base = server.url;
      // A decodes (streamed; its first block has arrived), B waits for the only slot.
      const a = holdOpen(base, '/v1/completions', { prompt: QUESTION, ...LONG, stream: true }, 1);
      await a.started;
      const b = holdOpen(base, '/v1/chat/completions', { messages: MESSAGES, ...LONG });
      await waitForMetrics(base, (s) => value(s, 'streaming_dllm_queue_depth') === 1);
      const refused = await post(base, '/v1/completions', { prompt: QUESTION, ...SHORT });
      expect(refused.status).toBe(429);
      expect(refused.json.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
      // A goes away mid-stream: B gets the slot. Then B goes away while decoding.
      a.req.destroy();
      await waitForMetrics(base, (s) => value(s, 'streaming_dllm_queue_depth') === 0 && value(s, 'streaming_dllm_active_sequences') === 1);
      b.req.destroy();
      // Both ended by the abort path (status 499), long before either could have finished.
      const aborted = (m: Sample[], route: string) => value(m, 'streaming_dllm_requests_total', { route, status: '499' });
      const s = await waitForMetrics(base, (m) => value(m, 'streaming_dllm_active_sequences') === 0
        && aborted(m, '/v1/completions') === 1 && aborted(m, '/v1/chat/completions') === 1);
      expect(value(s, 'streaming_dllm_nfe_total')).toBe(0);
      // The slot is free: the next request runs.
      const after = await post(base, '/v1/completions', { prompt: QUESTION, ...SHORT });
      expect(after.status).toBe(200);
      await Promise.all([a.ended, b.ended]);
    } finally {
      await server.close();
    }
  });
});
