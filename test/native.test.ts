// Runs every native test executable built by `npm run build:native-tests`.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const dir = path.resolve(__dirname, '..', 'build', 'native-tests', 'test', 'native');

function findExecutables(d: string): string[] {
  if (!fs.existsSync(d)) return [];
  const found: string[] = [];
  for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
    const full = path.join(d, entry.name);
    if (entry.isDirectory()) found.push(...findExecutables(full));
    else if (/^test_\w+$/.test(entry.name) && (fs.statSync(full).mode & 0o111) !== 0) found.push(full);
  }
  return found.sort();
}

const executables = findExecutables(dir);

test('native test executables were built', () => {
  expect(executables.length).toBeGreaterThan(0);
});

describe.each(executables.map((e) => [path.relative(dir, e), e]))('%s', (_name, exe) => {
  test('exits 0', () => {
    const out = execFileSync(exe, [], { encoding: 'utf8', timeout: 600000 });
    process.stdout.write(out);
  });
});
