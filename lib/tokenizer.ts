// Text <-> token ids for a checkpoint directory: tokenizer.json through the `tokenizers`
// package, and chat prompts rendered from the checkpoint's own chat_template.
import { Template } from '@huggingface/jinja';
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from 'tokenizers';
import type { ChatMessage } from '../types';
import { ChatTemplateError, renderChat } from './chat';

function tokenString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

export class PromptCodec {
  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: Template | null,
    private readonly specials: Record<string, string | undefined>,
  ) {}

  /** null when the directory has no tokenizer.json (prompts must then be token ids). */
  static load(dir: string): PromptCodec | null {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file)) return null;
    const tokenizer = Tokenizer.fromFile(file);
    let template: Template | null = null;
    const specials: Record<string, string | undefined> = {};
    const configFile = path.join(dir, 'tokenizer_config.json');
    if (fs.existsSync(configFile)) {
      const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
      if (typeof config.chat_template === 'string') template = new Template(config.chat_template);
      for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) specials[key] = tokenString(config[key]);
    }
    return new PromptCodec(tokenizer, template, specials);
  }

  /** Id of a special token named in tokenizer_config.json (e.g. 'bos_token'), if the vocabulary has it. */
  specialTokenId(name: 'bos_token' | 'eos_token'): number | undefined {
    const token = this.specials[name];
    return token === undefined ? undefined : this.tokenizer.tokenToId(token) ?? undefined;
  }

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  /**
   * The prompt as fed to the model: chat-rendered (by default when a template exists) or
   * plain. With `prependBos` the tokenizer's BOS goes first unless the encoding already
   * starts with it (Dream's evaluation prepends the BOS string to every prompt; its
   * tokenizer adds none itself).
   */
  async encode(text: string, chat: boolean | undefined, prependBos = false): Promise<Int32Array> {
    return this.withBos(await this.encodeText(text, chat), prependBos);
  }

  /** Chat turns rendered with the chat_template (generation prompt appended), BOS as in encode(). */
  async encodeMessages(messages: ChatMessage[], prependBos = false): Promise<Int32Array> {
    if (!this.template) throw new ChatTemplateError('This checkpoint has no chat_template: chat messages cannot be rendered');
    return this.withBos(await this.encodeRendered(renderChat(this.template, messages, this.specials)), prependBos);
  }

  private withBos(ids: Int32Array, prependBos: boolean): Int32Array {
    const bos = prependBos ? this.specialTokenId('bos_token') : undefined;
    if (bos === undefined || ids[0] === bos) return ids;
    const out = new Int32Array(ids.length + 1);
    out[0] = bos;
    out.set(ids, 1);
    return out;
  }

  private async encodeText(text: string, chat: boolean | undefined): Promise<Int32Array> {
    const useChat = chat ?? this.template !== null;
    if (useChat && !this.template) throw new Error('This checkpoint has no chat_template; pass { chat: false }');
    if (useChat && this.template) {
      return this.encodeRendered(renderChat(this.template, [{ role: 'user', content: text }], this.specials));
    }
    const enc = await this.tokenizer.encode(text, null, { addSpecialTokens: true });
    return Int32Array.from(enc.getIds());
  }

  /** Template output already holds the special tokens it wants; none are added. */
  private async encodeRendered(rendered: string): Promise<Int32Array> {
    const enc = await this.tokenizer.encode(rendered, null, { addSpecialTokens: false });
    return Int32Array.from(enc.getIds());
  }

  decode(ids: ArrayLike<number>): Promise<string> {
    return this.tokenizer.decode(Array.from(ids), true);
  }
}
