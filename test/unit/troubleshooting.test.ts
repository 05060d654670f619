/**
 * docs/troubleshooting.md starts from the error codes: every WEFT_ERR_* code the source defines or
 * raises has a section there, headed with the HTTP status the code maps to, and a row in its
 * summary table; the page names no code that does not exist.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, HTTP_STATUS_BY_CODE } from '../../lattice/index.ts';
import { ROOT } from '../helpers/stack.ts';

const doc = readFileSync(join(ROOT, 'docs', 'troubleshooting.md'), 'utf8');
const SOURCE_DIRS = ['bin', 'lattice', 'host', 'providers', 'scheduler', 'actors'];
const CODE_RE = /WEFT_ERR_[A-Z][A-Z0-9_]*/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'dist' ? [] : sourceFiles(path);
    return /\.(ts|mjs|c|h)$/.test(name) ? [path] : [];
  });
}

/** Every code written anywhere in the source, and every code of the catalogue. */
function codesInSource(): Set<string> {
  const codes = new Set<string>(Object.values(ErrorCode));
  for (const dir of SOURCE_DIRS) {
    for (const file of sourceFiles(join(ROOT, dir))) {
      for (const m of readFileSync(file, 'utf8').matchAll(CODE_RE)) codes.add(m[0]);
    }
  }
  return codes;
}

const sections = new Map(
  [...doc.matchAll(/^### `(WEFT_ERR_[A-Z0-9_]+)` \((\d{3})\)$/gm)].map((m) => [
    m[1]!,
    Number(m[2]),
  ]),
);

describe('docs/troubleshooting.md', () => {
  it('has a section for every code in the source, with its HTTP status', () => {
    const codes = [...codesInSource()].toSorted();
    expect(codes.length).toBeGreaterThanOrEqual(28);
    expect(codes.filter((c) => !sections.has(c))).toEqual([]);
    for (const code of codes) {
      const status = HTTP_STATUS_BY_CODE[code as ErrorCode];
      expect(status, `${code} has a status in lattice/errors.ts`).toBeTypeOf('number');
      expect(sections.get(code), code).toBe(status);
    }
  });

  it('says what each code means and what to do', () => {
    const bodies = doc.split(/^### /m).slice(1);
    for (const body of bodies) {
      const code = body.slice(1, body.indexOf('`', 1));
      expect(body, code).toContain('**Means:**');
      expect(body, code).toContain('**What to do:**');
    }
  });

  it('lists every code in its summary table, linked to its section', () => {
    for (const [code, status] of sections) {
      const row = doc.split('\n').find((l) => l.startsWith(`| [\`${code}\`]`));
      expect(row, code).toBeDefined();
      expect(row).toContain(`(#${code.toLowerCase()}-${status})`);
      expect(row).toMatch(new RegExp(`\\|\\s*${status}\\s*\\|`));
    }
  });

  it('names no code that does not exist', () => {
    const known = codesInSource();
    const named = new Set([...doc.matchAll(CODE_RE)].map((m) => m[0]));
    expect([...named].filter((c) => !known.has(c))).toEqual([]);
  });
});
