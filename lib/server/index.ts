// `streaming-dllm serve`: an OpenAI-compatible HTTP server on Node's own http module. It
// listens first and loads the model after, so /health answers 503 while loading.
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import type { RunningServer, ServeOptions } from '../../types';
import { defaultModelDir, loadModel } from '../model';
import { fail, integer } from '../validate';
import { DEFAULT_BODY_LIMIT } from './body';
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
  const dir = options.model ?? defaultModelDir;
  const state: ServerState = {
    model: null, loadError: null, modelId: path.basename(path.resolve(dir)), loadedAt: 0,
    metrics: new ServerMetrics(), maxBatch, maxQueue, bodyLimit, open: 0, handling: 0, draining: false, corsOrigins, apiKeys,
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

/** ServeOptions.cors as a list: '*' or origins like https://example.com (scheme, host, optional port). */
function corsOriginsOf(cors: unknown): string[] {
  if (cors === undefined) return [];
  const list = typeof cors === 'string' ? [cors] : cors;
  if (!Array.isArray(list) || list.length === 0) fail("'*' or a non-empty array of origins", 'cors', cors);
  list.forEach((origin: unknown, i) => {
    if (typeof origin !== 'string' || !(origin === '*' || /^https?:\/\/[^/\s]+$/.test(origin))) {
      fail("'*' or an origin such as http://localhost:3000 (no path)", Array.isArray(cors) ? `cors[${i}]` : 'cors', origin);
    }
  });
  return list as string[];
}

/** ServeOptions.apiKey as buffers (compared in constant time): non-empty strings without spaces. */
function apiKeysOf(apiKey: unknown): Buffer[] {
  if (apiKey === undefined) return [];
  const list = typeof apiKey === 'string' ? [apiKey] : apiKey;
  if (!Array.isArray(list) || list.length === 0) fail('a key or a non-empty array of keys', 'apiKey', apiKey);
  return list.map((key: unknown, i) => {
    if (typeof key !== 'string' || !/^\S+$/.test(key)) {
      // The key itself is not echoed into an error message.
      fail('a non-empty key without whitespace', Array.isArray(apiKey) ? `apiKey[${i}]` : 'apiKey', typeof key === 'string' ? 'a string with whitespace or an empty one' : key);
    }
    return Buffer.from(key as string, 'utf8');
  });
}
