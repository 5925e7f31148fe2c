/**
 * Writes the tokenizer files of the shipped model:
 * tokenizer.json (a small BPE over a character base vocabulary, Fuse decoder),
 * tokenizer_config.json (Llama-3 style chat template, LLaDA special tokens)
 * and generation_config.json.
 *
 * The merges are not learned by frequency counting: they are written so that
 * every word the task suite uses (with its leading space) is one token, each word
 * through a left-to-right chain of merges. Any other text still encodes, character
 * by character. Short sequences make the model cheaper to train and run.
 *
 * Numbers: by default every number 10..99 is also one token (cheap to copy). The
 * shipped model uses --digits instead, where each digit is a token: a probe found
 * that facts like 78-10=68 are learned far faster digit by digit, and the model
 * trained on number tokens stalled on them (tools/train/README.md, "Why digits").
 *
 *   node tools/train/runs/js/tools/train/make_tokenizer.js <outDir> [--digits]
 */
import * as fs from 'fs';
import * as path from 'path';
import { trainStream, TaskItem } from '../../lib/tasks';

export const SPECIALS = [
  '<|endoftext|>', '<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<|mdm_mask|>', '<unk>',
];

/** ids 0..95: '\n' then printable ASCII 32..126; specials follow. */
export function charVocab(): string[] {
  const chars = ['\n'];
  for (let c = 32; c <= 126; c++) chars.push(String.fromCharCode(c));
  return chars;
}

export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}" +
  "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + (m['content'] | trim) + '<|eot_id|>' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** Words (with their leading space, or none at the start of a message) seen at least `minCount` times. */
export function taskWords(samples = 20000, minCount = 10): string[] {
  const counts = new Map<string, number>();
  const stream = trainStream(12345, { arithmetic: 0.8, list: 0.2 });
  const add = (w: string) => counts.set(w, (counts.get(w) ?? 0) + 1);
  for (let i = 0; i < samples; i++) {
    const item = stream.next().value as TaskItem;
    for (const text of [item.prompt, item.reference]) {
      for (const m of text.matchAll(/(^| )[A-Za-z]+/g)) if (m[0].trim().length > 1) add(m[0]);
    }
  }
  for (const w of ['user', 'assistant']) counts.set(w, minCount); // chat-template roles
  return [...counts].filter(([, n]) => n >= minCount).map(([w]) => w).sort();
}

/** Merge list: '\n\n', '####', numbers 10..99 (unless digits), then a prefix chain per word. */
export function mergesFor(words: string[], digits = false): [string, string][] {
  const merges: [string, string][] = [['\n', '\n'], ['#', '#'], ['##', '##']];
  if (!digits) for (let n = 10; n <= 99; n++) merges.push([String(n)[0], String(n)[1]]);
  const seen = new Set<string>();
  for (const w of words) {
    for (let k = 2; k <= w.length; k++) {
      const piece = w.slice(0, k);
      if (seen.has(piece)) continue;
      seen.add(piece);
      merges.push([w.slice(0, k - 1), w[k - 1]]);
    }
  }
  return merges;
}

export function build(outDir: string, digits = false): void {
  const chars = charVocab();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  const added = SPECIALS.map((t, j) => ({
    id: chars.length + j, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  for (const a of added) vocab[a.content] = a.id;
  // merged tokens follow the specials, so the ids of characters and specials never move
  const merges = mergesFor(taskWords(), digits);
  let next = chars.length + SPECIALS.length;
  for (const [a, b] of merges) if (vocab[a + b] === undefined) vocab[a + b] = next++;
  const tok = {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: null, pre_tokenizer: null, post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'tokenizer.json'), JSON.stringify(tok, null, 1) + '\n');
  const cfg = {
    bos_token: '<|begin_of_text|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<unk>',
    mask_token: '<|mdm_mask|>', model_max_length: 1024, clean_up_tokenization_spaces: false,
    tokenizer_class: 'PreTrainedTokenizerFast', chat_template: CHAT_TEMPLATE,
    added_tokens_decoder: Object.fromEntries(added.map((a) => [String(a.id), { content: a.content, special: true }])),
  };
  fs.writeFileSync(path.join(outDir, 'tokenizer_config.json'), JSON.stringify(cfg, null, 2) + '\n');
  const eos = chars.length + SPECIALS.indexOf('<|endoftext|>');
  const gen = {
    bos_token_id: chars.length + SPECIALS.indexOf('<|begin_of_text|>'), eos_token_id: eos, pad_token_id: eos,
    mask_token_id: chars.length + SPECIALS.indexOf('<|mdm_mask|>'),
    gen_length: 256, block_length: 32, steps: 256, temperature: 0.0, remasking: 'low_confidence',
  };
  fs.writeFileSync(path.join(outDir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
}

if (require.main === module) {
  const args = process.argv.slice(2);
  build(args.find((a) => !a.startsWith('--')) ?? 'models/dllm-mini-arith', args.includes('--digits'));
}
