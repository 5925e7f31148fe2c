// The routes, and the per-request safety net: every request ends in an answer (or a
// closed connection), every error is caught here, and each answer is counted in /metrics and logged.
import { timingSafeEqual } from 'crypto';
import type * as http from 'http';
import { handleGeneration, requireModel, ServerState, shuttingDown } from './generation';
import { HttpError, modelNotFound, sendError, sendJson, toHttpError } from './errors';
import { logEntry, noteError, RequestContext, requestIdOf } from './log';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, state: ServerState, ctx: RequestContext) => Promise<number> | number;

/** A generation route: refused while draining, counted while handled (a drain waits for it). */
function generation(endpoint: 'completion' | 'chat'): Handler {
  return async (req, res, state, ctx) => {
    if (state.draining) throw shuttingDown();
    state.handling++;
    try {
      return await handleGeneration(endpoint, req, res, state, ctx);
    } finally {
      state.handling--;
    }
  };
}

const ROUTES: Record<string, { method: 'GET' | 'POST'; handle: Handler; timed?: boolean }> = {
  '/v1/completions': { method: 'POST', handle: generation('completion'), timed: true },
  '/v1/chat/completions': { method: 'POST', handle: generation('chat'), timed: true },
  '/v1/models': { method: 'GET', handle: models },
  '/health': { method: 'GET', handle: health },
  '/metrics': { method: 'GET', handle: metrics },
};

const MODEL_PREFIX = '/v1/models/';
const MODEL_ROUTE: { method: 'GET'; handle: Handler } = { method: 'GET', handle: model };

export function createRequestHandler(state: ServerState): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    // A client that resets mid-request makes these emit errors; nothing else needs them.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const started = process.hrtime.bigint();
    const arrived = new Date();
    const ctx: RequestContext = { id: requestIdOf(req) };
    res.setHeader('x-request-id', ctx.id);
    const pathname = (req.url ?? '/').split('?')[0];
    // OpenAI's retrieve-model route, GET /v1/models/{id}: one route label for every id.
    const route = ROUTES[pathname] ?? (pathname.startsWith(MODEL_PREFIX) ? MODEL_ROUTE : undefined);
    const label = route === MODEL_ROUTE ? `${MODEL_PREFIX}{id}` : route ? pathname : 'other';
    const crossOrigin = allowOrigin(req, res, state);
    const answer = async (): Promise<number> => {
      if (!route) throw new HttpError(404, `No route ${pathname}`, 'invalid_request_error', null, 'not_found');
      if (crossOrigin && req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
        return preflight(req, res, route.method);
      }
      if (pathname.startsWith('/v1/')) authenticate(req, state);
      // HEAD is GET without the body (Node's response drops it).
      if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
        const allow = route.method === 'GET' ? 'GET, HEAD' : route.method;
        throw new HttpError(405, `${pathname} accepts ${allow.replace(', ', ' and ')} only`, 'invalid_request_error', null, 'method_not_allowed', { allow });
      }
      return route.handle(req, res, state, ctx);
    };
    answer()
      .catch((e: unknown) => {
        const error = toHttpError(e);
        noteError(ctx, e, error);
        if (!res.headersSent && !res.destroyed) sendError(res, error);
        else if (!res.writableEnded) res.end();
        // A refused body is not read to its end: close instead of draining it.
        if (error.status === 413) res.once('finish', () => req.destroy());
        return error.status;
      })
      .then((status) => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        state.metrics.requests.inc({ route: label, status: String(status) });
        if (route?.timed) state.metrics.duration.observe(seconds, { route: label });
        state.log(logEntry(req, pathname, arrived, seconds, status, ctx));
      })
      .catch(() => undefined);
  };
}

/** With API keys set: `Authorization: Bearer <key>` must name one of them (compared in constant time). */
function authenticate(req: http.IncomingMessage, state: ServerState): void {
  if (state.apiKeys.length === 0) return;
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
  const given = match ? Buffer.from(match[1], 'utf8') : null;
  // Every key is compared (no early exit), each in constant time for its length.
  let ok = false;
  for (const key of state.apiKeys) {
    if (given !== null && given.length === key.length && timingSafeEqual(given, key)) ok = true;
  }
  if (!ok) {
    throw new HttpError(401, given === null ? 'Missing API key: send Authorization: Bearer <key>' : 'Invalid API key',
      'invalid_request_error', null, 'invalid_api_key', { 'www-authenticate': 'Bearer' });
  }
}

/**
 * CORS: when the request's Origin is allowed, the answer names it (or '*'); true then.
 * Set before the route answers: writeHead merges these headers into every response.
 */
function allowOrigin(req: http.IncomingMessage, res: http.ServerResponse, state: ServerState): boolean {
  const origin = req.headers.origin;
  if (state.corsOrigins.length === 0 || origin === undefined) return false;
  if (state.corsOrigins.includes('*')) {
    res.setHeader('access-control-allow-origin', '*');
    return true;
  }
  res.setHeader('vary', 'origin');
  if (!state.corsOrigins.includes(origin)) return false;
  res.setHeader('access-control-allow-origin', origin);
  return true;
}

/** A CORS preflight of an allowed origin: 204 with the route's method and the headers asked for. */
function preflight(req: http.IncomingMessage, res: http.ServerResponse, method: string): number {
  const asked = req.headers['access-control-request-headers'];
  res.writeHead(204, {
    'access-control-allow-methods': method === 'GET' ? 'GET, HEAD, OPTIONS' : `${method}, OPTIONS`,
    'access-control-allow-headers': typeof asked === 'string' && asked.length > 0 ? asked : 'content-type, authorization',
    'access-control-max-age': '600',
    'content-length': '0',
  });
  res.end();
  return 204;
}

function health(_req: http.IncomingMessage, res: http.ServerResponse, state: ServerState): number {
  if (state.draining) {
    sendJson(res, 503, { status: 'draining', model: state.modelId }, { connection: 'close' });
    return 503;
  }
  if (state.model) {
    sendJson(res, 200, { status: 'ok', model: state.modelId });
    return 200;
  }
  const status = state.loadError ? 'error' : 'loading';
  sendJson(res, 503, { status, model: state.modelId, ...(state.loadError ? { error: state.loadError.message } : {}) }, { 'retry-after': '1' });
  return 503;
}

function modelObject(state: ServerState): Record<string, unknown> {
  const model = requireModel(state);
  return {
    id: state.modelId, object: 'model', created: state.loadedAt, owned_by: 'streaming-dllm',
    family: model.info.family, max_sequence_length: model.info.maxSequenceLength, backend: model.backend,
  };
}

function models(_req: http.IncomingMessage, res: http.ServerResponse, state: ServerState): number {
  sendJson(res, 200, { object: 'list', data: [modelObject(state)] });
  return 200;
}

function model(req: http.IncomingMessage, res: http.ServerResponse, state: ServerState): number {
  const raw = (req.url ?? '/').split('?')[0].slice(MODEL_PREFIX.length);
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    id = raw;
  }
  const object = modelObject(state);
  if (id !== state.modelId) throw modelNotFound(id, state.modelId);
  sendJson(res, 200, object);
  return 200;
}

function metrics(_req: http.IncomingMessage, res: http.ServerResponse, state: ServerState): number {
  const text = state.metrics.render(state.model?.schedulerStats() ?? null, state.model !== null);
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return 200;
}
