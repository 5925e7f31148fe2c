// Public API of streaming-dllm. Hand-written; lib/ implements it.
import type { NativeModelInfo, NativeRuntimeInfo } from './native';

export type { NativeModelInfo as ModelInfo, NativeRuntimeInfo as RuntimeInfo } from './native';

export type StrategyName = 'vanilla' | 'prefix-cache' | 'dual-cache' | 'streaming' | 'slowfast';
export type ConfidenceName = 'prob' | 'margin' | 'entropy' | 'random';

export interface LoadOptions {
  /**
   * 'auto' (default) takes CUDA when a driver, a device, cuBLAS and the package's CUDA
   * library are all present, else the CPU; model.backendReason says which and why.
   * The CUDA path is tested under a CPU emulator only and has not been run on a GPU yet.
   */
  backend?: 'auto' | 'cpu' | 'cuda';
  /** CUDA device index for backend 'cuda' or 'auto'. Default 0. */
  device?: number;
  /**
   * CUDA arithmetic. 'bf16' (default): activations rounded to BF16 for BF16 x BF16 -> F32
   * tensor-core GEMMs, tensor-core attention (head_dim 64/128); close to, not bit-equal
   * with, the CPU. 'exact': float32 activations and attention, the CPU backend's
   * arithmetic (16-bit weights widened exactly), token for token; slower. Ignored on the CPU.
   */
  gpuPrecision?: 'bf16' | 'exact';
  /**
   * Worker threads of the CPU backend (process-wide; the first model loaded sets it). Default:
   * the physical cores this process may run on (CPU affinity), capped by its cgroup's CPU quota
   * (a container's CPU limit); `runtimeInfo().threadsReason` says what bounded it.
   */
  threads?: number;
  /**
   * 'file' (default): weights as the checkpoint stores them (a Q8_0 checkpoint written by
   * `streaming-dllm quantize` loads as Q8_0). 'q8': quantize the linear weights (attention
   * and MLP projections, and the LM head unless tied to the embedding) to 8 bits at load,
   * int8 in groups of 32 with one float32 scale each; the embedding and norms stay as stored.
   * CPU backend only ('auto' then takes the CPU; 'cuda' is an error).
   */
  weights?: 'file' | 'q8';
  /** Concurrent generate()/stream() calls decoding at once, sharing batched forwards. Default 8. */
  maxBatch?: number;
  /** Rows fed per batched forward, summed over its sequences (one larger request runs alone). Default 8192. */
  maxBatchRows?: number;
  /** Calls allowed to wait for a batch slot; one more rejects with a QueueFullError. Default unbounded. */
  maxQueue?: number;
}

/** A chat turn for model.chat() / chatStream(), rendered with the checkpoint's chat_template. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The continuous-batching scheduler of a model (lib/scheduler.ts): limits and counters. */
export interface SchedulerStats {
  maxBatch: number;
  maxBatchRows: number;
  maxQueue: number;
  /** The addon's forwardBatch is used (else each session's own forward, started together). */
  nativeBatch: boolean;
  /** Generations decoding now. */
  active: number;
  /** Generations waiting for a slot. */
  queued: number;
  /** Batched forward calls issued. */
  batches: number;
  /** Sequence steps run, over all batches (the sum of the batch sizes). */
  sequenceForwards: number;
  largestBatch: number;
  largestBatchRows: number;
  /** batchSizeCounts[k]: batches of k sequences. */
  batchSizeCounts: number[];
}

export interface GenerateOptions {
  /** Decoding strategy (decoding.md). Default 'streaming'. */
  strategy?: StrategyName;
  /** Positions generated after the prompt. Default 256. */
  genLength?: number;
  /** Block length; must divide genLength. Default 32. */
  blockLength?: number;
  /** Total denoising steps for the fixed schedule; a multiple of genLength/blockLength. Default genLength. */
  steps?: number;
  /**
   * Confidence threshold (Fast-dLLM parallel decoding). null selects the fixed schedule.
   * Default: 0.9 for prefix-cache and dual-cache (Fast-dLLM's); for streaming 0.95 on LLaDA-layout
   * models (chosen from measurement) and 0.9 on Dream; null for vanilla and slowfast.
   */
  threshold?: number | null;
  /** Fast-dLLM factor rule instead of a threshold (optional). */
  factor?: number | null;
  /** Streaming: masked-suffix positions kept after the block (plus the trailing one). Default 96. */
  window?: number;
  /** Streaming: dynamic threshold strength, tau_t = tau * (1 - alpha * (1 - maskRatio)). Default 0 for LLaDA-layout models (a fixed threshold, chosen from measurement), 0.3 for Dream. */
  alpha?: number;
  /** Stop once a finished block holds EOS and fill the rest with EOS. Default true for streaming, false otherwise. */
  earlyExit?: boolean;
  /** 0 = greedy. > 0: Gumbel-max sampling at this temperature. Default 0. */
  temperature?: number;
  /** Confidence used to rank candidates. Default 'prob'. */
  confidence?: ConfidenceName;
  /** Seed of the counter-based RNG (temperature > 0 or confidence 'random'). Default 0. */
  seed?: number;
  /** Render the prompt with the checkpoint's chat template. Default: true when it has one. */
  chat?: boolean;
  /** Cancels generation between forward passes. */
  signal?: AbortSignal;
  /**
   * Stop sequences (at most 16, each non-empty): the generation ends after the block whose
   * text first contains one, and `text` ends just before it (OpenAI's `stop`). Blocks are
   * final once decoded, so the text before a stop sequence is the text the same call gives
   * without it; the blocks after it are not decoded. Streamed text holds back a tail that
   * could be the start of a stop sequence until the next block decides it.
   */
  stop?: string | string[] | null;
  /** SlowFast: exploration calls per sub-cycle (K). Default 6. */
  explorationSteps?: number;
  /** SlowFast: confidence a masked position needs to count in the span estimate (c). Default 0.3. */
  cycleThreshold?: number;
  /** SlowFast: span estimates whose spread decides the span (W). Default 2. */
  stabilityWindow?: number;
  /** SlowFast: the span settles when the estimates' population std is below this (S). Default 1.0. */
  stabilityStd?: number;
  /** SlowFast: confidence at which positions commit together, when at least two reach it (h). Default 0.9. */
  highConfidence?: number;
  /** SlowFast: sub-cycles per block at most (Cmax); a block can keep masks after them. Default 256. */
  maxSubCycles?: number;
  /** SlowFast only: its calls attend to a KV cache of the committed blocks, rebuilt per block. Default false. */
  prefixCache?: boolean;
}

export interface GenerateStats {
  /** Model forward passes. */
  nfe: number;
  /** Wall time of the call, queueing for a batch slot included. */
  seconds: number;
  /** Part of `seconds` spent waiting for a batch slot (model load option maxBatch). */
  queueSeconds: number;
  /** All generated positions (EOS fill included) per second, as the paper's tables count. */
  tokensPerSecond: number;
  /** Generated tokens before the first EOS, per second. */
  tokensPerSecondUntilEos: number;
  /** Generated tokens before the first EOS. */
  tokensUntilEos: number;
  /** Number of blocks decoded before early exit or a stop sequence (or all). */
  blocksDecoded: number;
  /**
   * Tokens of the completion as an API bills them: those before the first EOS, or after a
   * stop sequence, those up to the one that completes it.
   */
  completionTokens: number;
}

/** Why the text ends: the model's EOS, a stop sequence of the call, or every position used. */
export type FinishReason = 'eos' | 'stop' | 'length';

export interface GenerateResult {
  /** Decoded text of the generated positions up to the first EOS, special tokens skipped. */
  text: string;
  /** All genLength generated token ids (EOS fill included); after a stop sequence, the decoded blocks' only. */
  tokens: Int32Array;
  /** Prompt token ids as fed to the model. */
  promptTokens: Int32Array;
  finishReason: FinishReason;
  /** The stop sequence that ended the text (finishReason 'stop'), else null. */
  stopSequence: string | null;
  stats: GenerateStats;
}

export interface StreamChunk {
  /** Index of the block that just became final. */
  blockIndex: number;
  /** Text that became final with this block (may be empty). */
  text: string;
  /** The block's token ids. */
  tokens: Int32Array;
  /** Set on the last chunk. */
  result?: GenerateResult;
}

export interface DiffusionModel {
  readonly info: NativeModelInfo;
  readonly dir: string;
  readonly backend: 'cpu' | 'cuda';
  /** Why this backend was chosen. */
  readonly backendReason: string;
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): Promise<GenerateResult>;
  stream(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncIterableIterator<StreamChunk>;
  /**
   * Generation from chat turns rendered with the checkpoint's chat_template (the
   * assistant's generation prompt is always appended). Same options as generate().
   */
  chat(messages: ChatMessage[], options?: GenerateOptions): Promise<GenerateResult>;
  chatStream(messages: ChatMessage[], options?: GenerateOptions): AsyncIterableIterator<StreamChunk>;
  /** Prompt token ids as generate() would feed them. */
  encodePrompt(prompt: string, chat?: boolean): Promise<Int32Array>;
  /** Prompt token ids as chat() would feed them. */
  encodeChat(messages: ChatMessage[]): Promise<Int32Array>;
  /** Limits and counters of the batching scheduler shared by this model's calls. */
  schedulerStats(): SchedulerStats;
  decode(tokens: ArrayLike<number>): Promise<string>;
  dispose(): void;
}

export interface ServeOptions {
  /** Model directory; default the shipped model. */
  model?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Generations decoding at once, batched per step. Default 8. */
  maxBatch?: number;
  /** Generations waiting for a slot; one more is answered 429. Default 64. */
  maxQueue?: number;
  /** Rows (fed tokens, summed over sequences) per batched forward (LoadOptions.maxBatchRows). Default 8192. */
  maxBatchRows?: number;
  /** Largest request body in bytes (413 above). Default 1 MiB. */
  bodyLimit?: number;
  /** CPU threads of the native backend. */
  threads?: number;
  /**
   * Cross-origin requests from browsers (CORS): '*' for any origin, or the origins allowed
   * (e.g. ['http://localhost:3000']). Default: none (no CORS headers; preflights get 405).
   */
  cors?: string | string[];
  /**
   * API keys: when set, every /v1/ route asks for `Authorization: Bearer <key>` with one of
   * them (401 `invalid_api_key` otherwise); /health and /metrics stay open, as do CORS
   * preflights. Default: none (no authentication).
   */
  apiKey?: string | string[];
  /**
   * Called once per answered request, after its answer (a throw here is ignored). Default:
   * internal errors (5xx from a failure, not a refusal) are printed to stderr with their
   * stack, nothing else. The CLI's `--log-requests` passes one that writes JSON lines.
   */
  log?: (entry: RequestLogEntry) => void;
  /** Loads the model instead of loadModel(model, { threads, maxBatch, maxQueue, maxBatchRows }) (e.g. to delay it in tests). */
  load?: (limits: { maxBatch: number; maxQueue: number; maxBatchRows?: number }) => Promise<DiffusionModel>;
}

/** One answered request, as ServeOptions.log receives it. Never holds the prompt, the answer or a key. */
export interface RequestLogEntry {
  /** Arrival, ISO 8601 (UTC). */
  time: string;
  /** The X-Request-Id of the response: the client's own when it is a plain token of at most 128 characters, else a new UUID. */
  id: string;
  method: string;
  /** The URL path, without the query (cut at 256 characters). */
  path: string;
  /** The status answered; 499 when the client closed the connection first. */
  status: number;
  /** From arrival to the end of the answer, milliseconds. */
  ms: number;
  /** Generations answered whole: tokens and forward passes over the request's runs (n choices of a greedy request share one run). */
  promptTokens?: number;
  completionTokens?: number;
  nfe?: number;
  finishReasons?: FinishReason[];
  /** Status 400 or more: the message the client received (or why the request ended). */
  error?: string;
  /** An internal error's stack. */
  stack?: string;
}

export interface RunningServer {
  readonly server: import('http').Server;
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  /** Resolves once the model is loaded; rejects with the load error (the server keeps answering 503). */
  readonly ready: Promise<DiffusionModel>;
  /**
   * Stops listening, closes the connections and disposes the model. With `drainMs` > 0 the
   * generations already admitted may finish first (for at most that long): meanwhile new
   * generation requests on open connections get 503 `shutting_down` and /health answers 503
   * `draining`, so a load balancer stops sending; what is still running after it is cut off.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** Rejection of a call beyond maxBatch + maxQueue (LoadOptions). */
export declare class QueueFullError extends Error {}
/** The checkpoint's chat_template failed on the messages given (or there is none). */
export declare class ChatTemplateError extends Error {}

export declare function loadModel(dir?: string, options?: LoadOptions): Promise<DiffusionModel>;
/** The OpenAI-compatible HTTP server (`npx streaming-dllm serve`); listening when it resolves, the model loading behind. */
export declare function serve(options?: ServeOptions): Promise<RunningServer>;
export declare function runtimeInfo(): NativeRuntimeInfo;
export declare const defaultModelDir: string;
