// The model in models/: loads as the default, has the LLaDA layout and keys the spec
// names, renders prompts with its own chat template, and generates to EOS with every
// strategy, and solves held-out arithmetic problems with plain (vanilla) decoding and with
// the default streaming strategy.
// Its accuracy on the 200-problem split is measured by bench/accuracy.ts (model card).
import * as fs from 'fs';
import * as path from 'path';
import { defaultModelDir, loadModel } from '../lib';
import { makeHeldOut, scoreAnswer } from '../lib/tasks';
import type { DiffusionModel, GenerateResult, StreamChunk } from '../types';

let model: DiffusionModel;
beforeAll(async () => {
  model = await loadModel(undefined, { threads: 2 });
});
afterAll(() => model.dispose());

test('the default model is the shipped one, in the LLaDA layout', () => {
  expect(model.dir).toBe(defaultModelDir);
  const config = JSON.parse(fs.readFileSync(path.join(defaultModelDir, 'config.json'), 'utf8'));
  expect(config).toMatchObject({
    model_type: 'llada', block_type: 'llama', activation_type: 'silu', layer_norm_type: 'rms',
    include_bias: false, include_qkv_bias: false, weight_tying: false,
  });
  expect(model.info).toMatchObject({
    family: 'llada', dModel: config.d_model, nLayers: config.n_layers, nHeads: config.n_heads,
    vocabSize: config.vocab_size, embeddingSize: config.embedding_size,
    maskTokenId: config.mask_token_id, eosTokenId: config.eos_token_id, dtype: 'BF16',
  });
  expect(fs.statSync(path.join(defaultModelDir, 'model.safetensors')).size).toBeLessThan(30e6);
});

test('prompts are rendered with the checkpoint chat template and round-trip', async () => {
  const ids = await model.encodePrompt('What is 2+3?');
  const text = await model.decode(ids);
  expect(text).toContain('What is 2+3?');
  expect(ids[0]).toBe(model.info.bosTokenId);
  const plain = await model.encodePrompt('What is 2+3?', false);
  expect(plain.length).toBeLessThan(ids.length);
});

test.each(['vanilla', 'prefix-cache', 'dual-cache', 'streaming'] as const)('%s generates text that ends in EOS', async (strategy) => {
  const r = await model.generate('Finn has 72 cards. He loses 31. How many cards now?', {
    strategy, genLength: 64, blockLength: 32, ...(strategy === 'vanilla' ? { steps: 32 } : {}),
  });
  expect(r.tokens.length).toBe(64);
  expect(r.tokens.includes(model.info.maskTokenId)).toBe(false);
  expect(r.stats.tokensUntilEos).toBeLessThan(64);
  expect(r.text.length).toBeGreaterThan(0);
});

// generate() and chat() decode the text once at the end; stream() after every block: the
// same text either way, over several blocks (block 8 of gen 64), and the same tokens.
test('generate and chat give the text their streams give, decoded once', async () => {
  const opts = { strategy: 'dual-cache' as const, genLength: 64, blockLength: 8, earlyExit: false };
  const prompt = 'Ana has 15 apples and buys 27 more. How many apples now?';
  const joined = async (it: AsyncIterable<StreamChunk>) => {
    let text = '';
    let result: GenerateResult | undefined;
    for await (const c of it) {
      text += c.text;
      if (c.result) result = c.result;
    }
    return { text, result: result! };
  };
  const whole = await model.generate(prompt, opts);
  const streamed = await joined(model.stream(prompt, opts));
  expect(whole.text.length).toBeGreaterThan(0);
  expect(whole.text).toBe(streamed.text);
  expect(whole.text).toBe(streamed.result.text);
  expect(Array.from(whole.tokens)).toEqual(Array.from(streamed.result.tokens));
  const messages = [{ role: 'user' as const, content: prompt }];
  const chat = await model.chat(messages, opts);
  const chatStreamed = await joined(model.chatStream(messages, opts));
  expect(chat.text).toBe(chatStreamed.text);
  expect(Array.from(chat.tokens)).toEqual(Array.from(chatStreamed.result.tokens));
});

// The rule (vanilla, gen 256, block 32, one token per step) on the first
// HELD_OUT_CHECKED problems of the held-out split. The model card's 200-problem run solved
// SOLVED_AT_RELEASE of these with the same settings; one less is allowed so that a
// near-tie token decided differently by another CPU's kernels does not fail the suite,
// while a broken engine, tokenizer, template or checkpoint (which solves none) does.
const HELD_OUT_CHECKED = 16;
const SOLVED_AT_RELEASE = 16;
// The same first HELD_OUT_CHECKED problems with `strategy: 'streaming'` and every other option
// at the library's defaults (gen 256, block 32, tau 0.9, window 96, alpha 0, early exit):
// 16 solved when measured with these weights (the dig4+dig5 average, 2026-12-02); the same
// one-less margin.
const STREAMING_SOLVED_AT_RELEASE = 16;

test('vanilla decoding solves held-out arithmetic problems', async () => {
  const items = makeHeldOut('arithmetic', HELD_OUT_CHECKED);
  const solved: string[] = [];
  for (const item of items) {
    const r = await model.generate(item.prompt, { strategy: 'vanilla', genLength: 256, blockLength: 32, steps: 256 });
    if (scoreAnswer('arithmetic', item, r.text)) solved.push(item.id);
  }
  expect(solved.length).toBeGreaterThanOrEqual(Math.max(1, SOLVED_AT_RELEASE - 1));
}, 600_000);

test('default streaming decoding solves held-out arithmetic problems', async () => {
  const items = makeHeldOut('arithmetic', HELD_OUT_CHECKED);
  const solved: string[] = [];
  for (const item of items) {
    const r = await model.generate(item.prompt, { strategy: 'streaming' });
    if (scoreAnswer('arithmetic', item, r.text)) solved.push(item.id);
  }
  expect(solved.length).toBeGreaterThanOrEqual(Math.max(1, STREAMING_SOLVED_AT_RELEASE - 1));
}, 120_000);
