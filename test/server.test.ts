// The HTTP server (lib/server/) on an ephemeral loopback port, driven by real HTTP clients
// (test/helpers/http.ts): OpenAI shapes whole and as server-sent events, stop sequences,
// several prompts, 400s naming the field, 413, and /metrics read back through a Prometheus
// text parser. Loading, the queue, disconnects, draining and CORS: server-lifecycle.test.ts.
import * as http from 'http';
import * as net from 'net';
import { serve } from '../lib';
import type { DiffusionModel, RunningServer } from '../types';
import { MESSAGES, QUESTION, SHORT, metrics, parsePrometheus, post, sseEvents, value } from './helpers/http';

test('the Prometheus parser rejects malformed expositions', () => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2\n';
  expect(parsePrometheus(ok)).toEqual([{ name: 'a_total', labels: { x: '1' }, value: 2 }]);
  expect(() => parsePrometheus('a_total 2\n')).toThrow(/before the TYPE/);
  expect(() => parsePrometheus('# TYPE a_total counter\na_total two\n')).toThrow(/bad sample value/);
  expect(() => parsePrometheus('# TYPE a_total counter\na_total{x=1} 2\n')).toThrow(/bad labels/);
  expect(() => parsePrometheus('# TYPE a_total counter\na_total 2')).toThrow(/newline/);
  const hist = (inf: number) => `# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} ${inf}\nh_sum 3\nh_count 3\n`;
  expect(parsePrometheus(hist(3))).toHaveLength(4);
  expect(() => parsePrometheus(hist(4))).toThrow(/_count differs/);
  expect(() => parsePrometheus(hist(1))).toThrow(/not cumulative/);
});

describe('a served model', () => {
  let server: RunningServer;
  let model: DiffusionModel;
  let base: string;
  beforeAll(async () => {
    server = await serve({ port: 0, host: '127.0.0.1', threads: 2, maxBatch: 2, maxQueue: 2, bodyLimit: 64 * 1024 });
    model = await server.ready;
    base = server.url;
  });
  afterAll(() => server.close());

  test('POST /v1/completions answers what the library generates, with usage', async () => {
    const { status, json } = await post(base, '/v1/completions', { prompt: QUESTION, ...SHORT });
    const expected = await model.generate(QUESTION, { strategy: 'streaming', genLength: 64, blockLength: 32 });
    expect(status).toBe(200);
    expect(json).toMatchObject({ object: 'text_completion', model: 'dllm-mini-arith', choices: [{ index: 0, text: expected.text, finish_reason: 'stop' }] });
    expect(json.id).toMatch(/^cmpl-/);
    expect(json.usage).toEqual({
      prompt_tokens: expected.promptTokens.length, completion_tokens: expected.stats.completionTokens,
      total_tokens: expected.promptTokens.length + expected.stats.tokensUntilEos,
    });
    expect(json.stats.nfe).toBe(expected.stats.nfe);
  });

  test('max_tokens is gen_length; token-id prompts are fed as they are', async () => {
    const ids = Array.from(await model.encodePrompt(QUESTION));
    const { status, json } = await post(base, '/v1/completions', { prompt: ids, max_tokens: 64, block_length: 32, strategy: 'streaming' });
    const expected = await model.generate(ids, { genLength: 64, blockLength: 32 });
    expect(status).toBe(200);
    expect(json.choices[0].text).toBe(expected.text);
    expect(json.stats.gen_length).toBe(64);
  });

  test('POST /v1/chat/completions renders the messages with the chat template', async () => {
    const { status, json } = await post(base, '/v1/chat/completions', { messages: MESSAGES, ...SHORT });
    const expected = await model.chat([...MESSAGES], { strategy: 'streaming', genLength: 64, blockLength: 32 });
    expect(status).toBe(200);
    expect(json).toMatchObject({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: expected.text }, finish_reason: 'stop' }] });
    expect(json.usage.prompt_tokens).toBe((await model.encodeChat([...MESSAGES])).length);
  });

  test('stream: true sends one chunk per finished block, the finish, the usage, then [DONE]', async () => {
    const body = { prompt: QUESTION, strategy: 'prefix-cache', gen_length: 64, block_length: 16, early_exit: false };
    const whole = await post(base, '/v1/completions', body);
    const streamed = await post(base, '/v1/completions', { ...body, stream: true, stream_options: { include_usage: true } });
    expect(streamed.status).toBe(200);
    expect(streamed.type).toMatch(/^text\/event-stream/);
    const events = sseEvents(streamed.text);
    expect(events[events.length - 1]).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const blocks = chunks.slice(0, 4);
    expect(blocks.every((c) => c.object === 'text_completion' && c.choices[0].finish_reason === null)).toBe(true);
    expect(blocks.map((c) => c.choices[0].text).join('')).toBe(whole.json.choices[0].text);
    expect(chunks[4].choices[0]).toMatchObject({ text: '', finish_reason: whole.json.choices[0].finish_reason });
    expect(chunks[5]).toMatchObject({ choices: [], usage: whole.json.usage, stats: { blocks_decoded: 4 } });
    expect(chunks).toHaveLength(6);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  test('chat streaming: a role chunk, content deltas per block, the finish, [DONE]', async () => {
    const body = { messages: MESSAGES, strategy: 'dual-cache', gen_length: 64, block_length: 32, early_exit: false };
    const whole = await post(base, '/v1/chat/completions', body);
    const events = sseEvents((await post(base, '/v1/chat/completions', { ...body, stream: true })).text);
    expect(events[events.length - 1]).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.object)).toEqual(Array(4).fill('chat.completion.chunk'));
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.slice(1, 3).map((c) => c.choices[0].delta.content).join('')).toBe(whole.json.choices[0].message.content);
    expect(chunks[3].choices[0]).toMatchObject({ delta: {}, finish_reason: whole.json.choices[0].finish_reason });
  });

  test('stop sequences: the text ends before the first, finish_reason stop, usage through it; streamed alike', async () => {
    const body = { prompt: QUESTION, strategy: 'dual-cache', gen_length: 64, block_length: 8, early_exit: false };
    const whole = (await post(base, '/v1/completions', body)).json;
    const text: string = whole.choices[0].text;
    const at = text.indexOf('\n');
    expect(at).toBeGreaterThan(0);
    const stop = ['never there', '\n'];
    const expected = await model.generate(QUESTION, { strategy: 'dual-cache', genLength: 64, blockLength: 8, earlyExit: false, stop });
    const { status, json } = await post(base, '/v1/completions', { ...body, stop });
    expect(status).toBe(200);
    expect(json.choices[0]).toMatchObject({ text: text.slice(0, at), finish_reason: 'stop' });
    expect(json.usage.completion_tokens).toBe(expected.stats.completionTokens);
    expect(json.usage.completion_tokens).toBeLessThan(whole.usage.completion_tokens);
    expect(json.stats.blocks_decoded).toBeLessThan(whole.stats.blocks_decoded);
    const events = sseEvents((await post(base, '/v1/completions', { ...body, stop: '\n', stream: true })).text);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(text.slice(0, at));
    expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('stop');
    const chat = await post(base, '/v1/chat/completions', { messages: MESSAGES, ...SHORT, stop: null });
    expect(chat.status).toBe(200);
  });

  test('OpenAI clients\' shapes: text content parts, message names, fields at their no-op values or null', async () => {
    const [system, user] = MESSAGES;
    const expected = await model.chat([...MESSAGES], { strategy: 'streaming', genLength: 64, blockLength: 32 });
    const parts = [
      { role: 'system', content: [{ type: 'text', text: system.content }] },
      { role: 'user', name: 'leo', content: [{ type: 'text', text: user.content.slice(0, 10) }, { type: 'text', text: user.content.slice(10) }] },
    ];
    const joined = await model.chat([{ ...system }, { role: 'user', content: `${user.content.slice(0, 10)}\n${user.content.slice(10)}` }],
      { strategy: 'streaming', genLength: 64, blockLength: 32 });
    const a = await post(base, '/v1/chat/completions', { messages: parts, ...SHORT });
    expect(a.status).toBe(200);
    expect(a.json.choices[0].message.content).toBe(joined.text);
    const b = await post(base, '/v1/chat/completions', {
      messages: MESSAGES, ...SHORT, n: null, stream: null, logit_bias: {}, response_format: { type: 'text' }, tools: [], tool_choice: 'none',
      logprobs: false, top_logprobs: null, temperature: null, seed: null, best_of: 1,
    });
    expect(b.status).toBe(200);
    expect(b.json.choices[0].message.content).toBe(expected.text);
  });

  test('several prompts: one choice each, as the library gives them alone; streamed by choice index', async () => {
    const ids = Array.from(await model.encodePrompt(QUESTION));
    const prompts = ['Tom has 8 pens. He buys 5 more. How many pens now?', ids, 'What is 9 plus 4?'];
    const options = { strategy: 'prefix-cache' as const, genLength: 64, blockLength: 16 };
    const alone = await Promise.all(prompts.map((p) => model.generate(p, options)));
    const body = { prompt: prompts, strategy: 'prefix-cache', gen_length: 64, block_length: 16 };
    const { status, json } = await post(base, '/v1/completions', body);
    expect(status).toBe(200);
    expect(json.choices.map((c: { index: number; text: string }) => [c.index, c.text])).toEqual(alone.map((r, i) => [i, r.text]));
    expect(json.choices[1].stats.nfe).toBe(alone[1].stats.nfe);
    const promptTokens = alone.reduce((a, r) => a + r.promptTokens.length, 0);
    const completionTokens = alone.reduce((a, r) => a + r.stats.completionTokens, 0);
    expect(json.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens });
    expect(json.stats.nfe).toBe(alone.reduce((a, r) => a + r.stats.nfe, 0));

    const events = sseEvents((await post(base, '/v1/completions', { ...body, stream: true, stream_options: { include_usage: true } })).text);
    expect(events[events.length - 1]).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const usage = chunks[chunks.length - 1];
    expect(usage).toMatchObject({ choices: [], usage: json.usage });
    for (const [i, r] of alone.entries()) {
      const mine = chunks.slice(0, -1).filter((c) => c.choices[0].index === i);
      const finish = mine.filter((c) => c.choices[0].finish_reason !== null);
      expect(finish).toHaveLength(1);
      expect(mine[mine.length - 1]).toBe(finish[0]);
      expect(mine.map((c) => c.choices[0].text).join('')).toBe(r.text);
    }
  });

  test('n: greedy requests give n copies of one generation; sampled ones n samples, choice j with seed + j', async () => {
    const greedy = await post(base, '/v1/chat/completions', { messages: MESSAGES, ...SHORT, n: 3 });
    expect(greedy.status).toBe(200);
    const alone = await model.chat([...MESSAGES], { strategy: 'streaming', genLength: 64, blockLength: 32 });
    expect(greedy.json.choices.map((c: { index: number; message: { content: string } }) => [c.index, c.message.content]))
      .toEqual([0, 1, 2].map((i) => [i, alone.text]));
    expect(greedy.json.usage.completion_tokens).toBe(3 * alone.stats.completionTokens);
    expect(greedy.json.stats.nfe).toBe(alone.stats.nfe); // one generation ran
    const sampled = { prompt: [QUESTION, 'What is 9 plus 4?'], strategy: 'dual-cache', gen_length: 32, block_length: 32, temperature: 1, seed: 7, n: 2 };
    const { status, json } = await post(base, '/v1/completions', sampled);
    expect(status).toBe(200);
    const expected = await Promise.all([QUESTION, 'What is 9 plus 4?'].flatMap((p) => [7, 8].map((seed) =>
      model.generate(p, { strategy: 'dual-cache', genLength: 32, blockLength: 32, temperature: 1, seed }))));
    expect(json.choices.map((c: { index: number; text: string }) => [c.index, c.text])).toEqual(expected.map((r, i) => [i, r.text]));
    const events = sseEvents((await post(base, '/v1/completions', { ...sampled, stream: true })).text);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    for (const [i, r] of expected.entries()) {
      expect(chunks.filter((c) => c.choices[0].index === i).map((c) => c.choices[0].text).join('')).toBe(r.text);
    }
  });

  test('GET /v1/models and /health', async () => {
    const models = await (await fetch(`${base}/v1/models`)).json();
    expect(models).toMatchObject({ object: 'list', data: [{ id: 'dllm-mini-arith', object: 'model', owned_by: 'streaming-dllm' }] });
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
  });

  test('GET /v1/models/{id}: the served model, 404 for another id, 405 for POST', async () => {
    const one = await fetch(`${base}/v1/models/dllm-mini-arith`);
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ id: 'dllm-mini-arith', object: 'model', owned_by: 'streaming-dllm' });
    const other = await fetch(`${base}/v1/models/gpt-4%20o`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: unknown }).error).toMatchObject({ code: 'model_not_found', param: 'model', message: expect.stringContaining('"gpt-4 o"') });
    const post = await fetch(`${base}/v1/models/dllm-mini-arith`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/route="\/v1\/models\/\{id\}",status="404"/);
  });

  test.each([
    ['/v1/completions', { prompt: 'x', gen_length: 30, block_length: 8 }, 'block_length', /divides gen_length \(30\)/],
    ['/v1/completions', { prompt: 'x', strategy: 'fast' }, 'strategy', /for strategy but received the string "fast"/],
    ['/v1/completions', { prompt: 'x', threshold: 2 }, 'threshold', /between 0 and 1 for threshold/],
    ['/v1/completions', { prompt: 'x', window: -1 }, 'window', /for window but received -1/],
    ['/v1/completions', { prompt: 'x', alpha: 'x' }, 'alpha', /for alpha but received the string "x"/],
    ['/v1/completions', { prompt: 'x', gen_length: 64, block_length: 32, steps: 3 }, 'steps', /multiple of the number of blocks \(2\) for steps/],
    ['/v1/completions', { prompt: 'x', temperature: -1 }, 'temperature', /for temperature but received -1/],
    ['/v1/completions', { prompt: 'x', confidence: 'max' }, 'confidence', /for confidence/],
    ['/v1/completions', { prompt: 'x', early_exit: 'yes' }, 'early_exit', /a boolean for early_exit/],
    ['/v1/completions', { prompt: 'x', max_tokens: 'many' }, 'max_tokens', /for max_tokens but received the string "many"/],
    ['/v1/completions', { prompt: 'x', max_tokens: 64, gen_length: 64 }, 'max_tokens', /max_tokens and gen_length but received both/],
    ['/v1/completions', { prompt: 'x', gen_lenght: 64 }, 'gen_lenght', /for an option name but received the string "gen_lenght"/],
    ['/v1/completions', { prompt: 'x', genLength: 64 }, 'genLength', /Unknown field genLength/],
    ['/v1/completions', { prompt: 'x', stream: 'yes' }, 'stream', /boolean for stream/],
    ['/v1/completions', { prompt: 'x', stream_options: { include_usage: true } }, 'stream_options', /only allowed with stream: true/],
    ['/v1/completions', { prompt: 'x', n: 0 }, 'n', /an integer between 1 and 16 for n but received 0/],
    ['/v1/completions', { prompt: 'x', n: 1.5 }, 'n', /for n but received 1.5/],
    ['/v1/completions', { prompt: 'x', n: 2, seed: 2 ** 53 - 1 }, 'seed', /choice j uses seed \+ j/],
    ['/v1/completions', { prompt: ['a', 'b', 'c'], n: 2, temperature: 1 }, 'n', /at most 4 generations/],
    ['/v1/completions', { prompt: 'x', stop: 3 }, 'stop', /a string or an array of at most 16 strings for stop but received 3/],
    ['/v1/completions', { prompt: 'x', stop: ['\n', ''] }, 'stop[1]', /a non-empty string of at most 1024 characters for stop\[1\]/],
    ['/v1/completions', {}, 'prompt', /prompt is required/],
    ['/v1/completions', { prompt: '' }, 'prompt', /non-empty prompt/],
    ['/v1/completions', { prompt: [1, -2] }, 'prompt', /a non-empty array of token ids, or an array of those for prompt/],
    ['/v1/completions', { prompt: ['x', ''] }, 'prompt[1]', /non-empty string or a non-empty array of token ids for prompt\[1\] but received the string ""/],
    ['/v1/completions', { prompt: [[1, 2], [3, -1]] }, 'prompt[1]', /for prompt\[1\] but received an array/],
    ['/v1/completions', { prompt: ['a', [100000]] }, 'prompt[1]', /token ids between 0 and 335 for prompt\[1\] but received 100000/],
    ['/v1/completions', { prompt: ['a', 'b', 'c', 'd', 'e'] }, 'prompt', /at most 4 generations \(--max-batch plus --max-queue; prompts times n\) for prompt but received 5/],
    ['/v1/completions', { prompt: [100000] }, 'prompt', /token ids between 0 and 335 for prompt but received 100000/],
    ['/v1/completions', { prompt: 'x', gen_length: 1024, block_length: 32 }, 'gen_length', /gen_length \(1024\) leaves no room for a prompt within the model's maximum sequence length \(1024\)/],
    ['/v1/completions', { prompt: 'What is 12 plus 7?', gen_length: 1020, block_length: 34 }, 'prompt', /plus gen_length \(1020\) exceeds the model's maximum sequence length \(1024\)/],
    ['/v1/chat/completions', { messages: [] }, 'messages', /at least one message/],
    ['/v1/chat/completions', { messages: 'hi' }, 'messages', /array of \{ role, content \} messages/],
    ['/v1/chat/completions', { messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role', /for messages\[0\]\.role/],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', /a string for messages\[0\]\.content but received 5/],
    ['/v1/chat/completions', { messages: MESSAGES, prompt: 'x' }, 'prompt', /prompt belongs to \/v1\/completions/],
    ['/v1/chat/completions', { messages: MESSAGES, chat: false }, 'chat', /always use the chat template/],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0].type', /only text parts are supported/],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'text', text: 5 }] }] }, 'messages[0].content[0].text', /a string for messages\[0\]\.content\[0\]\.text but received 5/],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x', name: 3 }] }, 'messages[0].name', /a string for messages\[0\]\.name/],
    ['/v1/completions', { prompt: 'x', logit_bias: { 5: 1 } }, 'logit_bias', /logit_bias is not supported/],
    ['/v1/completions', { prompt: 'x', response_format: { type: 'json_object' } }, 'response_format', /response_format is not supported/],
  ])('%s %j: 400 naming %s', async (route, body, param, message) => {
    const { status, json } = await post(base, route, body);
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ type: 'invalid_request_error', param });
    expect(json.error.message).toMatch(message);
    expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  });

  test('bad JSON, an unknown route, a wrong method and another model name', async () => {
    const bad = await fetch(`${base}/v1/completions`, { method: 'POST', body: '{"prompt": ' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.code).toBe('invalid_json');
    expect((await fetch(`${base}/v1/nothing`)).status).toBe(404);
    const wrong = await fetch(`${base}/v1/completions`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    const other = await post(base, '/v1/completions', { model: 'gpt-4', prompt: 'x' });
    expect(other.status).toBe(404);
    expect(other.json.error).toMatchObject({ param: 'model', code: 'model_not_found' });
  });

  test('malformed HTTP and a client leaving mid-body do not bring the server down', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(server.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => { text += d.toString(); });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    await new Promise<void>((resolve) => {
      const req = http.request(new URL('/v1/completions', base), { method: 'POST', agent: false, headers: { 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write('{"prompt": "half a bo', () => setTimeout(() => { req.destroy(); resolve(); }, 20));
    });
    expect((await post(base, '/v1/completions', { prompt: QUESTION, ...SHORT })).status).toBe(200);
  });

  test('a body over the limit is refused with 413, by its length or while it streams in', async () => {
    // Declared too large: answered from the headers, before any of the body is sent.
    const declared = await new Promise<number>((resolve, reject) => {
      const req = http.request(new URL('/v1/completions', base), { method: 'POST', agent: false, headers: { 'content-length': String(10 * 1024 * 1024) } });
      req.on('response', (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(declared).toBe(413);
    // Chunked, no length: refused once 64 KiB have arrived, while the client is still sending.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(new URL('/v1/completions', base), { method: 'POST', agent: false });
      let sent = 0;
      const timer = setInterval(() => {
        if (sent < 1024 * 1024) { req.write(Buffer.alloc(16 * 1024, 0x20)); sent += 16 * 1024; }
      }, 2);
      req.on('response', (res) => { clearInterval(timer); res.resume(); resolve(res.statusCode!); req.destroy(); });
      req.on('error', (e) => { clearInterval(timer); reject(e); });
    });
    expect(chunked).toBe(413);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  test('/metrics is Prometheus text with requests, tokens, NFE, batch sizes and latencies', async () => {
    await post(base, '/v1/completions', { prompt: QUESTION, ...SHORT });
    const s = await metrics(base);
    expect(value(s, 'streaming_dllm_model_loaded')).toBe(1);
    expect(value(s, 'streaming_dllm_requests_total', { route: '/v1/completions', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(value(s, 'streaming_dllm_requests_total', { route: '/v1/completions', status: '400' })).toBeGreaterThanOrEqual(1);
    expect(value(s, 'streaming_dllm_generated_tokens_total')).toBeGreaterThan(0);
    expect(value(s, 'streaming_dllm_nfe_total')).toBeGreaterThan(0);
    // By finish reason: the stop-sequence test's generations and EOS-ended ones; every reason listed.
    expect(value(s, 'streaming_dllm_generations_total', { finish_reason: 'eos' })).toBeGreaterThan(0);
    expect(value(s, 'streaming_dllm_generations_total', { finish_reason: 'stop' })).toBeGreaterThan(0);
    expect(value(s, 'streaming_dllm_generations_total', { finish_reason: 'length' })).toBeGreaterThanOrEqual(0);
    expect(value(s, 'streaming_dllm_active_sequences')).toBe(0);
    expect(value(s, 'streaming_dllm_queue_depth')).toBe(0);
    expect(value(s, 'streaming_dllm_batch_size_count')).toBe(model.schedulerStats().batches);
    expect(value(s, 'streaming_dllm_request_duration_seconds_count', { route: '/v1/completions' })).toBeGreaterThan(0);
  });
});
