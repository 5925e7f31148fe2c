// Loads the addon once (a prebuild or the local build, through node-gyp-build) and
// gives native rejections the stack of the JS call that caused them.
import * as fs from 'fs';
import * as path from 'path';
import type { NativeBinding } from '../types/native';

/** The package root: the nearest folder above this file whose package.json is ours. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'streaming-dllm') return dir;
      } catch {
        /* keep walking */
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('streaming-dllm: cannot find the package root');
    dir = parent;
  }
}

/** The addon file node-gyp-build picks: a matching prebuild, else the local build. */
export function addonPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  return nodeGypBuild.resolve(packageRoot());
}

function load(): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(addonPath()) as NativeBinding;
}

export const native: NativeBinding = load();

/**
 * Awaits a native promise; on rejection, replaces the (empty) native stack with the
 * stack captured at `site`, so errors point at the user's call.
 */
export async function withCallSite<T>(promise: Promise<T>, site: Error): Promise<T> {
  try {
    return await promise;
  } catch (e) {
    // Duck-typed: the native Error may come from another realm (vm contexts, jest).
    const err = e as { name?: string; message?: string; stack?: string } | null;
    if (err && typeof err === 'object' && typeof err.message === 'string' && site.stack) {
      const frames = site.stack.split('\n').slice(1).join('\n');
      err.stack = `${err.name ?? 'Error'}: ${err.message}\n${frames}`;
    }
    throw e;
  }
}
