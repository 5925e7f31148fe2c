// Text <-> token ids for a checkpoint directory: tokenizer.json through the `tokenizers`
// package, and chat prompts rendered from the checkpoint's own chat_template.
import { Template } from '@huggingface/jinja';
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from 'tokenizers';

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

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  /** The prompt as fed to the model: chat-rendered (by default when a template exists) or plain. */
  async encode(text: string, chat: boolean | undefined): Promise<Int32Array> {
    const useChat = chat ?? this.template !== null;
    if (useChat && !this.template) throw new Error('This checkpoint has no chat_template; pass { chat: false }');
    if (useChat && this.template) {
      const rendered = this.template.render({
        messages: [{ role: 'user', content: text }],
        add_generation_prompt: true,
        ...this.specials,
      });
      const enc = await this.tokenizer.encode(rendered, null, { addSpecialTokens: false });
      return Int32Array.from(enc.getIds());
    }
    const enc = await this.tokenizer.encode(text, null, { addSpecialTokens: true });
    return Int32Array.from(enc.getIds());
  }

  decode(ids: ArrayLike<number>): Promise<string> {
    return this.tokenizer.decode(Array.from(ids), true);
  }
}
