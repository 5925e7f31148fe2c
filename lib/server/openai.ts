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

/** Tokens counted as OpenAI does: the prompt fed, and the completion up to (not including) EOS or through a stop sequence. */
export function usageOf(result: GenerateResult): Usage {
  const completion = result.stats.completionTokens;
  return { prompt_tokens: result.promptTokens.length, completion_tokens: completion, total_tokens: result.promptTokens.length + completion };
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

export function fullResponse(endpoint: Endpoint, head: ResponseHead, result: GenerateResult) {
  const finish_reason = finishReasonOf(result);
  const choice = endpoint === 'completion'
    ? { index: 0, text: result.text, logprobs: null, finish_reason }
    : { index: 0, message: { role: 'assistant', content: result.text }, logprobs: null, finish_reason };
  return {
    ...head,
    object: endpoint === 'completion' ? 'text_completion' : 'chat.completion',
    choices: [choice],
    usage: usageOf(result),
    stats: statsOf(result),
  };
}

/** A stream chunk carrying `text`; `finish` on the last one. Chat's first chunk also names the role. */
export function textChunk(endpoint: Endpoint, head: ResponseHead, text: string, finish: OpenAIFinishReason | null = null, role = false) {
  if (endpoint === 'completion') {
    return { ...head, object: 'text_completion', choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] };
  }
  const delta = finish !== null ? {} : role ? { role: 'assistant', content: text } : { content: text };
  return { ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
}

/** The extra last chunk of stream_options.include_usage: no choices, the usage. */
export function usageChunk(endpoint: Endpoint, head: ResponseHead, result: GenerateResult) {
  return {
    ...head,
    object: endpoint === 'completion' ? 'text_completion' : 'chat.completion.chunk',
    choices: [],
    usage: usageOf(result),
    stats: statsOf(result),
  };
}
