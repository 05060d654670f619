/**
 * Validation in two passes, both reporting every problem rather than the first:
 * 1. the JSON Schema with ajv (`allErrors`), each ajv error reworded for a person: unknown field
 *    with the allowed ones, missing field by name, expected type vs the value given;
 * 2. semantic checks the schema cannot express (unique names, one actor per route, module
 *    references), run on the raw data defensively so they also report when pass 1 failed.
 */

import { AllowEntryError, parseAllowEntry } from '../allowlist.ts';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { hasControlCharacter } from './chars.ts';
import { checkModuleRef } from './module-ref.ts';
import type { PathSegment, Problem } from './problem.ts';
import { formatPath } from './problem.ts';
import { MANIFEST_SCHEMA } from './schema.ts';
import type { Anchor, ManifestSource } from './source.ts';
import {
  ALLOWED_HOST_PATTERN,
  ENV_KEY_PATTERN,
  GUEST_PATH_PATTERN,
  LABEL_KEY_PATTERN,
  NAME_PATTERN,
  RESERVED_ROUTE_PREFIX,
  ROUTE_HOST_PATTERN,
  ROUTE_PATH_PATTERN,
  SECRET_NAME_PATTERN,
  VERSION_PATTERN,
} from './types.ts';

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  // verbose: errors carry the failing data and parent schema (for the allowed field names).
  compiled ??= new Ajv({ allErrors: true, verbose: true, strict: true }).compile(MANIFEST_SCHEMA);
  return compiled;
}

/** A problem before it has a position. */
interface Located {
  path: PathSegment[];
  anchor: Anchor;
  message: string;
}

/** Pass 1: the schema. */
export function schemaProblems(data: unknown, source: ManifestSource): Problem[] {
  const validate = validator();
  if (validate(data)) return [];
  // An env value's errors come from every branch of its anyOf (string, secret, hostEnv): ajv's
  // list would be three unrelated complaints, so envValueProblems says what is wrong instead.
  const errors = (validate.errors ?? []).filter((e) => !ENV_VALUE_RE.test(e.instancePath));
  const located: Located[] = envValueProblems(data, source);
  // An error on a value of the wrong type makes its other errors (pattern, const) noise.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  for (const e of errors) {
    if (e.keyword !== 'type' && wrongType.has(e.instancePath) && e.propertyName === undefined) {
      continue;
    }
    const l = translate(e, data, source);
    if (l !== undefined) located.push(l);
  }
  return located.map((l) => ({
    path: l.path,
    ...source.position(l.path, l.anchor),
    message: l.message,
  }));
}

/** The JSON pointer of an env value, or of anything inside it. */
const ENV_VALUE_RE = /^\/spec\/actors\/\d+\/env\/[^/]+(\/|$)/;

const ENV_VALUE_FORMS = 'a string, { secret: NAME } or { hostEnv: VAR }';

/** What is wrong with each env value that is not a string, `{ secret }` or `{ hostEnv }`. */
function envValueProblems(data: unknown, source: ManifestSource): Located[] {
  const out: Located[] = [];
  const spec = isRecord(data) ? data['spec'] : undefined;
  for (const [i, actor] of records(isRecord(spec) ? spec['actors'] : undefined)) {
    const env = actor['env'];
    if (!isRecord(env)) continue;
    for (const [key, value] of Object.entries(env)) {
      const path: PathSegment[] = ['spec', 'actors', i, 'env', key];
      const problem = envValueProblem(value, path, source);
      if (problem !== undefined) out.push(problem);
    }
  }
  return out;
}

function envValueProblem(
  value: unknown,
  path: PathSegment[],
  source: ManifestSource,
): Located | undefined {
  if (typeof value === 'string') return undefined;
  if (!isRecord(value) || value instanceof Uint8Array) {
    // A scalar where a string belongs is nearly always a number or boolean left unquoted.
    if (Array.isArray(value) || value instanceof Uint8Array) {
      return {
        path,
        anchor: 'value',
        message: `expected ${ENV_VALUE_FORMS}, got ${describe(value)}`,
      };
    }
    const written = source.sourceText(path);
    let message = `expected string, got ${describe(value, written)}`;
    if (value === null) message += ' (the value is empty); write "" for an empty string';
    else message += `; quote the value: "${written ?? String(value)}"`;
    return { path, anchor: 'value', message };
  }
  const keys = Object.keys(value);
  const [key] = keys;
  if (keys.length !== 1 || (key !== 'secret' && key !== 'hostEnv')) {
    const unknown = keys.filter((k) => k !== 'secret' && k !== 'hostEnv');
    const guess = unknown.length === 1 ? closest(unknown[0]!, ['secret', 'hostEnv']) : undefined;
    let got = 'an empty object';
    if (unknown.length > 0) got = `an object with ${unknown.map((k) => `'${k}'`).join(', ')}`;
    else if (keys.length > 1) got = 'both secret and hostEnv';
    return {
      path: unknown.length === 1 ? [...path, unknown[0]!] : path,
      anchor: unknown.length === 1 ? 'key' : 'value',
      message:
        `expected ${ENV_VALUE_FORMS}, got ${got}` +
        (guess === undefined ? '' : `; did you mean '${guess}'?`),
    };
  }
  const name = value[key];
  const at = [...path, key];
  if (typeof name !== 'string') {
    return {
      path: at,
      anchor: 'value',
      message: `expected string, got ${describe(name, source.sourceText(at))}`,
    };
  }
  const pattern = key === 'secret' ? SECRET_NAME_PATTERN : ENV_KEY_PATTERN;
  if (key === 'hostEnv' && name.startsWith('WEFT_')) {
    return {
      path: at,
      anchor: 'value',
      message: `host variable ${quote(name)} is refused: WEFT_ variables are the host's own configuration (its NATS credentials, its secrets key), never given to actors`,
    };
  }
  if (new RegExp(pattern).test(name)) return undefined;
  return {
    path: at,
    anchor: 'value',
    message:
      key === 'secret'
        ? `invalid secret name ${quote(name)}: letters, digits, '_' and '-', at most 128 characters, not starting with '-'`
        : `invalid environment variable name ${quote(name)}: use letters, digits and '_', not starting with a digit`,
  };
}

function translate(e: ErrorObject, data: unknown, source: ManifestSource): Located | undefined {
  const path = toSegments(e.instancePath, data);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String(params['additionalProperty']);
      const allowed = Object.keys(
        ((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}) as object,
      );
      const guess = closest(field, allowed);
      return {
        path: [...path, field],
        anchor: 'key',
        message:
          `unknown field '${field}' (allowed: ${allowed.join(', ')})` +
          (guess === undefined ? '' : `; did you mean '${guess}'?`),
      };
    }
    case 'required': {
      const field = String(params['missingProperty']);
      // Positioned at the object that lacks the field: there is nothing else to point at.
      return {
        path: [...path, field],
        anchor: 'value',
        message: `missing required field '${field}'`,
      };
    }
    case 'propertyNames':
      // ajv also reports the inner failure (pattern) with `propertyName` set: that one is worded.
      return undefined;
    case 'type': {
      const expected = ([] as unknown[]).concat(params['type']).join(' or ');
      let message = `expected ${expected}, got ${describe(e.data, source.sourceText(path))}`;
      if (expected === 'string' && ['number', 'boolean'].includes(typeof e.data)) {
        const written = source.sourceText(path) ?? String(e.data);
        message += `; quote the value: "${written}"`;
      } else if (e.data === null) {
        message += ' (the value is empty)';
        if (expected === 'string') message += '; write "" for an empty string';
      }
      return { path, anchor: 'value', message };
    }
    case 'const':
      return {
        path,
        anchor: 'value',
        message: `expected '${String(params['allowedValue'])}', got ${describe(e.data)}`,
      };
    case 'enum':
      return {
        path,
        anchor: 'value',
        message: `expected one of ${(params['allowedValues'] as unknown[]).map((v) => `'${String(v)}'`).join(', ')}, got ${describe(e.data)}`,
      };
    case 'pattern': {
      const pattern = String(params['pattern']);
      if (e.propertyName !== undefined) {
        return {
          path: [...path, e.propertyName],
          anchor: 'key',
          message: keyHint(pattern, e.propertyName),
        };
      }
      return { path, anchor: 'value', message: valueHint(pattern, String(e.data)) };
    }
    case 'minimum':
      return {
        path,
        anchor: 'value',
        message: `must be at least ${String(params['limit'])}, got ${String(e.data)}`,
      };
    case 'maximum':
      return {
        path,
        anchor: 'value',
        message:
          `must be at most ${String(params['limit'])}, got ${String(e.data)}` +
          (path.at(-1) === 'memoryMiB' ? ' (wasm32 memory is at most 4 GiB)' : ''),
      };
    case 'minItems':
      return {
        path,
        anchor: 'value',
        message:
          formatPath(path) === 'spec.actors'
            ? 'an application needs at least one actor'
            : `must have at least ${String(params['limit'])} item(s)`,
      };
    case 'minLength':
      return { path, anchor: 'value', message: 'must not be empty' };
    default:
      return { path, anchor: 'value', message: e.message ?? `fails ${e.keyword}` };
  }
}

/** `/spec/actors/0/name` → `['spec', 'actors', 0, 'name']` (indexes as numbers, by the data). */
function toSegments(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const out: PathSegment[] = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(cur)) {
      const i = Number(seg);
      out.push(i);
      cur = cur[i];
    } else {
      out.push(seg);
      cur = isRecord(cur) ? cur[seg] : undefined;
    }
  }
  return out;
}

/** `string "ten"`, `number 8080` (as written, when known), `null`, `array`, `object`. */
function describe(value: unknown, written?: string): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return `string ${quote(value)}`;
    case 'number':
      return `number ${written ?? value}`;
    case 'boolean':
      return `boolean ${String(value)}`;
    case 'object':
      return value instanceof Uint8Array ? 'binary' : 'object';
    default:
      return typeof value;
  }
}

function quote(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 60 ? `${q.slice(0, 56)}…"` : q;
}

function keyHint(pattern: string, key: string): string {
  switch (pattern) {
    case ENV_KEY_PATTERN:
      return `invalid environment variable name '${key}': use letters, digits and '_', not starting with a digit`;
    case LABEL_KEY_PATTERN:
      return `invalid label key '${key}': letters, digits, '.', '_', '-' (at most 63, starting and ending with a letter or digit), with an optional 'prefix/'`;
    default:
      return `invalid key '${key}': must match ${pattern}`;
  }
}

function valueHint(pattern: string, value: string): string {
  const got = `got ${quote(value)}`;
  switch (pattern) {
    case NAME_PATTERN:
      return `must be a lowercase DNS label (a-z, 0-9 and '-', at most 63 characters, starting and ending with a letter or digit; it becomes a NATS subject token), ${got}`;
    case VERSION_PATTERN:
      return `must be a version like 1.0.0 (optional leading 'v', '-prerelease', '+build'), ${got}`;
    case ROUTE_PATH_PATTERN:
      return `${routePathReason(value)}, ${got}`;
    case ROUTE_HOST_PATTERN:
      return `must be '*' or a host name${/[:/]/.test(value) ? ' without scheme, port or path' : ''}, ${got}`;
    case ALLOWED_HOST_PATTERN:
      return `must be '<scheme>://<host>[:<port>]' with the scheme required ('*' for any), e.g. 'https://api.example.com', ${got}`;
    case GUEST_PATH_PATTERN:
      return `must be an absolute guest path like /public, without '..' segments, ${got}`;
    default:
      return `must match ${pattern}, ${got}`;
  }
}

/**
 * True for `/_weft`, `/_weft/` and anything under it, also with the first segment
 * percent-encoded (`/%5Fweft/x`): the gateway routes on the decoded path.
 */
function isReservedRoutePath(path: string): boolean {
  const first = path.split('/')[1] ?? '';
  let decoded = first;
  try {
    decoded = decodeURIComponent(first);
  } catch {
    // Not valid percent-encoding: compared as written.
  }
  return `/${decoded}` === RESERVED_ROUTE_PREFIX;
}

/** Why a route path is not `/exact`, `/prefix/...` or `/...`: the first rule it breaks. */
function routePathReason(p: string): string {
  if (!p.startsWith('/')) return "must start with '/'";
  if (/[?#]/.test(p)) return "must not contain '?' or '#' (routes match the path only)";
  if (/\s/.test(p) || hasControlCharacter(p))
    return 'must not contain spaces or control characters';
  if (p.includes('*')) return "must not contain '*'; end the path with /... for a wildcard";
  if (p.includes('//')) return 'must not contain empty segments (//)';
  if (/\.\.\.(?!$)|[^/]\.\.\.$/.test(p))
    return 'may use ... only as the last segment (/prefix/...)';
  if (p.includes('..')) return "must not contain '..'";
  return 'must be /exact, /prefix/... or /...';
}

const ALLOWED_ENTRY_RE = new RegExp(ALLOWED_HOST_PATTERN);

/** The allowed name nearest to a misspelt one, when near enough to be a likely typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.min(3, Math.floor(word.length / 3))) ? best : undefined;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function records(v: unknown): [number, Record<string, unknown>][] {
  return Array.isArray(v)
    ? v.flatMap((item, i): [number, Record<string, unknown>][] =>
        isRecord(item) ? [[i, item]] : [],
      )
    : [];
}

/** Pass 2: rules across fields. Reads the data defensively: it may have failed pass 1. */
export function semanticProblems(data: unknown, source: ManifestSource): Problem[] {
  const problems: Problem[] = [];
  const report = (path: PathSegment[], message: string, anchor: Anchor = 'value'): void => {
    problems.push({ path, ...source.position(path, anchor), message });
  };
  const at = (path: PathSegment[]): string => {
    const { line, column } = source.position(path);
    return `${formatPath(path)} at ${line}:${column}`;
  };

  const spec = isRecord(data) ? data['spec'] : undefined;
  const actors = records(isRecord(spec) ? spec['actors'] : undefined);
  const actorNames = new Map<string, number>();
  /** `host path` → where it was first declared. */
  const routes = new Map<string, { index: number; actor: string; path: PathSegment[] }>();

  for (const [i, actor] of actors) {
    const base: PathSegment[] = ['spec', 'actors', i];
    const name = typeof actor['name'] === 'string' ? actor['name'] : `#${i}`;

    if (typeof actor['name'] === 'string') {
      const first = actorNames.get(actor['name']);
      if (first === undefined) actorNames.set(actor['name'], i);
      else {
        report(
          [...base, 'name'],
          `duplicate actor name '${actor['name']}' (also ${at(['spec', 'actors', first, 'name'])})`,
        );
      }
    }

    if (typeof actor['module'] === 'string' && actor['module'] !== '') {
      const ref = checkModuleRef(actor['module']);
      if (!ref.ok) report([...base, 'module'], ref.reason);
    }

    for (const [j, route] of records(actor['routes'])) {
      const path = route['path'];
      const host = route['host'] ?? '*';
      if (typeof path !== 'string' || typeof host !== 'string') continue;
      const key = `${host.toLowerCase()} ${path}`;
      const here: PathSegment[] = [...base, 'routes', j];
      if (isReservedRoutePath(path)) {
        report(
          [...here, 'path'],
          `route ${path} is under ${RESERVED_ROUTE_PREFIX}/, which every gateway keeps for its dashboard; choose another path`,
        );
      }
      const first = routes.get(key);
      if (first === undefined) {
        routes.set(key, { index: i, actor: name, path: here });
        continue;
      }
      const by =
        first.index === i
          ? `twice by actor '${name}'`
          : `by both actor '${first.actor}' and actor '${name}'`;
      report(here, `route ${path} on host '${host}' is declared ${by} (first ${at(first.path)})`);
    }

    const guests = new Map<string, number>();
    for (const [j, mount] of records(actor['files'])) {
      const guest = mount['guest'];
      if (typeof guest !== 'string') continue;
      const normalized = guest.length > 1 ? guest.replace(/\/+$/, '') : guest;
      const first = guests.get(normalized);
      if (first === undefined) guests.set(normalized, j);
      else {
        report(
          [...base, 'files', j, 'guest'],
          `guest path ${guest} is mounted twice (also ${at([...base, 'files', first, 'guest'])})`,
        );
      }
    }

    const spread = records(actor['spread']);
    const spreadNames = new Map<string, number>();
    for (const [j, s] of spread) {
      if (typeof s['name'] !== 'string') continue;
      const first = spreadNames.get(s['name']);
      if (first === undefined) spreadNames.set(s['name'], j);
      else {
        report(
          [...base, 'spread', j, 'name'],
          `duplicate spread name '${s['name']}' (also ${at([...base, 'spread', first, 'name'])})`,
        );
      }
    }
    if (spread.length > 0 && spread.every(([, s]) => s['weight'] === 0)) {
      report([...base, 'spread'], 'every spread weight is 0: no instance could be placed');
    }

    // Allowlist entries the schema's pattern lets through may still be wrong (a port range
    // backwards, a CIDR out of range, `tcp://` without a port): the policy's own parser says.
    const caps = isRecord(actor['capabilities']) ? actor['capabilities'] : {};
    const sockets = isRecord(caps['sockets']) ? caps['sockets'] : {};
    for (const [path, list] of [
      [['capabilities', 'outboundHttp'], caps['outboundHttp']],
      [['capabilities', 'sockets', 'connect'], sockets['connect']],
    ] as const) {
      if (!Array.isArray(list)) continue;
      list.forEach((entry: unknown, j: number) => {
        // The schema has reported entries without a scheme already.
        if (typeof entry !== 'string' || !ALLOWED_ENTRY_RE.test(entry)) return;
        try {
          parseAllowEntry(entry);
        } catch (err) {
          const problem = err instanceof AllowEntryError ? err.problem : (err as Error).message;
          report([...base, ...path, j], `'${entry}': ${problem}`);
        }
      });
    }
  }
  return problems;
}
