/**
 * docs/manifest-reference.md is generated from the manifest's JSON Schema: the committed page is
 * exactly what `node lattice/manifest/write-reference.ts` writes, and it names every field the
 * schema has, with its default.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MANIFEST_SCHEMA } from '../../lattice/index.ts';
import {
  REFERENCE_FILE,
  headingAnchor,
  manifestReference,
} from '../../lattice/manifest/write-reference.ts';

type Schema = Record<string, unknown>;

/** Every property name in the schema, with its default where it has one. */
function fields(s: unknown, out: Map<string, unknown> = new Map()): Map<string, unknown> {
  if (Array.isArray(s)) for (const x of s) fields(x, out);
  else if (typeof s === 'object' && s !== null) {
    const props = (s as Schema)['properties'] as Record<string, Schema> | undefined;
    for (const [name, p] of Object.entries(props ?? {})) out.set(name, p['default']);
    for (const v of Object.values(s)) fields(v, out);
  }
  return out;
}

describe('docs/manifest-reference.md', () => {
  it('is what lattice/manifest/write-reference.ts generates from the schema', async () => {
    expect(readFileSync(REFERENCE_FILE, 'utf8')).toBe(await manifestReference());
  });

  it('has a row for every field of the schema, with its default', async () => {
    const page = await manifestReference();
    const all = fields(MANIFEST_SCHEMA);
    expect(all.size).toBeGreaterThan(30);
    for (const [name, fallback] of all) {
      const row = page.split('\n').find((l) => l.startsWith(`| \`${name}\` `));
      expect(row, name).toBeDefined();
      if (fallback !== undefined)
        expect(row, name).toContain(`\`${JSON.stringify(fallback).replace(/^"|"$/g, '')}\``);
    }
  });

  it('links each nested object to its own section', async () => {
    const page = await manifestReference();
    const anchors = new Set([...page.matchAll(/^## (.+)$/gm)].map((m) => headingAnchor(m[1]!)));
    const links = [...page.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(5);
    expect(links.filter((l) => !anchors.has(l))).toEqual([]);
  });
});
