// OpenAI response shapes for /v1/completions and /v1/chat/completions, whole and as
// stream chunks, with `usage` and the diffusion figures of the run under `stats`.
import type { GenerateResult } from '../../types';
import type { Endpoint } from './request';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type OpenAIFinishReason = 'stop' | 'length';

/** What one response is about: its id, creation time (s) and model. */
export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

/** Tokens counted as OpenAI does: the prompts fed, and the completions up to (not including) EOS or through a stop sequence. */
export function usageOf(results: GenerateResult[]): Usage {
  const prompt = results.reduce((a, r) => a + r.promptTokens.length, 0);
  const completion = results.reduce((a, r) => a + r.stats.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** 'stop' when the model produced EOS or a stop sequence ended the text, 'length' when it used every generated position. */
export function finishReasonOf(result: GenerateResult): OpenAIFinishReason {
  return result.finishReason === 'length' ? 'length' : 'stop';
}

export function statsOf(result: GenerateResult) {
  const s = result.stats;
  return {
    nfe: s.nfe, seconds: s.seconds, queue_seconds: s.queueSeconds, blocks_decoded: s.blocksDecoded,
    gen_length: result.tokens.length, tokens_per_second: s.tokensPerSecond,
  };
}

/**
 * The request's figures: one generation's own, or for several the sums (NFE, blocks,
 * positions) over the longest wall time. Choices that share a generation (n of a greedy
 * request) count it once: these are the work done, not the choices returned.
 */
function requestStats(choices: GenerateResult[]) {
  const results = [...new Set(choices)];
  if (results.length === 1) return statsOf(results[0]);
  const seconds = Math.max(...results.map((r) => r.stats.seconds));
  const positions = results.reduce((a, r) => a + r.tokens.length, 0);
  return {
    nfe: results.reduce((a, r) => a + r.stats.nfe, 0),
    seconds,
    queue_seconds: Math.max(...results.map((r) => r.stats.queueSeconds)),
    blocks_decoded: results.reduce((a, r) => a + r.stats.blocksDecoded, 0),
    gen_length: positions,
    tokens_per_second: positions / seconds,
  };
}

/** The whole answer: one choice per prompt (several only on /v1/completions), each with its own stats when there are several. */
export function fullResponse(endpoint: Endpoint, head: ResponseHead, results: GenerateResult[]) {
  const choices = results.map((result, index) => {
    const finish_reason = finishReasonOf(result);
    const extra = results.length > 1 ? { stats: statsOf(result) } : {};
    return endpoint === 'completion'
      ? { index, text: result.text, logprobs: null, finish_reason, ...extra }
      : { index, message: { role: 'assistant', content: result.text }, logprobs: null, finish_reason, ...extra };
  });
  return {
    ...head,
    object: endpoint === 'completion' ? 'text_completion' : 'chat.completion',
    choices,
    usage: usageOf(results),
    stats: requestStats(results),
  };
}

/** A stream chunk of choice `index` carrying `text`; `finish` on its last one. Chat's first chunk also names the role. */
export function textChunk(endpoint: Endpoint, head: ResponseHead, text: string, finish: OpenAIFinishReason | null = null, role = false, index = 0) {
  if (endpoint === 'completion') {
    return { ...head, object: 'text_completion', choices: [{ index, text, logprobs: null, finish_reason: finish }] };
  }
  const delta = finish !== null ? {} : role ? { role: 'assistant', content: text } : { content: text };
  return { ...head, object: 'chat.completion.chunk', choices: [{ index, delta, logprobs: null, finish_reason: finish }] };
}

/** The extra last chunk of stream_options.include_usage: no choices, the usage. */
export function usageChunk(endpoint: Endpoint, head: ResponseHead, results: GenerateResult[]) {
  return {
    ...head,
    object: endpoint === 'completion' ? 'text_completion' : 'chat.completion.chunk',
    choices: [],
    usage: usageOf(results),
    stats: requestStats(results),
  };
}
