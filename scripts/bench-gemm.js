#!/usr/bin/env node
// Builds and runs the native GEMM benchmark (bench/native/bench_gemm.cpp): op_gemm GFLOP/s
// beside OpenBLAS's sgemm measured in the same run (OpenBLAS is dlopen'ed, only here).
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build', 'bench');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
run('cmake', ['-S', root, '-B', out, '-DCMAKE_BUILD_TYPE=Release', '-DSDLLM_BUILD_BENCH=ON', '-DSDLLM_CUDA=OFF']);
run('cmake', ['--build', out, '-j', '2', '--target', 'bench_gemm']);
run(path.join(out, 'bench', 'native', 'bench_gemm'), process.argv.slice(2));
