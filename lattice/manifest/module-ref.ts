/**
 * An actor's `module` names a file to push (a path), an artifact already in the lattice's object
 * store by content (`sha256:<hex>`), or one by tag (`name:tag`). The three forms are told apart by
 * their spelling alone, so that the CLI, the scheduler and the host read a manifest the same way.
 */

import { ManifestInvalidError } from '../errors.ts';
import { hasControlCharacter } from './chars.ts';

/** What an actor's `module` refers to. */
export type ModuleRef =
  | { kind: 'path'; path: string }
  | { kind: 'digest'; digest: string }
  | { kind: 'tag'; name: string; tag: string };

const DIGEST = /^sha256:([0-9a-fA-F]{64})$/;
/** Artifact names: lowercase, digits and `.`, `_`, `-`; like OCI repository path components. */
const ARTIFACT_NAME = /^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$/;
/** Tags: as OCI/Docker tags. */
const ARTIFACT_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

const FORMS = 'a path (./x.wasm), a digest (sha256:<64 hex digits>) or a name:tag';

/** Like `parseModuleRef`, without throwing: the reason on failure. */
export function checkModuleRef(
  s: string,
): { ok: true; ref: ModuleRef } | { ok: false; reason: string } {
  if (s.length === 0) return { ok: false, reason: `module is empty: expected ${FORMS}` };
  if (/^sha256:/i.test(s)) {
    const m = DIGEST.exec(s);
    return m?.[1] === undefined
      ? { ok: false, reason: `invalid digest '${s}': expected sha256: followed by 64 hex digits` }
      : { ok: true, ref: { kind: 'digest', digest: `sha256:${m[1].toLowerCase()}` } };
  }
  if (hasControlCharacter(s)) {
    return { ok: false, reason: 'invalid module reference: contains a control character' };
  }
  if (s.includes('/') || s.includes('\\') || s.endsWith('.wasm') || s === '.' || s === '..') {
    return { ok: true, ref: { kind: 'path', path: s } };
  }
  const colon = s.lastIndexOf(':');
  if (colon === -1) {
    return {
      ok: false,
      reason: `module '${s}' is not ${FORMS}; write ./${s} for a file, or ${s}:<tag> for a pushed artifact`,
    };
  }
  const name = s.slice(0, colon);
  const tag = s.slice(colon + 1);
  if (!ARTIFACT_NAME.test(name)) {
    return {
      ok: false,
      reason: `invalid artifact name '${name}' in '${s}': use lowercase letters, digits, '.', '_' and '-'`,
    };
  }
  if (!ARTIFACT_TAG.test(tag)) {
    return {
      ok: false,
      reason: `invalid tag '${tag}' in '${s}': use letters, digits, '.', '_' and '-' (at most 128, not starting with '.' or '-')`,
    };
  }
  return { ok: true, ref: { kind: 'tag', name, tag } };
}

/**
 * Classify a module reference by its spelling:
 * - `sha256:<64 hex>` → `{ kind: 'digest', digest: 'sha256:<lowercase hex>' }`;
 * - anything with a `/` or `\`, or ending in `.wasm` (`./hello.wasm`, `hello.wasm`, `/abs/x.wasm`)
 *   → `{ kind: 'path', path }`, unchanged (the CLI resolves it against the manifest's directory);
 * - `name:tag` → `{ kind: 'tag', name, tag }` (name lowercase `[a-z0-9._-]`, tag as OCI tags).
 *
 * A bare word (`hello`) is refused rather than guessed. Throws `ManifestInvalidError`
 * (WEFT_ERR_MANIFEST_INVALID) with the reason.
 */
export function parseModuleRef(s: string): ModuleRef {
  const r = checkModuleRef(s);
  if (!r.ok) throw new ManifestInvalidError(r.reason, { details: { module: s } });
  return r.ref;
}
