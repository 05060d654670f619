/**
 * What the lattice stores for a deployed application: the manifest with every module and file
 * tree resolved to an artifact digest, so every host runs exactly the same bytes.
 */
import { createHash } from 'node:crypto';
import type { ActorSpec, Limits, Route } from './manifest/index.ts';

/** A read-only file tree bundled from a manifest's `files` entry. */
export interface ResolvedFiles {
  guest: string;
  /** `sha256:<hex>` of the bundle (msgpack `{ entries: TreeEntry[] }`) in the artifact store. */
  digest: string;
}

export interface ResolvedActor extends Omit<ActorSpec, 'module' | 'files'> {
  /** `sha256:<hex>` of the module in the artifact store. */
  module: string;
  /** What the manifest said (path, digest or name:tag), for display. */
  moduleRef: string;
  files: ResolvedFiles[];
}

export interface DeployedApp {
  name: string;
  version: string;
  actors: ResolvedActor[];
  /** ISO time of the deploy. */
  deployedAt: string;
}

/** One row of the route table the gateways watch. */
export interface RouteEntry {
  app: string;
  actor: string;
  host: string;
  path: string;
  limits: Pick<Limits, 'maxRequestBytes' | 'maxResponseBytes' | 'timeoutMs'>;
}

/** The route table entries of one application. */
export function routesOf(app: DeployedApp): RouteEntry[] {
  return app.actors.flatMap((a) =>
    a.routes.map((r: Route) => ({
      app: app.name,
      actor: a.name,
      host: r.host,
      path: r.path,
      limits: {
        maxRequestBytes: a.limits.maxRequestBytes,
        maxResponseBytes: a.limits.maxResponseBytes,
        timeoutMs: a.limits.timeoutMs,
      },
    })),
  );
}

/**
 * A short digest of everything that makes an actor's version (module, env, files, limits, …),
 * leaving out the instance count, which a host sets to what is placed on it: a host reports it,
 * so that a status can tell the current version from an old one still serving.
 */
export function specDigest(spec: ResolvedActor): string {
  const { instances: _placed, ...rest } = spec;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}
