// `streaming-dllm serve`: an OpenAI-compatible HTTP server on Node's own http module. It
// listens first and loads the model after, so /health answers 503 while loading.
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import type { RunningServer, ServeOptions } from '../../types';
import { defaultModelDir, loadModel } from '../model';
import { fail, integer } from '../validate';
import { DEFAULT_BODY_LIMIT } from './body';
import { defaultLog } from './log';
import type { ServerState } from './generation';
import { ServerMetrics } from './metrics';
import { createRequestHandler } from './routes';

export async function serve(options: ServeOptions = {}): Promise<RunningServer> {
  const port = options.port === undefined ? 8080 : integer('port', options.port, 0, 65535);
  const host = options.host ?? '127.0.0.1';
  const maxBatch = options.maxBatch === undefined ? 8 : integer('maxBatch', options.maxBatch, 1, 4096);
  const maxQueue = options.maxQueue === undefined ? 64 : integer('maxQueue', options.maxQueue, 0);
  const bodyLimit = options.bodyLimit === undefined ? DEFAULT_BODY_LIMIT : integer('bodyLimit', options.bodyLimit, 1);
  const maxBatchRows = options.maxBatchRows === undefined ? undefined : integer('maxBatchRows', options.maxBatchRows, 1);
  const corsOrigins = corsOriginsOf(options.cors);
  const apiKeys = apiKeysOf(options.apiKey);
  if (options.log !== undefined && typeof options.log !== 'function') fail('a function (entry) => void', 'log', options.log);
  const dir = options.model ?? defaultModelDir;
  const state: ServerState = {
    model: null, loadError: null, modelId: path.basename(path.resolve(dir)), loadedAt: 0,
    metrics: new ServerMetrics(), maxBatch, maxQueue, bodyLimit, open: 0, handling: 0, draining: false, corsOrigins, apiKeys,
    log: options.log ?? defaultLog,
  };
  const server = http.createServer(createRequestHandler(state));
  // Malformed HTTP never reaches a route; answer 400 and drop the connection.
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const load = options.load ?? ((limits) => loadModel(dir, { threads: options.threads, ...limits }));
  let closed = false;
  const ready = load({ maxBatch, maxQueue, ...(maxBatchRows === undefined ? {} : { maxBatchRows }) }).then(
    (model) => {
      if (closed) {
        model.dispose();
        throw new Error('The server was closed before the model loaded');
      }
      state.model = model;
      state.loadedAt = Math.floor(Date.now() / 1000);
      return model;
    },
    (e: Error) => {
      state.loadError = e instanceof Error ? e : new Error(String(e));
      throw state.loadError;
    },
  );
  ready.catch(() => undefined); // observed through /health; callers may await ready themselves
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    ready,
    async close(closeOptions: { drainMs?: number } = {}) {
      const drainMs = closeOptions.drainMs === undefined ? 0 : integer('drainMs', closeOptions.drainMs, 0);
      closed = true;
      state.draining = true;
      // No new connections; idle kept-alive ones close now, busy ones after their answer.
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + drainMs;
      while (state.handling > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, deadline - Date.now()))));
      }
      server.closeAllConnections();
      await stopped;
      state.model?.dispose();
      state.model = null;
    },
  };
}

/**
 * A string or a non-empty array of strings, each accepted by `ok` (its error names the
 * option, or `name[i]` in an array); `shown` is what a rejected entry is called in the message.
 */
function stringList(name: string, value: unknown, expected: string, entry: string, ok: (s: string) => boolean,
  shown: (v: unknown) => unknown = (v) => v): string[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) fail(expected, name, value);
  list.forEach((v: unknown, i) => {
    if (typeof v !== 'string' || !ok(v)) fail(entry, Array.isArray(value) ? `${name}[${i}]` : name, shown(v));
  });
  return list as string[];
}

/** ServeOptions.cors: '*' or origins like https://example.com (scheme, host, optional port). */
function corsOriginsOf(cors: unknown): string[] {
  return stringList('cors', cors, "'*' or a non-empty array of origins", "'*' or an origin such as http://localhost:3000 (no path)",
    (origin) => origin === '*' || /^https?:\/\/[^/\s]+$/.test(origin));
}

/** ServeOptions.apiKey as buffers (compared in constant time): non-empty strings without spaces, never echoed. */
function apiKeysOf(apiKey: unknown): Buffer[] {
  return stringList('apiKey', apiKey, 'a key or a non-empty array of keys', 'a non-empty key without whitespace',
    (key) => /^\S+$/.test(key), (v) => (typeof v === 'string' ? 'a string with whitespace or an empty one' : v))
    .map((key) => Buffer.from(key, 'utf8'));
}
