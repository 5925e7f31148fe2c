// The HTTP server (lib/server/) on an ephemeral loopback port, driven by real HTTP clients
// (fetch, and node:http where a test must hold or cut a connection): OpenAI shapes whole and
// as server-sent events, 400s naming the field, 413, 429, 503 while loading, disconnects
// that free their slot, and /metrics read back through a Prometheus text parser.
import * as http from 'http';
import * as net from 'net';
import { loadModel, serve } from '../lib';
import { runServe } from '../lib/server/cli';
import type { DiffusionModel, RunningServer } from '../types';

const QUESTION = 'Ann has 12 apples. She buys 7 more. How many apples now?';
const MESSAGES = [{ role: 'system', content: 'Answer with the result.' }, { role: 'user', content: 'Leo has 17 pens. He finds 5 more. How many pens now?' }] as const;
const SHORT = { strategy: 'streaming', gen_length: 64, block_length: 32 };
/** Long enough to be cut mid-way: vanilla, one token per step, 256 steps (several seconds on CPU). */
const LONG = { strategy: 'vanilla', gen_length: 256, block_length: 32, steps: 256 };

// ---------------------------------------------------------------------------
// A Prometheus text-format (0.0.4) parser, strict enough to catch a malformed exposition.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad sample value ${text}`);
  return Number(text);
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
  while (re.lastIndex < text.length) {
    const m = re.exec(text);
    if (!m) throw new Error(`bad labels {${text}}`);
    if (m[1] in labels) throw new Error(`label ${m[1]} twice`);
    labels[m[1]] = m[2].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** Samples of an exposition; throws on any line that is not HELP, TYPE or a sample of a declared family. */
function parsePrometheus(text: string): Sample[] {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# TYPE (${METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      if (types.has(m[1])) throw new Error(`TYPE of ${m[1]} twice`);
      types.set(m[1], m[2]);
    } else if (new RegExp(`^# HELP ${METRIC_NAME} .*$`).test(line)) {
      // documentation only
    } else if ((m = new RegExp(`^(${METRIC_NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line))) {
      const [, name, labelText, valueText] = m;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      const family = types.get(name) ? name : types.get(base) === 'histogram' ? base : undefined;
      if (!family) throw new Error(`sample ${name} before the TYPE of its family`);
      samples.push({ name, labels: labelText ? parseLabels(labelText) : {}, value: parseValue(valueText) });
    } else {
      throw new Error(`not a Prometheus text line: ${JSON.stringify(line)}`);
    }
  }
  checkHistograms(types, samples);
  return samples;
}

/** Each histogram series: cumulative buckets in increasing le, the +Inf bucket equal to _count, a _sum. */
function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${family} bucket without le`);
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      const les = buckets.map((b) => parseValue(b.labels.le));
      for (let i = 1; i < buckets.length; i++) {
        if (!(les[i] > les[i - 1]) || buckets[i].value < buckets[i - 1].value) throw new Error(`${family} buckets not cumulative`);
      }
      if (les[les.length - 1] !== Infinity) throw new Error(`${family} has no +Inf bucket`);
      const same = (s: Sample) => JSON.stringify(s.labels) === key;
      const count = samples.find((s) => s.name === `${family}_count` && same(s));
      if (!count || count.value !== buckets[buckets.length - 1].value) throw new Error(`${family}_count differs from its +Inf bucket`);
      if (!samples.some((s) => s.name === `${family}_sum` && same(s))) throw new Error(`${family} has no _sum`);
    }
  }
}

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

// ---------------------------------------------------------------------------

async function post(base: string, route: string, body: unknown): Promise<{ status: number; json: any; text: string; type: string | null }> {
  const res = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text, type: res.headers.get('content-type') };
}

/** The events of an SSE body; fails unless it is exactly `data: ...\n\n` events. */
function sseEvents(text: string): string[] {
  expect(text).toMatch(/^(data: [^\n]+\n\n)+$/);
  return text.split('\n\n').filter((e) => e !== '').map((e) => e.slice('data: '.length));
}

async function metrics(base: string): Promise<Sample[]> {
  const res = await fetch(`${base}/metrics`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

/** Polls /metrics until `ready` holds (bounded: 200 tries, 25 ms apart). */
async function waitForMetrics(base: string, ready: (s: Sample[]) => boolean): Promise<Sample[]> {
  for (let i = 0; i < 200; i++) {
    const s = await metrics(base);
    if (ready(s)) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('metrics never reached the expected state');
}

/** A POST held open on its own socket: resolves with the request once the response headers (and, for SSE, `events` events) arrived. */
function holdOpen(base: string, route: string, body: unknown, events = 0): { req: http.ClientRequest; started: Promise<void>; ended: Promise<void> } {
  const url = new URL(route, base);
  const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } });
  let received = '';
  let markStarted!: () => void;
  let markEnded!: () => void;
  const started = new Promise<void>((r) => { markStarted = r; });
  const ended = new Promise<void>((r) => { markEnded = r; });
  req.on('response', (res) => {
    if (events === 0) markStarted();
    res.on('data', (d: Buffer) => {
      received += d.toString();
      if (received.split('\n\n').length - 1 >= events) markStarted();
    });
    res.on('close', markEnded);
    res.on('error', markEnded);
  });
  req.on('error', markEnded);
  req.on('close', markEnded);
  req.end(JSON.stringify(body));
  return { req, started, ended };
}

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
    ['/v1/completions', { prompt: 'x', n: 2 }, 'n', /n is not supported/],
    ['/v1/completions', { prompt: 'x', stop: 3 }, 'stop', /a string or an array of at most 16 strings for stop but received 3/],
    ['/v1/completions', { prompt: 'x', stop: ['\n', ''] }, 'stop[1]', /a non-empty string of at most 1024 characters for stop\[1\]/],
    ['/v1/completions', {}, 'prompt', /prompt is required/],
    ['/v1/completions', { prompt: '' }, 'prompt', /non-empty prompt/],
    ['/v1/completions', { prompt: [1, -2] }, 'prompt', /a non-empty array of token ids, or an array of those for prompt/],
    ['/v1/completions', { prompt: ['x', ''] }, 'prompt[1]', /non-empty string or a non-empty array of token ids for prompt\[1\] but received the string ""/],
    ['/v1/completions', { prompt: [[1, 2], [3, -1]] }, 'prompt[1]', /for prompt\[1\] but received an array/],
    ['/v1/completions', { prompt: ['a', [100000]] }, 'prompt[1]', /token ids between 0 and 335 for prompt\[1\] but received 100000/],
    ['/v1/completions', { prompt: ['a', 'b', 'c', 'd', 'e'] }, 'prompt', /at most 4 prompts \(--max-batch plus --max-queue\) for prompt but received 5/],
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

  // Requests pipelined on a connection whose answer is streaming: the way to send a request
  // to a server that no longer accepts connections.
  function rawRequest(method: string, route: string, body?: unknown): string {
    const text = body === undefined ? '' : JSON.stringify(body);
    return `${method} ${route} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
  }

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

  /** A request through node:http (any headers, Origin included): status, headers and body. */
  function request(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => { text += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

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
