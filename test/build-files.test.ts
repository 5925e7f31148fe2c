// binding.gyp (plain node-gyp) must build the same sources as CMakeLists.txt's globs.
import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

function cppSources(): string[] {
  const dirs = ['cpp', 'cpp/ops', 'cpp/napi'];
  return dirs.flatMap((d) =>
    fs.readdirSync(path.join(root, d)).filter((f) => f.endsWith('.cpp')).map((f) => `${d}/${f}`),
  ).sort();
}

test('binding.gyp lists every C++ source of the addon', () => {
  const text = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/^#.*$/gm, '');
  type Target = { target_name: string; sources: string[] };
  type Conditional = [string, { targets?: Target[] }, { targets?: Target[] }?];
  const gyp = JSON.parse(text) as { targets: Target[]; conditions?: Conditional[] };
  // Targets declared under a condition (the x86 kernel library) count too.
  const targets = [...gyp.targets, ...(gyp.conditions ?? []).flatMap((c) => [...(c[1].targets ?? []), ...(c[2]?.targets ?? [])])];
  const listed = targets.flatMap((t) => t.sources).sort();
  expect(listed).toEqual(cppSources());
  // The x86 kernel files are built only in the x86 library, never in the portable target.
  const x86 = targets.find((t) => t.target_name === 'sdllm_avx2')!;
  expect(x86.sources.every((f) => /_avx(2|512)\.cpp$/.test(f))).toBe(true);
  expect(cppSources().filter((f) => /_avx(2|512)\.cpp$/.test(f))).toEqual([...x86.sources].sort());
});
