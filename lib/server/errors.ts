// HTTP errors with OpenAI's error body: { error: { message, type, param, code } }.
import type * as http from 'http';
import { describe } from '../validate';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (e.g. Retry-After, Allow). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Status recorded for a request whose client closed the connection before its answer (nginx's convention); never sent. */
export const CLIENT_CLOSED = 499;

/** The client went away (reset, or closed while sending its body): nothing can be answered, 499 is recorded. */
export const clientClosed = (message: string) => new HttpError(CLIENT_CLOSED, message, 'invalid_request_error', null, 'client_closed');

export const badRequest = (message: string, param: string | null, code: string | null = 'invalid_value') =>
  new HttpError(400, message, 'invalid_request_error', param, code);

/** A request naming a model other than the one served (a body's `model`, a /v1/models/{id}). */
export const modelNotFound = (model: unknown, modelId: string) =>
  new HttpError(404, `The model ${describe(model)} does not exist; this server serves "${modelId}"`, 'invalid_request_error', 'model', 'model_not_found');

export function errorBody(e: HttpError): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** Anything thrown while handling a request, as the HttpError to answer with. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new HttpError(500, `Internal error: ${message}`, 'server_error', null, 'internal_error');
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: http.ServerResponse, e: HttpError): void {
  sendJson(res, e.status, errorBody(e), e.headers);
}
