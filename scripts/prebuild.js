#!/usr/bin/env node
// `npm run prebuild`: prebuilds/<platform>-<arch>/ with the N-API addon (one binary for
// every Node >= 18, tagged napi, built by node-gyp from binding.gyp through prebuildify)
// and, where nvcc is found on linux-x64, the CUDA backend library (CUDA runtime linked
// statically, sm_80/86/89/90 + PTX) built by CMake, copied in beside the addon with its
// sdllm_cuda.json (the CUDA runtime version it needs the driver to support).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const run = (cmd, args, env) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
const hasNvcc = spawnSync('nvcc', ['--version'], { stdio: 'ignore' }).status === 0;

// Fresh folders outside build/: prebuildify's `node-gyp rebuild` deletes build/ before it
// compiles, and a fixed name would clash between checkouts (CMake caches its source dir).
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sdllm-prebuild-'));
const artifacts = path.join(scratch, 'artifacts');
fs.mkdirSync(artifacts);
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

if (hasNvcc && process.platform === 'linux' && process.arch === 'x64' && process.env.SDLLM_PREBUILD_CUDA !== '0') {
  const out = path.join(scratch, 'cuda');
  run('cmake', ['-S', root, '-B', out, '-DCMAKE_BUILD_TYPE=Release', '-DSDLLM_CUDA=ON', '-DSDLLM_WARNINGS_AS_ERRORS=ON']);
  run('cmake', ['--build', out, '-j', '2', '--target', 'sdllm_cuda']);
  const lib = ['cuda/libsdllm_cuda.so', 'libsdllm_cuda.so', 'Release/libsdllm_cuda.so']
    .map((p) => path.join(out, p)).find((p) => fs.existsSync(p));
  if (!lib) throw new Error(`prebuild: libsdllm_cuda.so not found under ${out}`);
  fs.copyFileSync(lib, path.join(artifacts, 'libsdllm_cuda.so'));
  run('strip', ['--strip-unneeded', path.join(artifacts, 'libsdllm_cuda.so')]);
  // The CUDA runtime version it was built with (cuda/CMakeLists.txt), which lib/backend.ts
  // compares with the driver's before loading it.
  const info = path.join(path.dirname(lib), 'sdllm_cuda.json');
  if (!fs.existsSync(info)) throw new Error(`prebuild: ${info} (written by cuda/CMakeLists.txt) not found`);
  fs.copyFileSync(info, path.join(artifacts, 'sdllm_cuda.json'));
} else {
  console.log('prebuild: no nvcc (or not linux-x64): the CUDA backend library is not included');
}

const prebuildify = path.join(path.dirname(require.resolve('prebuildify/package.json')), 'bin.js');
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [path.dirname(process.execPath), ...module.paths, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm')] });
run(process.execPath, [prebuildify, '--napi', '--strip', '--artifacts', artifacts], { PREBUILD_NODE_GYP: nodeGyp });
for (const dir of fs.readdirSync(path.join(root, 'prebuilds'))) {
  for (const f of fs.readdirSync(path.join(root, 'prebuilds', dir))) {
    const size = fs.statSync(path.join(root, 'prebuilds', dir, f)).size;
    console.log(`prebuilds/${dir}/${f}: ${(size / 1e6).toFixed(2)} MB`);
  }
}
