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
  const gyp = JSON.parse(text) as { targets: { sources: string[] }[] };
  const listed = gyp.targets.flatMap((t) => t.sources).sort();
  expect(listed).toEqual(cppSources());
});
