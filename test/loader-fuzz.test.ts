// Seeded mutations of tiny LLaDA and Dream checkpoints (the safetensors header's bytes,
// numbers, length field, dtypes and shapes; truncation; NaN weights; config.json values),
// each loaded through the native binding in a child process, so that a crash fails the
// test instead of killing jest. Every mutant must either load and run a forward or be
// refused with an Error whose message names the file; none may crash, hang or throw a
// non-Error. loader.test.ts holds the targeted cases; this covers their combinations.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { addonPath } from '../lib/native';
import { makeTempDir, removeDir, writeTinyDream, writeTinyLlada } from './helpers/checkpoint';

const MUTANTS = 150;

// Runs in the child: argv = base dir, first seed, count. Prints one JSON summary line.
const child = `
const fs = require('fs'), os = require('os'), path = require('path');
const addon = require(${JSON.stringify(addonPath())});
const [base, first, count] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
function rng(seed) { let a = seed >>> 0; return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; }
const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
const files = fs.readdirSync(base);
const st = files.find((f) => f.endsWith('.safetensors'));
const orig = fs.readFileSync(path.join(base, st));
const hlen = Number(orig.readBigUInt64LE(0));
const config = JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8'));
const withHeader = (h) => { const hb = Buffer.from(h, 'utf8'), len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(hb.length));
  return Buffer.concat([len, hb, orig.subarray(8 + hlen)]); };
function mutate(seed, dir) {
  const r = rng(seed), buf = Buffer.from(orig), header = orig.subarray(8, 8 + hlen).toString('utf8');
  switch (seed % 7) {
    case 0: for (let i = 0; i < 1 + Math.floor(r() * 4); i++) buf[8 + Math.floor(r() * hlen)] = Math.floor(r() * 256); return buf;
    case 1: return buf.subarray(0, Math.floor(r() * buf.length));
    case 2: { const nums = [...header.matchAll(/\\d+/g)], m = pick(r, nums);
      return withHeader(header.slice(0, m.index) + pick(r, ['0', '1', '2147483648', '9007199254740993', '4294967297', String(Math.floor(r() * 1e6))]) + header.slice(m.index + m[0].length)); }
    case 3: buf.writeBigUInt64LE(BigInt(pick(r, [0, 1, hlen - 1, hlen + 1, buf.length, 2 ** 40])), 0); return buf;
    case 4: { const c = JSON.parse(JSON.stringify(config)), keys = Object.keys(c);
      c[pick(r, keys)] = pick(r, [0, -1, 1, 3, 7, 1e9, 2 ** 31, 0.5, 'x', null, [], {}, true]);
      if (r() < 0.3) delete c[pick(r, keys)];
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c)); return buf; }
    case 5: { const [from, to] = pick(r, [['"BF16"', '"F16"'], ['"BF16"', '"I8"'], ['"BF16"', '"F64"'], ['"shape":[', '"shape":[1,'], ['"shape":[', '"shape":[0,']]);
      const at = []; for (let i = header.indexOf(from); i >= 0; i = header.indexOf(from, i + 1)) at.push(i);
      const i = pick(r, at); return withHeader(header.slice(0, i) + to + header.slice(i + from.length)); }
    default: for (let i = 0; i < 8; i++) { const o = 8 + hlen + 2 * Math.floor(r() * (buf.length - 8 - hlen) / 2); buf[o] = 0xff; buf[o + 1] = 0xff; } return buf; // BF16 NaNs
  }
}
const out = { loaded: 0, refused: 0, notError: 0, unnamed: [], forwardFailed: 0, forwardNotError: 0 };
(async () => {
  for (let seed = first; seed < first + count; seed++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdllm-fuzz-'));
    for (const f of files) fs.copyFileSync(path.join(base, f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, st), mutate(seed, dir));
    let model = null;
    try {
      model = await addon.loadModel(dir, { threads: 1, weights: seed % 2 ? 'q8' : 'file' });
      out.loaded++;
    } catch (e) {
      out.refused++;
      if (!(e instanceof Error)) out.notError++;
      else if (!/config\\.json|\\.safetensors|generation_config/.test(e.message)) out.unnamed.push(seed + ': ' + e.message);
    }
    if (model) {
      const s = model.createSession(16);
      const n = 6, ids = Int32Array.from({ length: n }, (_, i) => (i * 5) % 16);
      try {
        const res = await s.forward({ tokens: ids, positions: Int32Array.from({ length: n }, (_, i) => i), predictRows: Int32Array.of(0, 3, 5),
          cacheAttend: 0, attendSelf: true, confidence: seed % 4, temperature: 0, seed: 1, noiseCounter: 0, returnLogits: true });
        if (res.tokenIds.length !== 3 || res.confidences.length !== 3) throw new Error('bad result shape');
      } catch (e) {
        out.forwardFailed++;
        if (!(e instanceof Error)) out.forwardNotError++;
      }
      s.dispose();
      model.dispose();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
})();
`;

describe.each([
  ['LLaDA', writeTinyLlada],
  ['Dream', writeTinyDream],
])('%s checkpoint mutants', (_name, write) => {
  let base: string;
  beforeAll(() => {
    base = makeTempDir('sdllm-fuzz-base-');
    write(base, { dtype: 'BF16', seed: 1 });
  });
  afterAll(() => removeDir(base));

  test(`${MUTANTS} seeded mutants: each loads and runs a forward, or is refused naming its file`, () => {
    const r = spawnSync(process.execPath, ['-e', child, base, '0', String(MUTANTS)], {
      cwd: path.resolve(__dirname, '..'), encoding: 'utf8', timeout: 100000,
    });
    expect(r.signal).toBeNull(); // a native crash (SIGSEGV, SIGABRT) or the timeout
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.loaded + out.refused).toBe(MUTANTS);
    expect(out.refused).toBeGreaterThan(MUTANTS / 2); // the mutations are mostly fatal ones
    expect(out.loaded).toBeGreaterThan(0); // NaN weights and harmless config values load
    expect(out.notError).toBe(0);
    expect(out.unnamed).toEqual([]);
    expect(out.forwardNotError).toBe(0);
  });
});
