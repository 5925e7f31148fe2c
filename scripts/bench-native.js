#!/usr/bin/env node
// Builds and runs one native benchmark of bench/native/ (CMake target = program name):
//   node scripts/bench-native.js bench_gemm [args]       (npm run bench:gemm: op_gemm beside
//                                                         OpenBLAS's sgemm, dlopen'ed, only here)
//   node scripts/bench-native.js bench_attention [args]  (npm run bench:attention)
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');

const known = ['bench_gemm', 'bench_attention', 'bench_kernels', 'bench_weights_cold'];
const target = process.argv[2];
if (!known.includes(target)) {
  console.error(`usage: node scripts/bench-native.js ${known.join('|')} [args]`);
  process.exit(2);
}
const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build', 'bench');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
run('cmake', ['-S', root, '-B', out, '-DCMAKE_BUILD_TYPE=Release', '-DSDLLM_BUILD_BENCH=ON', '-DSDLLM_CUDA=OFF']);
run('cmake', ['--build', out, '-j', '2', '--target', target]);
run(path.join(out, 'bench', 'native', target), process.argv.slice(3));
