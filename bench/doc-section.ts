// Sections of a generated document that another benchmark owns: docs/BENCHMARKS.md is
// written whole by `npm run bench`, while `npm run bench:serve` writes its own section into
// it between two markers; each writer replaces only what it owns and keeps the other's.
import { execSync } from 'child_process';

const begin = (name: string) => `<!-- ${name}:begin -->`;
const end = (name: string) => `<!-- ${name}:end -->`;

/** The section `name` of `doc` with its markers, or null when the document has none (or a broken one). */
export function extractSection(doc: string, name: string): string | null {
  const at = doc.indexOf(begin(name));
  const stop = doc.indexOf(end(name));
  if (at < 0 || stop < at) return null;
  return doc.slice(at, stop + end(name).length);
}

/** `doc` with section `name` replaced by `body` (between fresh markers), or with it appended when absent. */
export function spliceSection(doc: string, name: string, body: string): string {
  const section = `${begin(name)}\n${body.trim()}\n${end(name)}`;
  const old = extractSection(doc, name);
  if (old !== null) return doc.replace(old, () => section);
  return `${doc.replace(/\s*$/, '')}\n\n${section}\n`;
}

/** The checked-out commit (short), or 'unknown' outside a git checkout. */
export function gitCommit(cwd: string): string {
  try {
    return execSync('git rev-parse --short HEAD', { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}
