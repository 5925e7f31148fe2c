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

/**
 * What to tell a user whose install has no addon: no prebuild for the platform, and no
 * local build because the install script did not run (`npm install --ignore-scripts`, an
 * npm that only runs the install scripts a project allows) or failed. node-gyp-build's own
 * message (`cause`) lists what it looked for, not what to do.
 */
export function missingAddonError(root: string, cause: unknown): Error {
  const detail = cause instanceof Error ? cause.message.trim() : String(cause);
  return new Error(
    [
      `streaming-dllm: no native addon for ${process.platform}-${process.arch} (Node ${process.version}):`,
      `  no prebuild in ${path.join(root, 'prebuilds')} matches this platform, and there is no local build in ${path.join(root, 'build')}.`,
      "  The package's install script builds it from source; if npm skipped the script or it failed, run",
      '  `npm rebuild streaming-dllm` (needs a C++17 compiler and CMake >= 3.18; Debian/Ubuntu: apt-get install g++ cmake).',
      `  node-gyp-build: ${detail.split('\n')[0]}`,
    ].join('\n'),
    { cause },
  );
}

/** The addon file node-gyp-build picks: a matching prebuild, else the local build. */
export function addonPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  const root = packageRoot();
  try {
    return nodeGypBuild.resolve(root);
  } catch (e) {
    throw missingAddonError(root, e);
  }
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
