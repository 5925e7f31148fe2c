// The on-disk cache of vanilla's answers used by `npm run bench`. Vanilla (one token per
// step, greedy) is deterministic and by far the slowest row (~5.8 s per problem at gen 256,
// ~28 s at gen 512 on 2 CPU cores), so its answers are computed once per model and reused.
// One JSON file per vanillaCacheKey() (model content hash, backend, task, gen length,
// options); inside, one entry per problemKey() (id and prompt). Written after every problem
// (to a temporary file, then renamed), merged with what is on disk, so an interrupted run
// resumes and two runs do not lose each other's entries.
import * as fs from 'fs';
import * as path from 'path';
import { CACHE_VERSION, problemKey, vanillaCacheKey, VanillaCacheKeyInput } from './stats';

export interface CachedAnswer {
  id: string;
  /** The generated text up to the first EOS (what the scorer reads). */
  text: string;
  nfe: number;
  /** Seconds of the generate() call when it was computed (speed is re-measured; see run.ts). */
  seconds: number;
  tokensUntilEos: number;
  /** ISO time and git commit of the run that computed it. */
  at: string;
  commit: string;
}

interface CacheFile {
  version: number;
  key: string;
  input: VanillaCacheKeyInput;
  entries: Record<string, CachedAnswer>;
}

export class VanillaCache {
  readonly key: string;
  readonly file: string;
  private entries: Record<string, CachedAnswer> = {};

  constructor(readonly dir: string, private readonly input: VanillaCacheKeyInput) {
    this.key = vanillaCacheKey(input);
    this.file = path.join(dir, `vanilla-${input.task}-${input.genLength}-${this.key}.json`);
    this.entries = this.readEntries();
  }

  private readEntries(): Record<string, CachedAnswer> {
    try {
      const f = JSON.parse(fs.readFileSync(this.file, 'utf8')) as CacheFile;
      if (f.version === CACHE_VERSION && f.key === this.key && f.entries && typeof f.entries === 'object') return f.entries;
    } catch { /* absent or unreadable: start empty */ }
    return {};
  }

  get size(): number {
    return Object.keys(this.entries).length;
  }

  get(item: { id: string; prompt: string }): CachedAnswer | undefined {
    return this.entries[problemKey(item)];
  }

  /** Stores one answer and writes the file (merged with entries other runs wrote meanwhile). */
  put(item: { id: string; prompt: string }, answer: CachedAnswer): void {
    const k = problemKey(item);
    this.entries = { ...this.readEntries(), ...this.entries, [k]: answer };
    fs.mkdirSync(this.dir, { recursive: true });
    const body: CacheFile = { version: CACHE_VERSION, key: this.key, input: this.input, entries: this.entries };
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(body, null, 1));
    fs.renameSync(tmp, this.file);
  }
}
