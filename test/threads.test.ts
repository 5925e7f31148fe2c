// The CPU backend's default thread count (cpp/cpu_budget.h): the usable physical cores
// within the cgroup quota, with the reason reported; a process pinned to one CPU
// (taskset) gets one thread, and the threads option and SDLLM_THREADS still decide
// when given. A pool that takes every usable core is placed one thread a core, reported
// too, unless SDLLM_PIN=0. Child processes, since the pool is sized once per process.
import { execFileSync } from 'child_process';
import { runtimeInfo } from '../lib';
import { addonPath } from '../lib/native';

function infoIn(env: NodeJS.ProcessEnv, prefix: string[] = [], threads?: number): { threads: number; threadsReason: string } {
  const script = `const b = require(${JSON.stringify(addonPath())});` +
    (threads === undefined ? '' : `b.loadModel('/nonexistent', { threads: ${threads} }).catch(() => {});`) +
    'console.log(JSON.stringify(b.runtimeInfo()));';
  const [cmd, ...args] = [...prefix, process.execPath, '-e', script];
  return JSON.parse(execFileSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8' }));
}

const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

test('runtimeInfo reports the threads and what chose them', () => {
  const info = runtimeInfo();
  expect(info.threads).toBeGreaterThanOrEqual(1);
  expect(typeof info.threadsReason).toBe('string');
  expect(info.threadsReason.length).toBeGreaterThan(0);
});

test('the default: physical cores this process may use, the reason says so', () => {
  const info = infoIn({ SDLLM_THREADS: '' });
  expect(info.threads).toBeGreaterThanOrEqual(1);
  expect(info.threadsReason).toMatch(/^default: \d+ usable logical CPUs/);
});

(hasTaskset && process.platform === 'linux' ? test : test.skip)('a process pinned to one CPU gets one thread', () => {
  const info = infoIn({ SDLLM_THREADS: '' }, ['taskset', '-c', '0']);
  expect(info.threads).toBe(1);
  expect(info.threadsReason).toMatch(/^default: 1 usable logical CPUs/);
});

const PLACED = /; each thread on its own core \(CPUs (\d+(, )?)+; SDLLM_PIN=0 leaves them to the kernel\)$/;

test('SDLLM_THREADS and the threads option decide when given', () => {
  const env = infoIn({ SDLLM_THREADS: '3' });
  expect(env.threads).toBe(3);
  expect(env.threadsReason).toMatch(/^SDLLM_THREADS(;|$)/);
  const option = infoIn({ SDLLM_THREADS: '' }, [], 2);
  expect(option.threads).toBe(2);
  expect(option.threadsReason).toMatch(/^the threads option(;|$)/);
});

(process.platform === 'linux' ? test : test.skip)('the default pool takes a core a thread, and SDLLM_PIN=0 leaves the threads to the kernel', () => {
  const info = infoIn({ SDLLM_THREADS: '', SDLLM_PIN: '' });
  if (info.threads > 1 && !info.threadsReason.includes('quota')) {
    expect(info.threadsReason).toMatch(PLACED);
    const cpus = /CPUs ([\d, ]+);/.exec(info.threadsReason)![1].split(', ').map(Number);
    expect(new Set(cpus).size).toBe(info.threads);
  }
  expect(infoIn({ SDLLM_THREADS: '', SDLLM_PIN: '0' }).threadsReason).not.toMatch(/own core/);
  // More threads than cores: not placed.
  expect(infoIn({ SDLLM_THREADS: '' }, [], 64).threadsReason).toBe('the threads option');
  if (hasTaskset) expect(infoIn({ SDLLM_THREADS: '' }, ['taskset', '-c', '0']).threadsReason).not.toMatch(/own core/);
});
