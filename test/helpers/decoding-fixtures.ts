// A pool of tiny LLaDA decoding checkpoints for the strategy tests: each fixture is a
// temp directory with the checkpoint, the engine's model on it and the literal float64
// reference; all are disposed after the suite.
import { loadModel } from '../../lib';
import type { DiffusionModel } from '../../types';
import { makeTempDir, removeDir } from './checkpoint';
import { writeDecodingLlada } from './fixtures';
import { RefLLaDA } from './reference/llada';

export interface LladaFixture {
  dir: string;
  model: DiffusionModel;
  ref: RefLLaDA;
}

/** The prompt ids the strategy tests decode. */
export const PROMPT = [3, 17, 5, 29, 8, 11, 40];

/** A fixture maker whose fixtures are disposed in the calling suite's afterAll. */
export function lladaFixturePool(): (opts: Parameters<typeof writeDecodingLlada>[1]) => Promise<LladaFixture> {
  const fixtures: LladaFixture[] = [];
  afterAll(() => {
    for (const f of fixtures) {
      f.model.dispose();
      removeDir(f.dir);
    }
  });
  return async (opts) => {
    const dir = makeTempDir();
    writeDecodingLlada(dir, opts);
    const f = { dir, model: await loadModel(dir, { threads: 2 }), ref: new RefLLaDA(dir) };
    fixtures.push(f);
    return f;
  };
}
