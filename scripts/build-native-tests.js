#!/usr/bin/env node
// Configures and builds the native test executables (test/native) in build/native-tests.
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');
const os = require('os');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build', 'native-tests');
const jobs = String(Math.max(1, os.cpus().length));
const extra = process.env.CI ? ['-DSDLLM_WARNINGS_AS_ERRORS=ON'] : [];
const run = (args) => execFileSync('cmake', args, { cwd: root, stdio: 'inherit' });
run(['-S', root, '-B', out, '-DCMAKE_BUILD_TYPE=Release', '-DSDLLM_BUILD_TESTS=ON', '-DSDLLM_CUDA=OFF', ...extra]);
run(['--build', out, '-j', jobs]);
