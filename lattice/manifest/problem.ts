/**
 * One problem found in a manifest, and how a list of them becomes a `ManifestInvalidError` whose
 * message a person can read on its own: one `file:line:column: path: reason` line per problem,
 * ordered by position, like a compiler's diagnostics.
 */

import { ManifestInvalidError } from '../errors.ts';

/** A key in an object or an index in an array. */
export type PathSegment = string | number;

/** A problem with its position (1-based line and column). */
export interface Problem {
  path: PathSegment[];
  line: number;
  column: number;
  /** The reason alone, without file, position or path. */
  message: string;
}

/** One entry of `ManifestInvalidError.details.errors`. */
export interface ManifestProblem {
  /** Dotted path, `spec.actors[0].limits.timeoutMs`; `''` for the document itself. */
  path: string;
  line: number;
  column: number;
  message: string;
}

/** Lines beyond this many are summarized in the message; `details.errors` keeps them all. */
const MAX_MESSAGE_LINES = 100;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['spec', 'actors', 0, 'env', 'MY-VAR']` → `spec.actors[0].env["MY-VAR"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The error for `problems` (at least one) found in `file`. */
export function manifestInvalid(file: string, problems: readonly Problem[]): ManifestInvalidError {
  const seen = new Set<string>();
  const errors: ManifestProblem[] = [];
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
  for (const p of sorted) {
    const e = { path: formatPath(p.path), line: p.line, column: p.column, message: p.message };
    const key = `${e.line}:${e.column}:${e.path}:${e.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    errors.push(e);
  }
  const lines = errors
    .slice(0, MAX_MESSAGE_LINES)
    .map((e) => `${file}:${e.line}:${e.column}: ${e.path === '' ? '' : `${e.path}: `}${e.message}`);
  if (errors.length > MAX_MESSAGE_LINES) {
    lines.push(`${file}: … and ${errors.length - MAX_MESSAGE_LINES} more problems`);
  }
  return new ManifestInvalidError(lines.join('\n'), { details: { file, errors } });
}
