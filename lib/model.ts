// loadModel() and the model object users hold: prompt encoding, generate/stream over the
// block loop, a small pool of sessions (KV caches) reused across calls, and dispose.
import * as path from 'path';
import type {
  ChatMessage, DiffusionModel, GenerateOptions, GenerateResult, LoadOptions, SchedulerStats, StreamChunk,
} from '../types';
import type { NativeModel, NativeModelInfo, NativeSession } from '../types/native';
import { familyRules } from './family';
import { cacheSlotsFor, decodeBlocks, DecodeSummary } from './generate';
import { native, packageRoot, withCallSite } from './native';
import { ResolvedOptions, resolveOptions } from './options';
import { batchForwardOf, DEFAULT_LIMITS, Scheduler, SchedulerLimits } from './scheduler';
import { checkMessages } from './chat';
import { PromptCodec } from './tokenizer';
import { BackendName, chooseBackend } from './backend';
import { fail, integer, oneOf } from './validate';
import { findStop, StopHit, stopPrefixAtEnd, tokensThroughStop } from './stop';

export const DEFAULT_MODEL_NAME = 'dllm-mini-arith';
export const defaultModelDir = path.join(packageRoot(), 'models', DEFAULT_MODEL_NAME);

export async function loadModel(dir: string = defaultModelDir, options: LoadOptions = {}): Promise<DiffusionModel> {
  const site = new Error();
  if (typeof dir !== 'string' || dir.length === 0) fail('a model directory path', 'dir', dir);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) fail('an options object', 'options', options);
  const threads = options.threads === undefined ? 0 : integer('threads', options.threads, 1, 1024);
  const device = options.device === undefined ? 0 : integer('device', options.device, 0, 1024);
  const gpuPrecision = oneOf('gpuPrecision', options.gpuPrecision ?? 'bf16', ['bf16', 'exact'] as const);
  const limits = schedulerLimits(options);
  // weights 'q8': 8-bit linear weights quantized at load, a CPU-backend feature.
  const weights = oneOf('weights', options.weights ?? 'file', ['file', 'q8'] as const);
  if (weights === 'q8' && options.backend === 'cuda')
    throw new Error("weights 'q8' is supported by the CPU backend only; use backend 'cpu' (or 'auto') with it");
  const choice = weights === 'q8'
    ? { backend: 'cpu' as BackendName, reason: "weights 'q8': 8-bit weights run on the CPU backend only", device }
    : chooseBackend(options.backend, device);
  let { backend, reason } = choice;
  const resolved = path.resolve(dir);
  let nativeModel: NativeModel;
  if (backend === 'cuda') {
    try {
      nativeModel = await withCallSite(
        native.loadModel(resolved, { threads, backend: 'cuda', device, cudaLibrary: choice.cudaLibrary, gpuPrecision }), site);
      reason += ` (${nativeModel.backendDescription}; gpuPrecision ${gpuPrecision})`;
    } catch (e) {
      // 'auto' falls back to the CPU when the CUDA library fails (its errors start with
      // "CUDA backend:"); an explicit 'cuda', or a checkpoint error, is thrown as is.
      const message = (e as Error)?.message ?? String(e);
      if (options.backend === 'cuda' || !message.startsWith('CUDA backend')) throw e;
      backend = 'cpu';
      reason = `auto: the CUDA backend failed (${message}); using the CPU backend`;
      nativeModel = await withCallSite(native.loadModel(resolved, { threads }), site);
    }
  } else {
    nativeModel = await withCallSite(native.loadModel(resolved, { threads, weights }), site);
  }
  let codec: PromptCodec | null;
  try {
    codec = PromptCodec.load(resolved);
  } catch (e) {
    nativeModel.dispose();
    throw new Error(`Cannot load the tokenizer of ${resolved}: ${(e as Error).message}`);
  }
  return new Model(nativeModel, codec, resolved, backend, reason, limits);
}

function schedulerLimits(options: LoadOptions): SchedulerLimits {
  const d = DEFAULT_LIMITS;
  return {
    maxBatch: options.maxBatch === undefined ? d.maxBatch : integer('maxBatch', options.maxBatch, 1, 4096),
    maxBatchRows: options.maxBatchRows === undefined ? d.maxBatchRows : integer('maxBatchRows', options.maxBatchRows, 1),
    maxQueue: options.maxQueue === undefined ? d.maxQueue : integer('maxQueue', options.maxQueue, 0),
  };
}

class Model implements DiffusionModel {
  readonly info: NativeModelInfo;
  /** Id that ends the text and fills the rest on early exit (see the constructor). */
  private readonly eosId: number;
  private idle: NativeSession[] = [];
  private disposed = false;
  /** Concurrent calls join one batched forward per step (lib/scheduler.ts). */
  private readonly scheduler: Scheduler;

  constructor(
    private native: NativeModel,
    private readonly codec: PromptCodec | null,
    readonly dir: string,
    readonly backend: BackendName,
    readonly backendReason: string,
    limits: SchedulerLimits,
  ) {
    this.info = native.info;
    const batch = batchForwardOf(native);
    this.scheduler = new Scheduler(batch.forward, limits, batch.native);
    // Dream's references end on the tokenizer's EOS (eval passes tokenizer.eos_token_id);
    // LLaDA's use the config's eos_token_id.
    const tokenizerEos = familyRules(this.info.family).eosFromTokenizer ? codec?.specialTokenId('eos_token') : undefined;
    this.eosId = tokenizerEos ?? this.info.eosTokenId;
  }

  async encodePrompt(prompt: string, chat?: boolean): Promise<Int32Array> {
    if (!this.codec) throw new Error(`${this.dir} has no tokenizer.json: pass the prompt as token ids`);
    return this.codec.encode(prompt, chat, familyRules(this.info.family).prependBos);
  }

  async encodeChat(messages: ChatMessage[]): Promise<Int32Array> {
    const checked = checkMessages(messages);
    if (!this.codec) throw new Error(`${this.dir} has no tokenizer.json: chat messages cannot be encoded`);
    return this.codec.encodeMessages(checked, familyRules(this.info.family).prependBos);
  }

  schedulerStats(): SchedulerStats {
    return this.scheduler.stats();
  }

  async decode(tokens: ArrayLike<number>): Promise<string> {
    if (!this.codec) throw new Error(`${this.dir} has no tokenizer.json: cannot decode text`);
    return this.codec.decode(tokens);
  }

  async generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): Promise<GenerateResult> {
    return lastResult(this.generation(options, (opts) => this.promptTokens(prompt, opts.chat), false));
  }

  async *stream(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncIterableIterator<StreamChunk> {
    yield* this.generation(options, (opts) => this.promptTokens(prompt, opts.chat), true);
  }

  async chat(messages: ChatMessage[], options?: GenerateOptions): Promise<GenerateResult> {
    return lastResult(this.generation(options, (opts) => this.chatPrompt(messages, opts), false));
  }

  async *chatStream(messages: ChatMessage[], options?: GenerateOptions): AsyncIterableIterator<StreamChunk> {
    yield* this.generation(options, (opts) => this.chatPrompt(messages, opts), true);
  }

  private chatPrompt(messages: ChatMessage[], opts: ResolvedOptions): Promise<Int32Array> {
    if (opts.chat === false) fail('no chat option (chat() always renders the chat template)', 'chat', false);
    return this.encodeChat(messages);
  }

  /** One generation: options checked, the prompt's ids, then the block loop. */
  private async *generation(
    options: GenerateOptions | undefined,
    prompt: (opts: ResolvedOptions) => Promise<Int32Array>,
    textPerBlock: boolean,
  ): AsyncIterableIterator<StreamChunk> {
    const site = new Error();
    this.assertLive();
    const opts = resolveOptions(options, this.info.family);
    yield* this.decodeStream(await prompt(opts), opts, site, textPerBlock);
  }

  /**
   * The block loop for prompt ids: waits for a batch slot, then streams blocks, then the result.
   * `textPerBlock` false (generate, chat): the blocks carry no text and the text is decoded once
   * at the end, not after every block (each decode is a round trip to a libuv thread), unless
   * stop sequences need the text after each block.
   */
  private async *decodeStream(promptTokens: Int32Array, opts: ResolvedOptions, site: Error, textPerBlock: boolean): AsyncIterableIterator<StreamChunk> {
    this.checkLength(promptTokens.length, opts.genLength);
    const stops = opts.stop;
    const codec = this.codec;
    if (stops.length > 0 && !codec) throw new Error(`${this.dir} has no tokenizer.json: stop sequences cannot be matched`);
    const { maskTokenId } = this.info;
    const eosTokenId = this.eosId;
    const lastBlock = opts.genLength / opts.blockLength - 1;
    const queuedAt = process.hrtime.bigint();
    const sequence = await withCallSite(this.scheduler.admit(opts.signal), site);
    const queueSeconds = secondsSince(queuedAt);
    let session: NativeSession;
    try {
      session = this.takeSession(cacheSlotsFor(promptTokens.length, opts));
    } catch (e) {
      sequence.release();
      throw e;
    }
    let text = '';
    /** The part of `text` already given out in chunks. */
    let shown = '';
    let eosSeen = false;
    let stopped: StopHit | null = null;
    const finalTokens: number[] = [];
    const gen = decodeBlocks(session, promptTokens, opts, maskTokenId, eosTokenId, (request) => sequence.forward(session, request));
    try {
      for (;;) {
        sequence.back();
        // true: a stop sequence ended the text, the loop ends after the block just decoded.
        const next = await withCallSite(gen.next(stopped !== null), site);
        // Until the next gen.next() this generation is with its consumer (text decoding,
        // the caller's loop body): the batches go on without waiting for it.
        sequence.away();
        if (next.done) {
          // The slot is free before the consumer sees the result: a caller that awaits
          // one generation and starts the next never waits behind itself.
          sequence.release();
          if (!textPerBlock && stops.length === 0 && codec) text = await codec.decode(finalTokens);
          const summary = { ...next.value, seconds: secondsSince(queuedAt) };
          const completion = stopped ? await tokensThroughStop(finalTokens, stops, (ids) => codec!.decode(ids)) : undefined;
          yield { blockIndex: -1, text: '', tokens: new Int32Array(0), result: this.result(summary, promptTokens, text, queueSeconds, stopped, completion) };
          return;
        }
        const block = next.value;
        let blockText = '';
        if (!eosSeen) {
          for (const t of block.tokens) {
            if (t === eosTokenId) { eosSeen = true; break; }
            finalTokens.push(t);
          }
          if ((textPerBlock || stops.length > 0) && codec) {
            text = await codec.decode(finalTokens);
            stopped = findStop(text, stops);
            if (stopped) text = text.slice(0, stopped.index);
          }
          if (textPerBlock) {
            // The text is final at EOS, a stop sequence or the last block; before that, a tail
            // that may begin a stop sequence waits for the next block.
            const final = eosSeen || stopped !== null || block.blockIndex === lastBlock;
            const ready = text.slice(0, final ? text.length : text.length - stopPrefixAtEnd(text, stops));
            blockText = ready.startsWith(shown) ? ready.slice(shown.length) : ready;
            if (ready.length > shown.length || !ready.startsWith(shown)) shown = ready;
          }
        }
        yield { blockIndex: block.blockIndex, text: blockText, tokens: block.tokens };
      }
    } finally {
      await gen.return(undefined as never).catch(() => undefined);
      sequence.release();
      this.returnSession(session);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.scheduler.close(new Error('This model has been disposed'));
    for (const s of this.idle) s.dispose();
    this.idle = [];
    this.native.dispose();
  }

  /** `stop`: the stop sequence that ended the text, `throughStop` the tokens up to the one completing it. */
  private result(summary: DecodeSummary, promptTokens: Int32Array, text: string, queueSeconds: number,
    stop: StopHit | null, throughStop: number | undefined): GenerateResult {
    const { generated, nfe, seconds, blocksDecoded } = summary;
    let untilEos = generated.indexOf(this.eosId);
    if (untilEos < 0) untilEos = generated.length;
    return {
      text,
      tokens: generated,
      promptTokens,
      finishReason: stop ? 'stop' : untilEos < generated.length ? 'eos' : 'length',
      stopSequence: stop ? stop.sequence : null,
      stats: {
        nfe,
        seconds,
        queueSeconds,
        tokensPerSecond: generated.length / seconds,
        tokensPerSecondUntilEos: untilEos / seconds,
        tokensUntilEos: untilEos,
        blocksDecoded,
        completionTokens: throughStop ?? untilEos,
      },
    };
  }

  private async promptTokens(prompt: string | ArrayLike<number>, chat: boolean | undefined): Promise<Int32Array> {
    let ids: Int32Array;
    if (typeof prompt === 'string') {
      ids = await this.encodePrompt(prompt, chat);
    } else if (prompt && typeof prompt === 'object' && typeof (prompt as ArrayLike<number>).length === 'number') {
      ids = Int32Array.from(prompt as ArrayLike<number>);
      const bad = Array.from(prompt as ArrayLike<number>).find(
        (t) => !Number.isInteger(t) || t < 0 || t >= this.info.vocabSize,
      );
      if (bad !== undefined) fail(`token ids between 0 and ${this.info.vocabSize - 1}`, 'prompt', bad);
    } else {
      fail('a string or an array of token ids', 'prompt', prompt);
    }
    if (ids.length === 0) {
      if (typeof prompt === 'string') fail('a non-empty prompt', 'prompt', prompt);
      throw new TypeError('Expected a non-empty prompt for prompt but received an empty array');
    }
    return ids;
  }

  private checkLength(promptLength: number, genLength: number): void {
    const max = this.info.maxSequenceLength;
    if (max > 0 && genLength >= max) {
      // No prompt fits: the option is what is wrong, not the prompt.
      throw new RangeError(
        `Expected a genLength below the model's maxSequenceLength (${max}) for genLength but received ${genLength}`,
      );
    }
    if (max > 0 && promptLength + genLength > max) {
      throw new RangeError(
        `Expected a prompt of at most ${Math.max(0, max - genLength)} tokens (maxSequenceLength ${max}, ` +
          `genLength ${genLength}) for prompt but received ${promptLength} tokens`,
      );
    }
  }

  private takeSession(slots: number): NativeSession {
    this.assertLive();
    const i = this.idle.findIndex((s) => s.capacity >= slots);
    if (i >= 0) return this.idle.splice(i, 1)[0];
    return this.native.createSession(slots);
  }

  private returnSession(session: NativeSession): void {
    if (this.disposed) return session.dispose();
    this.idle.push(session);
    // Keep the largest two: a cache is prompt+genLength long and costly to allocate.
    this.idle.sort((a, b) => b.capacity - a.capacity);
    for (const extra of this.idle.splice(2)) extra.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('This model has been disposed');
  }
}

async function lastResult(chunks: AsyncIterableIterator<StreamChunk>): Promise<GenerateResult> {
  let last: StreamChunk | undefined;
  for await (const chunk of chunks) last = chunk;
  if (!last?.result) throw new Error('generation produced no result');
  return last.result;
}

function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}
