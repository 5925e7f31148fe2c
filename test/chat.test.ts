// model.chat() / chatStream(): messages rendered with the checkpoint's own chat_template
// (checked against the template's text written out here and encoded by the tokenizer
// itself), generation equal to generate() on the same ids, and clear errors for malformed
// messages and for templates that do not render.
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from 'tokenizers';
import { ChatTemplateError, defaultModelDir, loadModel } from '../lib';
import type { ChatMessage, DiffusionModel } from '../types';
import { makeTempDir, removeDir } from './helpers/checkpoint';

let model: DiffusionModel;
const tempDirs: string[] = [];
beforeAll(async () => {
  model = await loadModel(undefined, { threads: 2 });
});
afterAll(() => {
  model.dispose();
  for (const d of tempDirs) removeDir(d);
});

const QUESTION = 'Ann has 12 apples. She buys 7 more. How many apples now?';
const OPTIONS = { strategy: 'streaming' as const, genLength: 64, blockLength: 32 };

/** The shipped model's files with another tokenizer_config.json (chat_template replaced or removed). */
async function withTemplate(template: string | undefined): Promise<DiffusionModel> {
  const dir = makeTempDir('sdllm-chat-');
  tempDirs.push(dir);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) fs.symlinkSync(path.join(defaultModelDir, f), path.join(dir, f));
  const config = JSON.parse(fs.readFileSync(path.join(defaultModelDir, 'tokenizer_config.json'), 'utf8'));
  if (template === undefined) delete config.chat_template;
  else config.chat_template = template;
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return loadModel(dir, { threads: 2 });
}

describe('rendering', () => {
  test('a single user turn renders as a chat-templated text prompt does', async () => {
    expect(Array.from(await model.encodeChat([{ role: 'user', content: QUESTION }]))).toEqual(Array.from(await model.encodePrompt(QUESTION)));
  });

  test('system, user and assistant turns follow the template, generation prompt last', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You solve arithmetic.' },
      { role: 'user', content: 'What is 2+3?' },
      { role: 'assistant', content: '2+3=5\n#### 5' },
      { role: 'user', content: ' What is 4+4? ' },
    ];
    // The shipped template: BOS, then per turn header + trimmed content + <|eot_id|>, then the assistant header.
    const turn = (m: ChatMessage) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content.trim()}<|eot_id|>`;
    const expected = `<|begin_of_text|>${messages.map(turn).join('')}<|start_header_id|>assistant<|end_header_id|>\n\n`;
    const tokenizer = Tokenizer.fromFile(path.join(defaultModelDir, 'tokenizer.json'));
    const ids = (await tokenizer.encode(expected, null, { addSpecialTokens: false })).getIds();
    expect(Array.from(await model.encodeChat(messages))).toEqual(ids);
  });
});

describe('generation', () => {
  const messages: ChatMessage[] = [{ role: 'system', content: 'Answer with the result.' }, { role: 'user', content: QUESTION }];

  test('chat() gives what generate() gives on the rendered ids', async () => {
    const viaChat = await model.chat(messages, OPTIONS);
    const direct = await model.generate(await model.encodeChat(messages), OPTIONS);
    expect(Array.from(viaChat.tokens)).toEqual(Array.from(direct.tokens));
    expect(viaChat.text).toBe(direct.text);
    expect(viaChat.text.length).toBeGreaterThan(0);
    expect(Array.from(viaChat.promptTokens)).toEqual(Array.from(await model.encodeChat(messages)));
  });

  test('chatStream() yields each block, then the result', async () => {
    const chunks = [];
    for await (const c of model.chatStream(messages, { ...OPTIONS, earlyExit: false })) chunks.push(c);
    expect(chunks.map((c) => c.blockIndex)).toEqual([0, 1, -1]);
    expect(chunks.slice(0, 2).map((c) => c.text).join('')).toBe(chunks[2].result!.text);
  });

  test('chat: false does not apply to chat()', async () => {
    await expect(model.chat(messages, { chat: false })).rejects.toThrow('Expected no chat option (chat() always renders the chat template) for chat but received boolean false');
  });
});

describe('errors', () => {
  test.each([
    ['hello', 'Expected an array of { role, content } messages for messages but received the string "hello"'],
    [[], 'Expected at least one message for messages but received an empty array'],
    [[null], 'Expected a { role, content } object for messages[0] but received null'],
    [[{ role: 'user', content: 'a' }, { role: 'robot', content: 'b' }], /Expected one of 'system', 'user', 'assistant' for messages\[1\].role but received the string "robot"/],
    [[{ role: 'user' }], 'Expected a string for messages[0].content but received nothing'],
    [[{ role: 'user', content: 42 }], 'Expected a string for messages[0].content but received 42'],
    [[{ role: 'user', content: 'a', name: 'x' }], 'Expected only the fields role and content for messages[0] but received the field "name"'],
  ])('%j is rejected before rendering', async (messages, message) => {
    await expect(model.chat(messages as never)).rejects.toThrow(message);
    await expect(model.encodeChat(messages as never)).rejects.toThrow(TypeError);
  });

  test('a template that raises gives a ChatTemplateError with its message', async () => {
    const m = await withTemplate("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System turns are not supported') }}{% endif %}"
      + "{% for x in messages %}{{ x['content'] }}{% endfor %}");
    try {
      await expect(m.encodeChat([{ role: 'user', content: 'hi' }])).resolves.toBeInstanceOf(Int32Array);
      const e = await m.chat([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]).catch((x: Error) => x);
      expect(e).toBeInstanceOf(ChatTemplateError);
      expect((e as Error).message).toMatch(/chat_template did not render these messages: .*System turns are not supported/);
    } finally {
      m.dispose();
    }
  });

  test('a template that renders nothing, and a checkpoint without one, are ChatTemplateErrors', async () => {
    const empty = await withTemplate('{% if false %}x{% endif %}');
    const none = await withTemplate(undefined);
    try {
      await expect(empty.chat([{ role: 'user', content: 'hi' }])).rejects.toThrow(/rendered the string "" for these messages/);
      await expect(none.chat([{ role: 'user', content: 'hi' }])).rejects.toThrow(/has no chat_template/);
      await expect(none.chat([{ role: 'user', content: 'hi' }])).rejects.toBeInstanceOf(ChatTemplateError);
    } finally {
      empty.dispose();
      none.dispose();
    }
  });
});
