// scripts/gpu-check.sh, the prepared GPU check (docs/CUDA_TESTING.md, "The GPU check"):
// its CPU-side parts, so that it does not rot before a GPU runs it. --emulate builds the
// harnesses with the emulator stand-ins (in build/native-tests when `npm run
// build:native-tests` has configured it, so the build is incremental) and runs them;
// the results file must have every section. Bad arguments exit 2 with a message.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
const script = path.join(root, 'scripts', 'gpu-check.sh');

function run(args: string[], timeout = 60000) {
  return spawnSync('bash', [script, ...args], { cwd: root, encoding: 'utf8', timeout });
}

describe('scripts/gpu-check.sh', () => {
  test('--help documents every option', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    for (const opt of ['--out', '--emulate', '--build-dir', '--jobs', '--budget', '--nvcc', '--cublas-dir', '--bandwidth', '--filter'])
      expect(r.stdout).toContain(opt);
    // Every option the parser accepts is in the help text.
    const text = fs.readFileSync(script, 'utf8');
    const parsed = [...text.matchAll(/^\s+(--[a-z-]+)\)/gm)].map((m) => m[1]);
    expect(parsed.length).toBeGreaterThan(5);
    for (const opt of parsed) expect(r.stdout).toContain(opt);
  });

  test.each([
    [['--bogus'], /unknown argument '--bogus'/],
    [['--out'], /--out needs a value/],
    [['--jobs', '0'], /--jobs needs a positive integer/],
    [['--budget', 'soon'], /--budget needs a positive number/],
    [['--bandwidth', 'fast'], /--bandwidth needs a number/],
    [['--out=x.md'], /write '--out VALUE'/],
    [['--nvcc', '/nonexistent/nvcc'], /not an executable/],
    [['--emulate', '--bandwidth', '3.35'], /not --emulate/],
  ])('bad arguments %j exit 2', (args, message) => {
    const r = run(args as string[]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message as RegExp);
  });

  test('--emulate builds and runs the harnesses and writes the results file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-check-'));
    const out = path.join(dir, 'results.md');
    try {
      const r = run(['--emulate', '--out', out], 400000);
      const text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
      if (r.status !== 0) process.stdout.write(`${r.stdout}\n${r.stderr}\n${text}`);
      expect(r.status).toBe(0);
      for (const heading of [
        '# GPU check results',
        '## Summary',
        '## Build',
        '## (a) CUDA backend vs CPU Session',
        '## (b) kernel benchmark',
        '## (c) forwards at LLaDA-8B shapes',
      ])
        expect(text).toContain(heading);
      expect(text).toMatch(/^- mode: emulate/m);
      expect(text).toMatch(/^- device: /m);
      expect(text).toMatch(/^- driver: /m);
      expect(text).toMatch(/^- toolkit: /m);
      expect(text).toMatch(/\| Build \| PASS \|/);
      expect(text).toMatch(/\| \(a\) CUDA backend vs CPU Session, exact GEMM mode \(token-exact\) \| PASS \([1-9]\d* passed, 0 failed\) \|/);
      expect(text).toMatch(/\| \(a\) 16-bit GEMM mode vs CPU Session \(agreement\) \| [1-9]\d* passed, 0 failed; ids equal to the CPU's \d+\/\d+ /);
      expect(text).toMatch(/\| \(b\) kernel benchmark[^|]*\| SKIPPED/);
      expect(text).toMatch(/\| \(c\) forwards at LLaDA-8B shapes, random weights \| PASS \(\d+ cases, 0 failed\) \|/);
      expect(text).toMatch(/^Overall: PASS/m);
      // The harnesses' own output is in the file.
      expect(text).toContain('cuda-forward exact: ');
      expect(text).toMatch(/^exact\s+step0\s/m);
      expect(text).toMatch(/^16bit\s+cached\s/m);
      expect(text).toMatch(/^16bit\s+batch8\s/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 420000);
});
