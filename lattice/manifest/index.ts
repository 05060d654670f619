/**
 * The application manifest: its JSON Schema, parsing from YAML with positions, validation with
 * ajv and semantic checks. See `docs/manifest.md` for the reference a user reads.
 */

export { parseManifest } from './parse.ts';
export { manifestWarnings } from './warnings.ts';
export { type ModuleRef, parseModuleRef } from './module-ref.ts';
export { MANIFEST_SCHEMA, manifestJsonSchema } from './schema.ts';
export type { ManifestProblem } from './problem.ts';
export {
  ActorMode,
  type ActorSpec,
  type Capabilities,
  DEFAULT_LIMITS,
  type EnvValue,
  type FileMount,
  type HostEnvRef,
  type Limits,
  type Manifest,
  MANIFEST_API_VERSION,
  MANIFEST_KIND,
  MAX_MEMORY_MIB,
  MAX_TIMEOUT_MS,
  type Metadata,
  NAME_PATTERN,
  RESERVED_ROUTE_PREFIX,
  type Route,
  SECRET_NAME_PATTERN,
  type SecretRef,
  type Spread,
} from './types.ts';
