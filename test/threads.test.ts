// The CPU backend's default thread count (cpp/cpu_budget.h): the usable physical cores
// within the cgroup quota, with the reason reported; a process pinned to one CPU
// (taskset) gets one thread, and the threads option and SDLLM_THREADS still decide
// when given. Child processes, since the pool is sized once per process.
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

test('SDLLM_THREADS and the threads option decide when given', () => {
  expect(infoIn({ SDLLM_THREADS: '3' })).toMatchObject({ threads: 3, threadsReason: 'SDLLM_THREADS' });
  expect(infoIn({ SDLLM_THREADS: '' }, [], 2)).toMatchObject({ threads: 2, threadsReason: 'the threads option' });
});
