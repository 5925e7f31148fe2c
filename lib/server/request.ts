// OpenAI request bodies -> library calls. The OpenAI fields are read here; every other
// field is a library option in snake_case (gen_length -> genLength) and is validated by
// the library itself (resolveOptions), its messages rewritten to the names the client sent.
import type { ChatMessage, GenerateOptions } from '../../types';
import type { NativeFamily } from '../../types/native';
import { checkMessages } from '../chat';
import { resolveOptions } from '../options';
import { describe } from '../validate';
import { badRequest, modelNotFound } from './errors';

export type Endpoint = 'completion' | 'chat';

export interface ParsedRequest {
  endpoint: Endpoint;
  /**
   * /v1/completions: one prompt or several (OpenAI's array of strings or of token-id arrays),
   * each a text (the chat template applies as in the library) or token ids (fed as is).
   * Several are generated side by side (one choice each, batched by the scheduler).
   */
  prompts?: Array<string | number[]>;
  /** /v1/chat/completions. */
  messages?: ChatMessage[];
  stream: boolean;
  includeUsage: boolean;
  /** Library options, already validated. */
  options: GenerateOptions;
  /** The field the generation length came from (gen_length or max_tokens), for error messages. */
  lengthField: string;
  /** Generated positions, the library default filled in. */
  genLength: number;
  /** Choices per prompt (OpenAI's n): choice j samples with seed + j. */
  n: number;
  /** The resolved seed, and whether the options sample (temperature > 0 or random confidence). */
  seed: number;
  sampled: boolean;
}

const isEmptyObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0;

/** OpenAI fields accepted only at the value that means "no effect" here (null, OpenAI's "default", always). */
const INERT: Record<string, (v: unknown) => boolean> = {
  best_of: (v) => v === 1,
  top_p: (v) => v === 1,
  logprobs: (v) => v === false || v === 0,
  top_logprobs: (v) => v === 0,
  echo: (v) => v === false,
  presence_penalty: (v) => v === 0,
  frequency_penalty: (v) => v === 0,
  logit_bias: isEmptyObject,
  response_format: (v) => v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'text' && Object.keys(v).length === 1,
  tools: (v) => Array.isArray(v) && v.length === 0,
  tool_choice: (v) => v === 'none',
  user: (v) => typeof v === 'string',
};
const OPENAI_FIELDS = new Set(['model', 'prompt', 'messages', 'n', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', ...Object.keys(INERT)]);

/** Most choices per prompt (`n`). */
export const MAX_N = 16;

const snakeToCamel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const camelToSnake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function parseRequest(endpoint: Endpoint, body: Record<string, unknown>, modelId: string, family: NativeFamily): ParsedRequest {
  if (body.model !== undefined && body.model !== modelId) {
    throw modelNotFound(body.model, modelId);
  }
  for (const [field, ok] of Object.entries(INERT)) {
    if (body[field] !== undefined && body[field] !== null && !ok(body[field])) {
      throw badRequest(`${field} is not supported (received ${describe(body[field])}); omit it`, field, 'unsupported_value');
    }
  }
  const stream = body.stream === undefined || body.stream === null ? false : body.stream;
  if (typeof stream !== 'boolean') throw badRequest(`Expected a boolean for stream but received ${describe(stream)}`, 'stream');
  const includeUsage = parseStreamOptions(body.stream_options, stream);

  const parsed: ParsedRequest = { endpoint, stream, includeUsage, options: {}, lengthField: 'gen_length', genLength: 0, n: 1, seed: 0, sampled: false };
  if (endpoint === 'completion') {
    if (body.messages !== undefined) throw badRequest('messages belongs to /v1/chat/completions; send prompt here', 'messages', 'unknown_field');
    parsed.prompts = parsePrompts(body.prompt);
  } else {
    if (body.prompt !== undefined) throw badRequest('prompt belongs to /v1/completions; send messages here', 'prompt', 'unknown_field');
    if (body.chat !== undefined) throw badRequest('chat does not apply: chat completions always use the chat template', 'chat', 'unknown_field');
    try {
      parsed.messages = checkMessages(openAIMessages(body.messages));
    } catch (e) {
      throw badRequest((e as Error).message, fieldOf((e as Error).message) ?? 'messages');
    }
  }
  parsed.options = libraryOptions(body, parsed, family);
  if (body.n !== undefined && body.n !== null) {
    if (typeof body.n !== 'number' || !Number.isInteger(body.n) || body.n < 1 || body.n > MAX_N) {
      throw badRequest(`Expected an integer between 1 and ${MAX_N} for n but received ${describe(body.n)}`, 'n');
    }
    parsed.n = body.n;
    if (parsed.seed > Number.MAX_SAFE_INTEGER - (parsed.n - 1)) {
      throw badRequest(`Expected a seed of at most ${Number.MAX_SAFE_INTEGER - parsed.n + 1} with n ${parsed.n} (choice j uses seed + j) for seed but received ${parsed.seed}`, 'seed');
    }
  }
  return parsed;
}

/**
 * OpenAI chat messages as the library's { role, content }: content given as an array of
 * text parts is their texts joined by newlines (as vLLM joins them); `name` is accepted and
 * not used (the supported families' chat templates have no place for it). Anything else is
 * left for checkMessages to judge.
 */
function openAIMessages(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  return value.map((m: unknown, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return m;
    const { name, content, ...rest } = m as Record<string, unknown>;
    if (name !== undefined && name !== null && typeof name !== 'string') {
      throw badRequest(`Expected a string for messages[${i}].name but received ${describe(name)}`, `messages[${i}].name`);
    }
    return { ...rest, content: Array.isArray(content) ? textOfParts(content, `messages[${i}].content`) : content };
  });
}

function textOfParts(parts: unknown[], at: string): string {
  return parts.map((part: unknown, j) => {
    const field = `${at}[${j}]`;
    if (part === null || typeof part !== 'object' || Array.isArray(part)) {
      throw badRequest(`Expected a { type: "text", text } part for ${field} but received ${describe(part)}`, field);
    }
    const { type, text, ...rest } = part as Record<string, unknown>;
    if (type !== 'text') {
      throw badRequest(`Expected "text" for ${field}.type but received ${describe(type)}: only text parts are supported`, `${field}.type`);
    }
    if (typeof text !== 'string') throw badRequest(`Expected a string for ${field}.text but received ${describe(text)}`, `${field}.text`);
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw badRequest(`Unknown field ${field}.${extra}`, `${field}.${extra}`, 'unknown_field');
    return text;
  }).join('\n');
}

function parseStreamOptions(value: unknown, stream: boolean): boolean {
  if (value === undefined || value === null) return false;
  if (!stream) throw badRequest('stream_options is only allowed with stream: true', 'stream_options');
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`Expected an object for stream_options but received ${describe(value)}`, 'stream_options');
  const { include_usage: includeUsage, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw badRequest(`Unknown field stream_options.${extra}`, `stream_options.${extra}`, 'unknown_field');
  if (includeUsage !== undefined && typeof includeUsage !== 'boolean') {
    throw badRequest(`Expected a boolean for stream_options.include_usage but received ${describe(includeUsage)}`, 'stream_options.include_usage');
  }
  return includeUsage === true;
}

/** Most prompts one /v1/completions request may carry. */
export const MAX_PROMPTS = 64;

const isTokenIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0);

/** A string, token ids, or an array of either (several prompts); never empty. */
function parsePrompts(value: unknown): Array<string | number[]> {
  if (value === undefined) throw badRequest('prompt is required', 'prompt', 'missing_field');
  if (typeof value === 'string') {
    if (value.length === 0) throw badRequest('Expected a non-empty prompt for prompt but received the string ""', 'prompt');
    return [value];
  }
  if (isTokenIds(value)) return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((p) => typeof p === 'string' || Array.isArray(p))) {
    if (value.length > MAX_PROMPTS) {
      throw badRequest(`Expected at most ${MAX_PROMPTS} prompts for prompt but received ${value.length}`, 'prompt');
    }
    return value.map((p: unknown, i) => {
      if (typeof p === 'string' && p.length > 0) return p;
      if (isTokenIds(p)) return p;
      throw badRequest(`Expected a non-empty string or a non-empty array of token ids for prompt[${i}] but received ${describe(p)}`, `prompt[${i}]`);
    });
  }
  throw badRequest(`Expected a string, a non-empty array of token ids, or an array of those for prompt but received ${describe(value)}`, 'prompt');
}

/** Diffusion options from their snake_case fields, validated by the library. */
function libraryOptions(body: Record<string, unknown>, parsed: ParsedRequest, family: NativeFamily): GenerateOptions {
  const options: Record<string, unknown> = {};
  const sentAs = new Map<string, string>();
  for (const [field, value] of Object.entries(body)) {
    if (OPENAI_FIELDS.has(field)) continue;
    if (field === 'signal' || /[A-Z]/.test(field)) throw badRequest(`Unknown field ${field}`, field, 'unknown_field');
    const name = snakeToCamel(field);
    options[name] = value;
    sentAs.set(name, field);
  }
  for (const alias of ['max_tokens', 'max_completion_tokens']) {
    if (body[alias] === undefined) continue;
    if (options.genLength !== undefined) {
      throw badRequest(`Expected one of ${alias} and ${sentAs.get('genLength')} but received both`, alias, 'conflicting_fields');
    }
    options.genLength = body[alias];
    sentAs.set('genLength', alias);
  }
  parsed.lengthField = sentAs.get('genLength') ?? 'gen_length';
  try {
    const resolved = resolveOptions(options as GenerateOptions, family);
    parsed.genLength = resolved.genLength;
    parsed.seed = resolved.seed;
    parsed.sampled = resolved.temperature > 0 || resolved.confidence === 'random';
  } catch (e) {
    const message = clientNames((e as Error).message, sentAs);
    throw badRequest(message, fieldOf(message) ?? null);
  }
  return options as GenerateOptions;
}

/** The library's camelCase names in a message as the client wrote them. */
function clientNames(message: string, sentAs: Map<string, string>): string {
  return message
    .replace(/\b[a-z]+(?:[A-Z][a-z0-9]*)+\b/g, (name) => sentAs.get(name) ?? camelToSnake(name))
    // The option list of an unknown-name error: signal is the library's, not a request field.
    .replace(/, signal\b/, '');
}

/** The field a validation message names: "... for FIELD but received ...", or the unknown option itself. */
function fieldOf(message: string): string | undefined {
  const unknown = /for an option name but received the string "([^"]+)"/.exec(message);
  if (unknown) return unknown[1];
  return /for (\S+) but received/.exec(message)?.[1];
}
