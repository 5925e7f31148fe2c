/**
 * On-policy states for training (issue 20): decodes training items with the engine's own
 * threshold strategies and records the working sequence before every forward, so the
 * trainer can learn on the inputs decoding actually visits (which positions are still
 * masked when, in the order the model itself unmasks them), not only on random masks.
 *
 *   node tools/train/runs/js/tools/train/onpolicy.js --model models/dllm-mini-arith \
 *     --data tools/train/runs/digits/data9 --out tools/train/runs/digits/data9/onpolicy.bin \
 *     --items 3000 --strategies prefix-cache,streaming --threads 2
 *   (optional: --gen-length 256 --block-length 32 --threshold 0.9 --show-wrong K)
 *
 * A state is kept only while it is consistent with the reference: every committed
 * position equals the reference's token (the response, then EOS). A generation that goes
 * wrong keeps its states up to and including the one whose commit went wrong (flag 1):
 * exactly where the model was confident and mistaken. Identical states are kept once.
 *
 * Writes records [u8 task][u8 flags][u16le P][u16le G][prompt u16le x P][state u16le x G]
 * [reference u16le x G] (state: MASK where masked).
 */
import * as fs from 'fs';
import { native } from '../../lib/native';
import { resolveOptions } from '../../lib/options';
import { DecodeContext } from '../../lib/decoder';
import { strategies } from '../../lib/strategies';
import { cacheSlotsFor } from '../../lib/generate';
import type { StrategyName } from '../../types';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

interface Item { task: number; prompt: Int32Array; response: Int32Array }

function readItems(file: string, limit: number): Item[] {
  const raw = fs.readFileSync(file);
  const out: Item[] = [];
  for (let i = 0; i < raw.length && out.length < limit;) {
    const task = raw[i];
    const pl = raw.readUInt16LE(i + 1);
    const rl = raw.readUInt16LE(i + 3);
    i += 5;
    const ids = new Int32Array(pl + rl);
    for (let k = 0; k < pl + rl; k++) ids[k] = raw.readUInt16LE(i + 2 * k);
    i += 2 * (pl + rl);
    out.push({ task, prompt: ids.subarray(0, pl), response: ids.subarray(pl) });
  }
  return out;
}

async function main(): Promise<void> {
  const modelDir = arg('model', 'models/dllm-mini-arith');
  const items = readItems(`${arg('data', 'tools/train/runs/digits/data9')}/train.bin`, Number(arg('items', '3000')));
  const names = arg('strategies', 'prefix-cache,streaming').split(',') as StrategyName[];
  const genLength = Number(arg('gen-length', '256'));
  const blockLength = Number(arg('block-length', '32'));
  // 0.9 for every strategy, as dig6's and dig7's states were recorded (the package's
  // streaming default has since become 0.95).
  const threshold = Number(arg('threshold', '0.9'));
  const outFile = arg('out', 'onpolicy.bin');
  const showWrong = Number(arg('show-wrong', '0'));
  const model = await native.loadModel(modelDir, { threads: Number(arg('threads', '2')) });
  const { maskTokenId: mask, eosTokenId: eos } = model.info;
  const fd = fs.openSync(`${outFile}.tmp`, 'w');
  let kept = 0, wrongAt = 0, correct = 0, runs = 0;
  const started = Date.now();
  for (const [n, item] of items.entries()) {
    if (item.response.length > genLength) continue;
    const reference = new Int32Array(genLength).fill(eos);
    reference.set(item.response);
    for (const name of names) {
      const opts = resolveOptions({ strategy: name, genLength, blockLength, threshold }, model.info.family);
      const session = model.createSession(cacheSlotsFor(item.prompt.length, opts));
      const states: Int32Array[] = [];
      const ctx: DecodeContext = new DecodeContext(session, item.prompt, opts, mask, eos, (request) => {
        states.push(ctx.x.slice(ctx.promptLength));
        return session.forward(request);
      });
      // The block loop of lib/generate.ts's decodeBlocks, written out here because the
      // recorder needs the context's whole working sequence before each forward.
      for (let b = 0; b < opts.genLength / opts.blockLength; b++) {
        await strategies[name].decodeBlock(ctx, b);
        if (opts.earlyExit && ctx.exitIfEos(b)) break;
      }
      session.dispose();
      states.push(ctx.x.slice(ctx.promptLength));
      runs++;
      const seen = new Set<string>();
      const consistent = states.map((st) => st.every((t, p) => t === mask || t === reference[p]));
      for (let s = 0; s + 1 < states.length; s++) {
        if (!consistent[s]) break;
        const wrongNext = !consistent[s + 1];
        const key = states[s].join(',');
        if (seen.has(key)) continue;
        seen.add(key);
        const h = Buffer.alloc(6);
        h.writeUInt8(item.task, 0);
        h.writeUInt8(wrongNext ? 1 : 0, 1);
        h.writeUInt16LE(item.prompt.length, 2);
        h.writeUInt16LE(genLength, 4);
        fs.writeSync(fd, Buffer.concat([h, Buffer.from(Uint16Array.from([...item.prompt, ...states[s], ...reference]).buffer)]));
        kept++;
        if (wrongNext) {
          wrongAt++;
          if (wrongAt <= showWrong) {
            const bad = [...states[s + 1].keys()].filter((p) => states[s + 1][p] !== mask && states[s + 1][p] !== reference[p]);
            console.log(`wrong commit (${name}, task ${item.task}): ${bad.map((p) => `pos ${p} got ${states[s + 1][p]} want ${reference[p]}`).join('; ')}`);
          }
          break;
        }
      }
      if (consistent[states.length - 1] && !states[states.length - 1].includes(mask)) correct++;
    }
    if ((n + 1) % 200 === 0) {
      console.log(`${n + 1} items, ${runs} runs: ${correct} exactly the reference, ${kept} states (${wrongAt} before a wrong commit), ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
  }
  fs.closeSync(fd);
  fs.renameSync(`${outFile}.tmp`, outFile);
  console.log(`done: ${runs} runs, ${correct} exactly the reference, ${kept} states (${wrongAt} before a wrong commit) -> ${outFile}`);
  model.dispose();
}

main().catch((e) => { console.error(e); process.exit(1); });
