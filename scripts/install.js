#!/usr/bin/env node
// npm `install` hook: use a matching prebuild (prebuilds/<platform>-<arch>/) or an
// existing local build when node-gyp-build can load one; otherwise build from source
// with cmake-js. On failure, print one message a user can act on.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');

function hasLoadableBinary() {
  try {
    require('node-gyp-build').resolve(root);
    return true;
  } catch (_) {
    return false;
  }
}

if (process.env.STREAMING_DLLM_FORCE_BUILD !== '1' && hasLoadableBinary()) process.exit(0);

const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
// SDLLM_CUDA=AUTO|ON|OFF chooses the CUDA backend of a source build (default AUTO: built when nvcc is found).
const cudaArg = process.env.SDLLM_CUDA ? [`--CDSDLLM_CUDA=${process.env.SDLLM_CUDA}`] : [];
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--directory', root, ...cudaArg], {
  cwd: root,
  stdio: 'inherit',
});
if (result.status !== 0) {
  console.error(
    [
      '',
      'streaming-dllm: no prebuilt binary matches this platform and the source build failed.',
      `  platform: ${process.platform}-${process.arch}, Node ${process.version} (N-API 8)`,
      '  tried:    prebuilds/ (none matching), then `cmake-js compile` (failed, log above)',
      '  fix:      install a C++17 compiler and CMake >= 3.18 (Debian/Ubuntu: apt-get install g++ cmake),',
      '            or use a platform with prebuilds (linux-x64).',
    ].join('\n'),
  );
  process.exit(result.status || 1);
}
