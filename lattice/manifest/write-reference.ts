/**
 * Writes `docs/manifest-reference.md`, the field-by-field reference of the application manifest,
 * from its JSON Schema (`MANIFEST_SCHEMA`, schema.ts): every field with its type, whether it is
 * required, its default, its constraints and its description. Run it after changing `schema.ts`:
 * `node lattice/manifest/write-reference.ts`; a unit test fails while the committed page and the
 * schema differ. The output is formatted with the repository's Prettier settings.
 */

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { MANIFEST_SCHEMA } from './schema.ts';

type Schema = { readonly [key: string]: unknown };

interface Row {
  field: string;
  type: string;
  required: boolean;
  fallback: string;
  rule: string;
  description: string;
}

interface Section {
  /** The path of the object the rows are fields of: `spec.actors[].limits`. */
  path: string;
  description: string | undefined;
  rows: Row[];
}

export const REFERENCE_FILE = fileURLToPath(
  new URL('../../docs/manifest-reference.md', import.meta.url),
);

const root = MANIFEST_SCHEMA as Schema;

/** A `$ref` (`#/definitions/x`) resolved against the root schema; other schemas as they are. */
function resolveRef(s: Schema): Schema {
  const ref = s['$ref'];
  if (typeof ref !== 'string') return s;
  const name = ref.replace('#/definitions/', '');
  const defs = root['definitions'] as Record<string, Schema>;
  const target = defs[name];
  if (target === undefined) throw new Error(`manifest schema: unresolved ${ref}`);
  return target;
}

const alternatives = (s: Schema): Schema[] | undefined =>
  ((s['anyOf'] ?? s['oneOf']) as Schema[] | undefined)?.map(resolveRef);

const isObject = (s: Schema): boolean =>
  s['type'] === 'object' && typeof s['properties'] === 'object';

const code = (v: unknown): string => `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;

/**
 * The type of `s` in words: `integer`, `list of string`, `map of string → string`; an object that
 * is one of several alternatives by its one required field: `{ secret: string }`.
 */
function typeOf(input: Schema, alternative = false): string {
  const s = resolveRef(input);
  const alts = alternatives(s);
  if (alts !== undefined) return alts.map((a) => typeOf(a, true)).join(' or ');
  if (s['const'] !== undefined) return code(s['const']);
  if (Array.isArray(s['enum'])) return s['enum'].map(code).join(' or ');
  switch (s['type']) {
    case 'array': {
      const items = resolveRef((s['items'] ?? {}) as Schema);
      return isObject(items) ? 'list of objects' : `list of ${typeOf(items)}`;
    }
    case 'object': {
      if (isObject(s)) {
        const props = Object.keys(s['properties'] as object);
        const required = (s['required'] ?? []) as string[];
        return alternative && props.length === 1 && required.includes(props[0]!)
          ? `{ ${props[0]}: ${typeOf((s['properties'] as Record<string, Schema>)[props[0]!]!)} }`
          : 'object';
      }
      const values = s['additionalProperties'];
      return typeof values === 'object' && values !== null
        ? `map of string → ${alternatives(resolveRef(values as Schema)) === undefined ? typeOf(values as Schema) : `(${typeOf(values as Schema)})`}`
        : 'object';
    }
    default:
      return String(s['type'] ?? 'any');
  }
}

/** Constraints the type does not say: ranges, patterns, lengths, key patterns. */
function ruleOf(input: Schema): string {
  const s = resolveRef(input);
  const parts: string[] = [];
  const min = s['minimum'] as number | undefined;
  const max = s['maximum'] as number | undefined;
  const bounded = max !== undefined && max !== Number.MAX_SAFE_INTEGER;
  if (min !== undefined && bounded) parts.push(`${min}–${max}`);
  else if (min !== undefined) parts.push(`≥ ${min}`);
  else if (bounded) parts.push(`≤ ${max}`);
  if (s['minLength'] === 1) parts.push('not empty');
  if (typeof s['minItems'] === 'number') parts.push(`at least ${s['minItems'] as number}`);
  if (typeof s['pattern'] === 'string') parts.push(`pattern ${code(s['pattern'])}`);
  const keys = (s['propertyNames'] as Schema | undefined)?.['pattern'];
  if (typeof keys === 'string') parts.push(`keys: pattern ${code(keys)}`);
  if (s['type'] === 'array') {
    const items = resolveRef((s['items'] ?? {}) as Schema);
    if (!isObject(items) && alternatives(items) === undefined) {
      const inner = ruleOf(items);
      if (inner !== '') parts.push(`each: ${inner}`);
    }
  }
  return parts.join('; ');
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes. */
export function headingAnchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replaceAll(' ', '-');
}

const heading = (path: string): string => (path === '' ? 'Top level' : `\`${path}\``);

function describe(input: Schema, own: Schema | undefined, below: string | undefined): string {
  const s = resolveRef(input);
  let text = [own?.['description'], s !== own ? s['description'] : undefined]
    .filter((d): d is string => typeof d === 'string')
    .join(' ');
  if (s['const'] !== undefined)
    text = `Always ${code(s['const'])}.${text === '' ? '' : ` ${text}`}`;
  if (below !== undefined) {
    const link = `[\`${below}\`](#${headingAnchor(heading(below))})`;
    text = `${text}${text === '' ? '' : ' '}Fields: ${link}.`;
  }
  const examples = (own?.['examples'] ?? s['examples']) as unknown[] | undefined;
  const shown = examples?.filter((e) => typeof e === 'string').map(code);
  return shown === undefined || shown.length === 0
    ? text
    : `${text}${text === '' ? '' : ' '}Examples: ${shown.join(', ')}.`;
}

/** The sections of `s` (an object with properties) at `path`, and of the objects below it. */
function sectionsOf(s: Schema, path: string, description: string | undefined): Section[] {
  const props = s['properties'] as Record<string, Schema>;
  const required = new Set((s['required'] ?? []) as string[]);
  const section: Section = { path, description, rows: [] };
  const below: Section[] = [];
  for (const [name, own] of Object.entries(props)) {
    const p = resolveRef(own);
    const at = path === '' ? name : `${path}.${name}`;
    const sub = nested(p, at);
    section.rows.push({
      field: name,
      type: typeOf(own),
      required: required.has(name),
      fallback: p['default'] === undefined ? '—' : code(p['default']),
      rule: ruleOf(own),
      description: describe(own, own['$ref'] === undefined ? undefined : own, sub[0]?.path),
    });
    below.push(...sub);
  }
  return [section, ...below];
}

/** Sections for the objects a field holds: itself, its list items, its map values. */
function nested(p: Schema, at: string): Section[] {
  if (isObject(p)) return sectionsOf(p, at, p['description'] as string | undefined);
  if (p['type'] === 'array') {
    const items = resolveRef((p['items'] ?? {}) as Schema);
    if (isObject(items)) return sectionsOf(items, `${at}[]`, items['description'] as string);
  }
  if (p['type'] === 'object' && typeof p['additionalProperties'] === 'object') {
    const values = resolveRef(p['additionalProperties'] as Schema);
    const alts = alternatives(values) ?? [values];
    return alts.flatMap((a) =>
      isObject(a)
        ? sectionsOf(
            a,
            `${at}.<key>${alts.length > 1 ? ` as ${typeOf(a)}` : ''}`,
            values['description'] as string | undefined,
          )
        : [],
    );
  }
  return [];
}

/**
 * A table cell: pipes escaped, no line breaks, and outside code spans `<` escaped, so that
 * `<name>:<tag>` is not taken for HTML.
 */
const cell = (s: string): string =>
  s
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replaceAll('<', '\\<') : part))
    .join('`')
    .replaceAll('|', '\\|')
    .replaceAll('\n', ' ');

function render(sections: Section[]): string {
  const out: string[] = [
    '# Manifest reference',
    '',
    '<!-- Generated by `node lattice/manifest/write-reference.ts` from lattice/manifest/schema.ts: do not edit. -->',
    '',
    'Every field of an application manifest (`apiVersion: weft/v1`, `kind: Application`), generated',
    'from its JSON Schema ([manifest.schema.json](manifest.schema.json)). Fields not listed are',
    'errors. A default is what a field left out means. The checks the schema cannot express (unique',
    'names, overlapping routes, allowlist grammar) and examples are in [manifest.md](manifest.md).',
    '',
  ];
  for (const s of sections) {
    out.push(`## ${heading(s.path)}`, '');
    if (s.description !== undefined) out.push(s.description, '');
    out.push(
      '| field | type | required | default | rule | description |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const r of s.rows) {
      out.push(
        `| \`${r.field}\` | ${cell(r.type)} | ${r.required ? 'yes' : 'no'} | ${cell(r.fallback)} | ${cell(r.rule)} | ${cell(r.description)} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

/** The reference page's text, formatted as the repository formats Markdown. */
export async function manifestReference(): Promise<string> {
  const text = render(sectionsOf(root, '', undefined));
  const options = (await resolveConfig(REFERENCE_FILE)) ?? {};
  return format(text, { ...options, filepath: REFERENCE_FILE });
}

if (import.meta.main) {
  writeFileSync(REFERENCE_FILE, await manifestReference());
  process.stdout.write(`wrote ${REFERENCE_FILE}\n`);
}
