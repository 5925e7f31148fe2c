// Chat turns for model.chat(): checked before anything is rendered, then rendered with the
// checkpoint's own chat_template (lib/tokenizer.ts), the assistant's generation prompt last.
import type { Template } from '@huggingface/jinja';
import type { ChatMessage } from '../types';
import { describe, fail, oneOf } from './validate';

export const CHAT_ROLES: readonly ChatMessage['role'][] = ['system', 'user', 'assistant'];

/** The checkpoint's template failed on these messages (it raised, or used something undefined). */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

/** fail() with the received value already described. */
function reject(expected: string, name: string, received: string): never {
  throw new TypeError(`Expected ${expected} for ${name} but received ${received}`);
}

/** The messages as plain { role, content } objects, or a TypeError naming the bad field. */
export function checkMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) fail('an array of { role, content } messages', 'messages', messages);
  if (messages.length === 0) reject('at least one message', 'messages', 'an empty array');
  return messages.map((m: unknown, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) fail('a { role, content } object', `messages[${i}]`, m);
    const { role, content, ...rest } = m as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) reject('only the fields role and content', `messages[${i}]`, `the field ${JSON.stringify(extra)}`);
    if (typeof content !== 'string') fail('a string', `messages[${i}].content`, content);
    return { role: oneOf(`messages[${i}].role`, role, CHAT_ROLES), content };
  });
}

/** The template's text for these turns plus the generation prompt; its failures as ChatTemplateError. */
export function renderChat(template: Template, messages: ChatMessage[], specials: Record<string, string | undefined>): string {
  let text: unknown;
  try {
    text = template.render({ messages, add_generation_prompt: true, ...specials });
  } catch (e) {
    throw new ChatTemplateError(`The checkpoint's chat_template did not render these messages: ${(e as Error)?.message ?? describe(e)}`);
  }
  if (typeof text !== 'string' || text.length === 0) {
    throw new ChatTemplateError(`The checkpoint's chat_template rendered ${describe(text)} for these messages`);
  }
  return text;
}
