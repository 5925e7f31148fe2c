/**
 * Renders + tokenizes task items exactly as the runtime will (chat template
 * via @huggingface/jinja, then `tokenizers` with add_special_tokens=false),
 * so the Python trainer only sees token ids.
 *
 *   node .../gen_data.js --model models/dllm-mini-arith --out tools/train/runs/data \
 *        --train 400000 --seed 1 --list-weight 0.25
 *
 * Writes train.bin: records [u8 task (0 arith, 1 list)][u16le promptLen][u16le respLen][ids as u16le...]
 * (response = reference + <|eot_id|>, no padding), heldout_<task>.json
 * ({id, prompt, answer, reference, prompt_ids}) for the first 1000 held-out items,
 * and vocab.json (the token string of every id, for the trainer's decoding).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from 'tokenizers';
import { Template } from '@huggingface/jinja';
import { TaskItem, TaskName, makeHeldOut, trainStream, HELD_OUT_POOL } from '../../lib/tasks';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  const modelDir = arg('model', 'models/dllm-mini-arith');
  const outDir = arg('out', 'tools/train/runs/data');
  const nTrain = Number(arg('train', '400000'));
  const seed = Number(arg('seed', '1'));
  const listW = Number(arg('list-weight', '0.25'));
  fs.mkdirSync(outDir, { recursive: true });
  const tk = Tokenizer.fromFile(path.join(modelDir, 'tokenizer.json'));
  const cfg = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer_config.json'), 'utf8'));
  const tmpl = new Template(cfg.chat_template);
  const render = (p: string) =>
    tmpl.render({ messages: [{ role: 'user', content: p }], add_generation_prompt: true, bos_token: cfg.bos_token, eos_token: cfg.eos_token });
  const encode = async (texts: string[]) =>
    (await tk.encodeBatch(texts, { addSpecialTokens: false })).map((e) => e.getIds());

  for (const task of ['arithmetic', 'list'] as TaskName[]) {
    const items = makeHeldOut(task, HELD_OUT_POOL);
    const ids = await encode(items.map((t) => render(t.prompt)));
    const rows = items.map((t, i) => ({ id: t.id, prompt: t.prompt, answer: t.answer, reference: t.reference, prompt_ids: ids[i] }));
    fs.writeFileSync(path.join(outDir, `heldout_${task}.json`), JSON.stringify(rows));
  }

  const vocab: Record<string, number> = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer.json'), 'utf8')).model.vocab;
  const byId: string[] = [];
  for (const [t, id] of Object.entries(vocab)) byId[id] = t;
  fs.writeFileSync(path.join(outDir, 'vocab.json'), JSON.stringify(byId));

  const stream = trainStream(seed, { arithmetic: 1 - listW, list: listW });
  const fd = fs.openSync(path.join(outDir, 'train.bin.tmp'), 'w');
  const CH = 2000;
  for (let done = 0; done < nTrain; done += CH) {
    const batch: TaskItem[] = [];
    for (let i = 0; i < Math.min(CH, nTrain - done); i++) batch.push(stream.next().value as TaskItem);
    const p = await encode(batch.map((t) => render(t.prompt)));
    const r = await encode(batch.map((t) => t.reference + '<|eot_id|>'));
    const parts: Buffer[] = [];
    batch.forEach((t, i) => {
      const h = Buffer.alloc(5);
      h.writeUInt8(t.task === 'arithmetic' ? 0 : 1, 0);
      h.writeUInt16LE(p[i].length, 1);
      h.writeUInt16LE(r[i].length, 3);
      parts.push(h, Buffer.from(Uint16Array.from([...p[i], ...r[i]]).buffer));
    });
    fs.writeSync(fd, Buffer.concat(parts));
  }
  fs.closeSync(fd);
  fs.renameSync(path.join(outDir, 'train.bin.tmp'), path.join(outDir, 'train.bin'));
  console.log(`wrote ${nTrain} training items to ${outDir}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
