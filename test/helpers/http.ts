// The HTTP server tests' tools: real clients (fetch, node:http, raw sockets for pipelined
// requests), server-sent-event framing, and a strict Prometheus text parser for /metrics.
import * as http from 'http';

export const QUESTION = 'Ann has 12 apples. She buys 7 more. How many apples now?';
export const MESSAGES = [{ role: 'system', content: 'Answer with the result.' }, { role: 'user', content: 'Leo has 17 pens. He finds 5 more. How many pens now?' }] as const;
export const SHORT = { strategy: 'streaming', gen_length: 64, block_length: 32 };
/** Long enough to be cut mid-way: vanilla, one token per step, 256 steps (several seconds on CPU). */
export const LONG = { strategy: 'vanilla', gen_length: 256, block_length: 32, steps: 256 };

// ---------------------------------------------------------------------------
// A Prometheus text-format (0.0.4) parser, strict enough to catch a malformed exposition.

export interface Sample {
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
export function parsePrometheus(text: string): Sample[] {
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

// ---------------------------------------------------------------------------

export async function post(base: string, route: string, body: unknown): Promise<{ status: number; json: any; text: string; type: string | null }> {
  const res = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text, type: res.headers.get('content-type') };
}

/** The events of an SSE body; fails unless it is exactly `data: ...\n\n` events. */
export function sseEvents(text: string): string[] {
  expect(text).toMatch(/^(data: [^\n]+\n\n)+$/);
  return text.split('\n\n').filter((e) => e !== '').map((e) => e.slice('data: '.length));
}

export async function metrics(base: string): Promise<Sample[]> {
  const res = await fetch(`${base}/metrics`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

export const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

/** Polls /metrics until `ready` holds (bounded: 200 tries, 25 ms apart). */
export async function waitForMetrics(base: string, ready: (s: Sample[]) => boolean): Promise<Sample[]> {
  for (let i = 0; i < 200; i++) {
    const s = await metrics(base);
    if (ready(s)) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('metrics never reached the expected state');
}

/** A POST held open on its own socket: resolves with the request once the response headers (and, for SSE, `events` events) arrived. */
export function holdOpen(base: string, route: string, body: unknown, events = 0): { req: http.ClientRequest; started: Promise<void>; ended: Promise<void> } {
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

// Requests pipelined on a connection whose answer is streaming: the way to send a request
// to a server that no longer accepts connections.
export function rawRequest(method: string, route: string, body?: unknown): string {
  const text = body === undefined ? '' : JSON.stringify(body);
  return `${method} ${route} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
}

/** A request through node:http (any headers, Origin included): status, headers and body. */
export function request(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
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
