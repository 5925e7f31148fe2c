// One record per answered request, for an operator: the request id (X-Request-Id), route,
// status, time taken and, for generations, the tokens and forward passes they cost. Never
// the prompt, the answer or a key. Internal errors keep their stack.
import { randomUUID } from 'crypto';
import type * as http from 'http';
import type { FinishReason, GenerateResult, RequestLogEntry } from '../../types';
import { HttpError } from './errors';
import { usageOf } from './openai';

/** What a handler learns about its request while answering it (filled in as it goes). */
export interface RequestContext {
  /** Echoed in the X-Request-Id response header and logged. */
  id: string;
  /** Set by the generation routes once their runs finished (the work done, each run once). */
  generation?: { promptTokens: number; completionTokens: number; nfe: number; finishReasons: FinishReason[] };
  /** The error behind a status of 400 or more; for an internal error, the original (with its stack). */
  error?: { message: string; stack?: string };
}

// A client's own id is kept when it is a plain token (what proxies and tracing systems send);
// anything else is replaced, so that a log line never carries arbitrary client bytes.
const CLIENT_ID = /^[A-Za-z0-9._:\-]{1,128}$/;

/**
 * Records why a request failed: the message its client got, and for an internal error (a
 * 5xx answered for something that was not an HttpError, i.e. not a refusal) the original stack.
 */
export function noteError(ctx: RequestContext, thrown: unknown, answered: HttpError): void {
  ctx.error = { message: answered.message };
  if (answered.status >= 500 && !(thrown instanceof HttpError)) {
    ctx.error.stack = thrown instanceof Error && thrown.stack ? thrown.stack : String(thrown);
  }
}

export function requestIdOf(req: http.IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && CLIENT_ID.test(given) ? given : randomUUID();
}

/** The generations' figures for the log: each distinct run once (n choices of a greedy request share one). */
export function generationFigures(results: GenerateResult[]): RequestContext['generation'] {
  const runs = [...new Set(results)];
  const usage = usageOf(runs);
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    nfe: runs.reduce((a, r) => a + r.stats.nfe, 0),
    finishReasons: runs.map((r) => r.finishReason),
  };
}

export function logEntry(req: http.IncomingMessage, pathname: string, arrived: Date, seconds: number, status: number,
  ctx: RequestContext): RequestLogEntry {
  const entry: RequestLogEntry = {
    time: arrived.toISOString(),
    id: ctx.id,
    method: req.method ?? '',
    path: pathname.length > 256 ? `${pathname.slice(0, 256)}...` : pathname,
    status,
    ms: Math.round(seconds * 1e4) / 10,
  };
  if (ctx.generation) Object.assign(entry, ctx.generation);
  if (status >= 400 && ctx.error) {
    entry.error = ctx.error.message;
    if (ctx.error.stack !== undefined) entry.stack = ctx.error.stack;
  }
  return entry;
}

/** Without a `log` option: internal errors only, with their stack, on stderr (a server must not hide its own failures). */
export function defaultLog(entry: RequestLogEntry): void {
  if (entry.status < 500 || entry.stack === undefined) return;
  console.error(`streaming-dllm: ${entry.method} ${entry.path} failed (request ${entry.id}): ${entry.stack}`);
}
