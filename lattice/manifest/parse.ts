/**
 * Text → `Manifest`: YAML with positions, schema, semantic checks, then defaults. Every problem
 * of every stage that can run is reported in one `ManifestInvalidError`.
 */

import { manifestInvalid } from './problem.ts';
import { deepFreeze } from './freeze.ts';
import { ManifestSource } from './source.ts';
import {
  type ActorMode,
  type ActorSpec,
  DEFAULT_LIMITS,
  type EnvValue,
  type FileMount,
  type Limits,
  type Manifest,
  type Metadata,
  type Route,
  type Spread,
} from './types.ts';
import { schemaProblems, semanticProblems } from './validate.ts';

/** The manifest as written, once the schema has accepted it. */
interface ActorInput {
  name: string;
  module: string;
  mode?: ActorMode;
  port?: number;
  instances?: number;
  daemon?: boolean;
  spread?: { name: string; requirements?: Record<string, string>; weight?: number }[];
  args?: string[];
  env?: Record<string, EnvValue>;
  files?: FileMount[];
  limits?: Partial<Limits>;
  capabilities?: { outboundHttp?: string[]; sockets?: { listen?: number[]; connect?: string[] } };
  routes?: { path: string; host?: string }[];
}

interface ManifestInput {
  apiVersion: 'weft/v1';
  kind: 'Application';
  metadata: Metadata;
  spec: { actors: ActorInput[] };
}

/**
 * Parse a manifest from YAML (or JSON) `text`; `file` names it in messages. Validates it against
 * `MANIFEST_SCHEMA` (all problems, unknown fields refused everywhere), runs the semantic checks,
 * applies defaults and returns a deeply frozen `Manifest` that shares nothing with the input.
 *
 * Throws `ManifestInvalidError` (WEFT_ERR_MANIFEST_INVALID) listing every problem, one
 * `file:line:column: path: reason` line each; `details` is `{ file, errors: [{ path, line,
 * column, message }] }`.
 */
export function parseManifest(text: string, file: string): Manifest {
  const loaded = ManifestSource.load(text);
  if (!('source' in loaded)) throw manifestInvalid(file, loaded.problems);
  const { source, data } = loaded;
  const problems = [...schemaProblems(data, source), ...semanticProblems(data, source)];
  if (problems.length > 0) throw manifestInvalid(file, problems);
  return deepFreeze(normalize(data as ManifestInput));
}

function normalize(input: ManifestInput): Manifest {
  const { name, version, description, labels } = input.metadata;
  const metadata: Metadata = { name, version };
  if (description !== undefined) metadata.description = description;
  if (labels !== undefined) metadata.labels = copy(labels);
  return {
    apiVersion: input.apiVersion,
    kind: input.kind,
    metadata,
    spec: { actors: input.spec.actors.map(normalizeActor) },
  };
}

function normalizeActor(a: ActorInput): ActorSpec {
  const limits: Limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
    const v = a.limits?.[key];
    if (v !== undefined) limits[key] = v;
  }
  const actor: ActorSpec = {
    name: a.name,
    module: a.module,
    mode: a.mode ?? 'wcgi',
    port: a.port ?? 80,
    instances: a.instances ?? 1,
    daemon: a.daemon ?? false,
    args: [...(a.args ?? [])],
    env: copyEnv(a.env ?? {}),
    files: (a.files ?? []).map((f) => ({ source: f.source, guest: f.guest })),
    limits,
    capabilities: {
      outboundHttp: [...(a.capabilities?.outboundHttp ?? [])],
      sockets: {
        listen: [...(a.capabilities?.sockets?.listen ?? [])],
        connect: [...(a.capabilities?.sockets?.connect ?? [])],
      },
    },
    routes: (a.routes ?? []).map((r): Route => ({
      path: r.path,
      host: (r.host ?? '*').toLowerCase(),
    })),
  };
  if (a.spread !== undefined) {
    actor.spread = a.spread.map((s) => {
      const out: Spread = { name: s.name, requirements: copy(s.requirements ?? {}) };
      if (s.weight !== undefined) out.weight = s.weight;
      return out;
    });
  }
  return actor;
}

/** A plain copy; `Object.fromEntries` defines keys such as `__proto__` as own data properties. */
function copy(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record));
}

/** A copy of an env map whose references are new objects of exactly one field. */
function copyEnv(env: Record<string, EnvValue>): Record<string, EnvValue> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]): [string, EnvValue] => {
      if (typeof v === 'string') return [k, v];
      return [k, 'secret' in v ? { secret: v.secret } : { hostEnv: v.hostEnv }];
    }),
  );
}
