// The statistics behind the accuracy figures of `npm run bench`, and the key of its cache
// of vanilla answers. Pure functions (the model hash reads files, nothing else here does);
// tested in test/bench-report.test.ts.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** Two-sided 95% normal quantile. */
export const Z95 = 1.959963984540054;

/** Problems per cell a figure of record needs (issue 20). */
export const RECORD_SAMPLES = 200;

export interface Interval {
  low: number;
  high: number;
}

/**
 * Wilson score interval for a binomial proportion k/n at normal quantile z (95% by default).
 * Unlike the Wald interval it stays inside [0, 1] and is not empty at k = 0 or k = n.
 */
export function wilsonInterval(k: number, n: number, z = Z95): Interval {
  if (!(Number.isInteger(k) && Number.isInteger(n) && n >= 1 && k >= 0 && k <= n)) {
    throw new RangeError(`wilsonInterval: expected integers 0 <= k <= n, n >= 1, got k=${k} n=${n}`);
  }
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // Clamp the rounding error at the ends (k = 0 gives low = 0 exactly in real arithmetic).
  return { low: k === 0 ? 0 : Math.max(0, centre - half), high: k === n ? 1 : Math.min(1, centre + half) };
}

/**
 * Exact two-sided binomial test of k successes in n trials against p = 1/2:
 * P(X <= min(k, n-k)) + P(X >= max(k, n-k)), capped at 1 (the usual doubling of the
 * smaller tail, which is exact for p = 1/2 because the distribution is symmetric).
 * n = 0 gives 1. Summed in log space so that any n is safe.
 */
export function binomialTwoSidedP(k: number, n: number): number {
  if (!(Number.isInteger(k) && Number.isInteger(n) && n >= 0 && k >= 0 && k <= n)) {
    throw new RangeError(`binomialTwoSidedP: expected integers 0 <= k <= n, got k=${k} n=${n}`);
  }
  if (n === 0) return 1;
  const m = Math.min(k, n - k);
  if (2 * m === n) return 1;
  let logC = 0; // log C(n, 0)
  const logHalfN = -n * Math.LN2;
  let tail = 0;
  for (let i = 0; i <= m; i++) {
    tail += Math.exp(logC + logHalfN);
    logC += Math.log(n - i) - Math.log(i + 1);
  }
  return Math.min(1, 2 * tail);
}

export interface PairedComparison {
  /** Problems the strategy solves and vanilla does not. */
  gains: number;
  /** Problems vanilla solves and the strategy does not. */
  losses: number;
  /** Exact McNemar p-value (two-sided binomial test of gains among gains + losses). */
  p: number;
  /** p < alpha (0.05): the cell is marked in the table. */
  significant: boolean;
  /** Sign of the difference when significant, else null. */
  direction: 'better' | 'worse' | null;
}

/**
 * Exact McNemar test of a strategy against vanilla on the same problems, in the same order.
 * Only the discordant problems carry information about the difference in accuracy; under
 * "same accuracy" each of them is a gain or a loss with probability 1/2.
 */
export function compareWithVanilla(strategyCorrect: readonly boolean[], vanillaCorrect: readonly boolean[], alpha = 0.05): PairedComparison {
  if (strategyCorrect.length !== vanillaCorrect.length) {
    throw new RangeError(`compareWithVanilla: ${strategyCorrect.length} results against ${vanillaCorrect.length} of vanilla; the problems must be the same`);
  }
  let gains = 0, losses = 0;
  for (let i = 0; i < strategyCorrect.length; i++) {
    if (strategyCorrect[i] && !vanillaCorrect[i]) gains++;
    else if (!strategyCorrect[i] && vanillaCorrect[i]) losses++;
  }
  const p = binomialTwoSidedP(gains, gains + losses);
  const significant = p < alpha;
  return { gains, losses, p, significant, direction: significant ? (gains > losses ? 'better' : 'worse') : null };
}

/** JSON with object keys sorted at every level and undefined members dropped: a stable hash input. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} has no JSON form`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** The files of a checkpoint that decide its outputs: weights, config, tokenizer, chat template. */
export function modelFiles(dir: string): string[] {
  const names = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors') || f.endsWith('.json')).sort();
  for (const required of ['config.json', 'tokenizer.json']) {
    if (!names.includes(required)) throw new Error(`modelHash: ${dir} has no ${required}`);
  }
  return names;
}

/**
 * Content hash of a checkpoint: sha256 over (name, sha256 of the contents) of every
 * *.safetensors and *.json file of the folder (model.safetensors or its shards and index,
 * config.json, tokenizer.json, tokenizer_config.json with the chat template,
 * generation_config.json), sorted by name.
 */
export function modelHash(dir: string): string {
  const parts = modelFiles(dir).map((name) => {
    const h = createHash('sha256');
    const fd = fs.openSync(path.join(dir, name), 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 22);
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
    return [name, h.digest('hex')];
  });
  return sha256(canonicalJson(parts));
}

/** Bump when the cached record or the meaning of a key changes. */
export const CACHE_VERSION = 1;

export interface VanillaCacheKeyInput {
  /** modelHash() of the checkpoint. */
  modelHash: string;
  /** 'cpu' or 'cuda': their arithmetic differs, so can their answers. */
  backend: string;
  task: string;
  genLength: number;
  /** The decoding options as passed to generate() (genLength and blockLength included). */
  options: object;
}

/**
 * Name of one vanilla cache file: everything that decides vanilla's (deterministic,
 * greedy) output except the problem, which is keyed inside the file by problemKey().
 */
export function vanillaCacheKey(k: VanillaCacheKeyInput): string {
  return sha256(canonicalJson({ v: CACHE_VERSION, model: k.modelHash, backend: k.backend, task: k.task, genLength: k.genLength, options: k.options })).slice(0, 32);
}

/** Key of one problem inside a cache file: its id and the exact prompt text. */
export function problemKey(item: { id: string; prompt: string }): string {
  return `${item.id}:${sha256(item.prompt).slice(0, 16)}`;
}
