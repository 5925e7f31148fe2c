/**
 * Writes the character-level tokenizer files of the shipped model:
 * tokenizer.json (BPE with a char vocab and no merges, Fuse decoder),
 * tokenizer_config.json (Llama-3 style chat template, LLaDA special tokens)
 * and generation_config.json.
 *
 *   node tools/train/runs/js/tools/train/make_tokenizer.js <outDir>
 */
import * as fs from 'fs';
import * as path from 'path';

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

export function build(outDir: string): void {
  const chars = charVocab();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  const added = SPECIALS.map((t, j) => ({
    id: chars.length + j, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  for (const a of added) vocab[a.content] = a.id;
  const tok = {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: null, pre_tokenizer: null, post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [],
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
  build(process.argv[2] ?? 'models/dllm-mini-arith');
}
