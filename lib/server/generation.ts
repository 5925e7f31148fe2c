// POST /v1/completions and /v1/chat/completions: everything that can be refused is checked
// before a slot is taken (400, 404, 413, 429, 503 as HttpErrors); then the generation runs,
// whole or as server-sent events with one chunk per finished block. A client that goes
// away aborts its generation, which frees its batch slot at the next forward.
import { randomUUID } from 'crypto';
import type * as http from 'http';
import type { DiffusionModel, GenerateResult, RequestLogEntry } from '../../types';
import { QueueFullError } from '../scheduler';
import { readJsonBody } from './body';
import { badRequest, CLIENT_CLOSED, errorBody, HttpError, toHttpError, sendJson } from './errors';
import { generationFigures, noteError, RequestContext } from './log';
import type { ServerMetrics } from './metrics';
import { finishReasonOf, fullResponse, ResponseHead, textChunk, usageChunk } from './openai';
import { Endpoint, parseRequest, ParsedRequest } from './request';
import { closeEventStream, openEventStream, sendEvent } from './sse';

export interface ServerState {
  model: DiffusionModel | null;
  loadError: Error | null;
  modelId: string;
  /** Unix seconds at which the model finished loading (GET /v1/models). */
  loadedAt: number;
  metrics: ServerMetrics;
  maxBatch: number;
  maxQueue: number;
  bodyLimit: number;
  /** Generations admitted and not yet answered: decoding plus queued. */
  open: number;
  /** Generation requests being handled, from their first byte to their answer (what a drain waits for). */
  handling: number;
  /** Set by close({ drainMs }): new generations are refused while the admitted ones finish. */
  draining: boolean;
  /** Origins allowed cross-origin ('*' among them: any); empty: no CORS. */
  corsOrigins: string[];
  /** API keys accepted on /v1/ routes; empty: no authentication. */
  apiKeys: Buffer[];
  /** Called once per answered request (ServeOptions.log, or the default: internal errors on stderr). */
  log: (entry: RequestLogEntry) => void;
}

/** The answer to a generation request that arrives while the server drains. */
export function shuttingDown(): HttpError {
  return new HttpError(503, 'The server is shutting down', 'server_error', null, 'shutting_down', { connection: 'close', 'retry-after': '1' });
}

export function requireModel(state: ServerState): DiffusionModel {
  if (state.model) return state.model;
  if (state.loadError) {
    throw new HttpError(503, `The model failed to load: ${state.loadError.message}`, 'server_error', null, 'model_load_failed');
  }
  throw new HttpError(503, 'The model is still loading', 'server_error', null, 'model_loading', { 'retry-after': '1' });
}

/** Answers one generation request; returns the status to record. Errors before the answer starts are thrown. */
export async function handleGeneration(endpoint: Endpoint, req: http.IncomingMessage, res: http.ServerResponse, state: ServerState,
  ctx: RequestContext): Promise<number> {
  const model = requireModel(state);
  const body = await readJsonBody(req, state.bodyLimit);
  const parsed = parseRequest(endpoint, body, state.modelId, model.info.family);
  const prompts = await promptIds(model, parsed);
  for (const [i, prompt] of prompts.entries()) checkLength(model, prompt.length, parsed, prompts.length > 1 ? i : -1);
  // Choices: n per prompt, in OpenAI's order (prompt by prompt), choice j of a prompt with
  // seed + j. A greedy request (temperature 0, no random confidence) gives the same answer
  // every time: it runs once per prompt and its result stands for all n choices.
  const deterministic = !parsed.sampled;
  const runsPerPrompt = deterministic ? 1 : parsed.n;
  const runs = prompts.flatMap((prompt, p) =>
    Array.from({ length: runsPerPrompt }, (_, j) => ({ prompt, choices: deterministic ? range(p * parsed.n, parsed.n) : [p * parsed.n + j], seedOffset: j })));
  // A request of more generations than the server ever holds would wait for capacity that never comes.
  if (runs.length > state.maxBatch + state.maxQueue) {
    throw badRequest(`Expected at most ${state.maxBatch + state.maxQueue} generations (--max-batch plus --max-queue; prompts times n) for prompt but received ${runs.length}`, parsed.n > 1 ? 'n' : 'prompt');
  }
  // Synchronous from the check to the increment: concurrent requests cannot overshoot.
  if (state.open + runs.length > state.maxBatch + state.maxQueue) throw busy(state);
  state.open += runs.length;
  const abort = new AbortController();
  let clientGone = false;
  const onClose = () => {
    if (res.writableEnded) return;
    clientGone = true;
    abort.abort(Object.assign(new Error('The client closed the connection'), { name: 'AbortError' }));
  };
  res.on('close', onClose);
  const head: ResponseHead = {
    id: `${endpoint === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`,
    created: Math.floor(Date.now() / 1000),
    model: state.modelId,
  };
  const optionsOf = (seedOffset: number) => ({ ...parsed.options, signal: abort.signal, seed: parsed.seed + seedOffset });
  // The runs side by side (the scheduler batches them); the first failure stops the rest.
  const all = async (run: (r: (typeof runs)[number]) => Promise<GenerateResult>): Promise<GenerateResult[]> => {
    let done: GenerateResult[];
    try {
      done = await Promise.all(runs.map(run));
    } catch (e) {
      abort.abort(e);
      throw e;
    }
    const results: GenerateResult[] = [];
    runs.forEach((r, i) => r.choices.forEach((c) => { results[c] = done[i]; }));
    return results;
  };
  try {
    let results: GenerateResult[];
    if (parsed.stream) {
      openEventStream(res);
      if (endpoint === 'chat') for (let c = 0; c < prompts.length * parsed.n; c++) sendEvent(res, textChunk(endpoint, head, '', null, true, c));
      results = await all(async ({ prompt, choices, seedOffset }) => {
        let last: GenerateResult | undefined;
        for await (const chunk of model.stream(prompt, optionsOf(seedOffset))) {
          if (chunk.result) last = chunk.result;
          else for (const c of choices) sendEvent(res, textChunk(endpoint, head, chunk.text, null, false, c));
        }
        for (const c of choices) sendEvent(res, textChunk(endpoint, head, '', finishReasonOf(last!), false, c));
        return last!;
      });
      if (parsed.includeUsage) sendEvent(res, usageChunk(endpoint, head, results));
      closeEventStream(res);
    } else {
      results = await all(({ prompt, seedOffset }) => model.generate(prompt, optionsOf(seedOffset)));
      sendJson(res, 200, fullResponse(endpoint, head, results));
    }
    for (const result of new Set(results)) recordResult(state.metrics, result);
    ctx.generation = generationFigures(results);
    return 200;
  } catch (e) {
    if (clientGone) {
      ctx.error = { message: 'The client closed the connection' };
      return CLIENT_CLOSED;
    }
    // Not expected (the count above admits no more than the model's queue holds), but a
    // full queue is a 429 wherever it is found.
    const error = e instanceof QueueFullError ? busy(state) : toHttpError(e);
    if (!res.headersSent) throw e instanceof QueueFullError ? error : e;
    noteError(ctx, e, error);
    // Mid-stream: an error event, and no [DONE], so the client knows the answer is cut short.
    sendEvent(res, errorBody(error));
    res.end();
    return error.status;
  } finally {
    state.open -= runs.length;
    res.off('close', onClose);
  }
}

const range = (start: number, count: number) => Array.from({ length: count }, (_, i) => start + i);

function busy(state: ServerState): HttpError {
  return new HttpError(429, `The server is busy: ${state.maxBatch} generations running and ${state.maxQueue} queued`,
    'rate_limit_error', null, 'queue_full', { 'retry-after': '1' });
}

async function promptIds(model: DiffusionModel, parsed: ParsedRequest): Promise<Int32Array[]> {
  if (parsed.messages) {
    try {
      return [await model.encodeChat(parsed.messages)];
    } catch (e) {
      throw badRequest((e as Error).message, 'messages');
    }
  }
  const prompts = parsed.prompts!;
  const field = (i: number) => (prompts.length > 1 ? `prompt[${i}]` : 'prompt');
  return Promise.all(prompts.map(async (prompt, i) => {
    try {
      if (typeof prompt === 'string') return await model.encodePrompt(prompt, parsed.options.chat);
      const bad = prompt.find((t) => t >= model.info.vocabSize);
      if (bad !== undefined) throw new Error(`Expected token ids between 0 and ${model.info.vocabSize - 1} for ${field(i)} but received ${bad}`);
      return Int32Array.from(prompt);
    } catch (e) {
      throw badRequest((e as Error).message, field(i));
    }
  }));
}

/** `index`: the prompt's place among several (its field is then prompt[index]), or -1. */
function checkLength(model: DiffusionModel, promptLength: number, parsed: ParsedRequest, index: number): void {
  const max = model.info.maxSequenceLength;
  const genLength = parsed.genLength;
  if (max > 0 && genLength >= max) {
    throw badRequest(
      `${parsed.lengthField} (${genLength}) leaves no room for a prompt within the model's maximum sequence length (${max})`,
      parsed.lengthField, 'context_length_exceeded');
  }
  if (max > 0 && promptLength + genLength > max) {
    const field = parsed.messages ? 'messages' : index >= 0 ? `prompt[${index}]` : 'prompt';
    throw badRequest(
      `The ${index >= 0 ? `prompt ${field}` : 'prompt'} (${promptLength} tokens) plus ${parsed.lengthField} (${genLength}) exceeds the model's maximum sequence length (${max})`,
      field, 'context_length_exceeded');
  }
}

function recordResult(metrics: ServerMetrics, result: GenerateResult): void {
  metrics.promptTokens.inc({}, result.promptTokens.length);
  metrics.generatedTokens.inc({}, result.stats.completionTokens);
  metrics.generatedPositions.inc({}, result.tokens.length);
  metrics.nfe.inc({}, result.stats.nfe);
  metrics.finished.inc({ finish_reason: result.finishReason });
  metrics.queueTime.observe(result.stats.queueSeconds);
}
