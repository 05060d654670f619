/**
 * Deploying and undeploying applications: a manifest's local modules and file trees are checked
 * and pushed to the artifact store, name:tag and digest references are resolved, conflicts with
 * other applications are refused, and then the application and its routes are stored. Nothing is
 * stored when any step fails.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { DeployedApp, ResolvedActor, ResolvedFiles } from './app.ts';
import { routesOf } from './app.ts';
import type { LatticeClient } from './client.ts';
import { pack } from './envelope.ts';
import { ErrorCode, ManifestInvalidError, WeftError } from './errors.ts';
import { parseModuleRef, type Manifest } from './manifest/index.ts';
import { AppStore, ArtifactStore, RouteStore } from './stores.ts';
import { checkModule } from './wasm.ts';

export type DeployProgress = (event: { step: string; sent?: number; total?: number }) => void;

/** One entry of a file bundle: paths relative and '/'-separated. */
export type BundleEntry = { path: string; data: Uint8Array } | { path: string; dir: true };

/**
 * Read a directory tree into bundle entries, in name order. Only regular files and directories
 * are taken: symlinks and special files are left out, so a bundle never reaches outside `dir`.
 */
export async function readTreeEntries(dir: string): Promise<BundleEntry[]> {
  const entries: BundleEntry[] = [];
  async function walk(d: string): Promise<void> {
    const list = (await readdir(d, { withFileTypes: true })).toSorted((a, b) =>
      a.name.localeCompare(b.name),
    );
    for (const e of list) {
      const full = join(d, e.name);
      const rel = relative(dir, full).split(sep).join('/');
      if (e.isDirectory()) {
        entries.push({ path: rel, dir: true });
        await walk(full);
      } else if (e.isFile()) {
        entries.push({ path: rel, data: await readFile(full) });
      }
    }
  }
  await walk(dir);
  return entries;
}

/** A directory as a file bundle: msgpack `{ entries }`. */
export async function bundleDir(dir: string): Promise<Uint8Array> {
  return pack({ entries: await readTreeEntries(dir) });
}

/** Check and push one module file; returns its digest. */
export async function pushModuleFile(
  artifacts: ArtifactStore,
  file: string,
  onProgress?: (sent: number, total: number) => void,
): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new WeftError(
      ErrorCode.ModuleInvalid,
      `cannot read module ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        details: { source: file },
      },
    );
  }
  await checkModule(bytes, file);
  return (await artifacts.put(bytes, onProgress)).digest;
}

/** Actor names and routes of `actors` that another application than `name` owns already. */
function conflicts(
  apps: DeployedApp[],
  name: string,
  actors: { name: string; routes: { path: string; host: string }[] }[],
): string[] {
  const others = apps.filter((a) => a.name !== name);
  const problems: string[] = [];
  for (const actor of actors) {
    const owner = others.find((a) => a.actors.some((x) => x.name === actor.name));
    if (owner)
      problems.push(`actor '${actor.name}' is already deployed by application '${owner.name}'`);
    for (const r of actor.routes) {
      for (const o of others) {
        const clash = o.actors.find((x) =>
          x.routes.some((y) => y.path === r.path && y.host === r.host),
        );
        if (clash) {
          problems.push(
            `route ${r.host} ${r.path} of actor '${actor.name}' is already routed to '${o.name}/${clash.name}'`,
          );
        }
      }
    }
  }
  return problems;
}

/**
 * Deploy `manifest` (read from `manifestFile`, whose folder anchors relative paths). Returns the
 * stored application.
 */
export async function deployApplication(
  client: LatticeClient,
  manifest: Manifest,
  manifestFile: string,
  onProgress: DeployProgress = () => undefined,
): Promise<DeployedApp> {
  const baseDir = resolve(manifestFile, '..');
  const artifacts = await ArtifactStore.open(client);
  const apps = await AppStore.open(client);
  const routeStore = await RouteStore.open(client);
  const name = manifest.metadata.name;

  // Conflicts with other applications, before anything is pushed.
  const problems = conflicts(await apps.list(), name, manifest.spec.actors);
  if (problems.length > 0) {
    throw new ManifestInvalidError(
      `${manifestFile}: conflicts with deployed applications:\n  ${problems.join('\n  ')}`,
      {
        details: { file: manifestFile, conflicts: problems },
      },
    );
  }

  const actors: ResolvedActor[] = [];
  for (const spec of manifest.spec.actors) {
    const ref = parseModuleRef(spec.module);
    let digest: string;
    if (ref.kind === 'path') {
      const file = isAbsolute(ref.path) ? ref.path : resolve(baseDir, ref.path);
      onProgress({ step: `pushing ${spec.name} module` });
      digest = await pushModuleFile(artifacts, file, (sent, total) =>
        onProgress({ step: `pushing ${spec.name} module`, sent, total }),
      );
    } else if (ref.kind === 'digest') {
      if (!(await artifacts.has(ref.digest))) {
        throw new WeftError(
          ErrorCode.ArtifactNotFound,
          `actor '${spec.name}': module ${ref.digest} is not in the artifact store (push it first)`,
        );
      }
      digest = ref.digest;
    } else {
      digest = await artifacts.resolveTag(`${ref.name}:${ref.tag}`);
    }
    const files: ResolvedFiles[] = [];
    for (const f of spec.files) {
      const dir = isAbsolute(f.source) ? f.source : resolve(baseDir, f.source);
      const st = await stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) {
        throw new ManifestInvalidError(
          `${manifestFile}: actor '${spec.name}': files source ${f.source} is not a directory (resolved to ${dir})`,
          {
            details: { file: manifestFile, source: f.source },
          },
        );
      }
      onProgress({ step: `bundling ${spec.name} files ${f.source}` });
      const info = await artifacts.put(await bundleDir(dir));
      files.push({ guest: f.guest, digest: info.digest });
    }
    actors.push({ ...spec, module: digest, moduleRef: spec.module, files });
  }
  const app: DeployedApp = {
    name,
    version: manifest.metadata.version,
    actors,
    deployedAt: new Date().toISOString(),
  };
  onProgress({ step: 'storing application' });
  await apps.put(app);
  await routeStore.put(name, routesOf(app));
  return app;
}

/**
 * Deploy again version `version` of application `name`, as kept in the store's history (the
 * newest revision with that version): a new revision whose modules and trees are those of then.
 */
export async function rollbackApplication(
  client: LatticeClient,
  name: string,
  version: string,
): Promise<DeployedApp> {
  const apps = await AppStore.open(client);
  const kept = (await apps.history(name)).flatMap((h) => (h.app ? [h.app] : []));
  const old = kept.findLast((a) => a.version === version);
  if (old === undefined) {
    const known = [...new Set(kept.map((a) => a.version))];
    throw new WeftError(
      ErrorCode.AppNotFound,
      known.length === 0
        ? `no application named '${name}' was deployed`
        : `application '${name}' has no version ${version} kept (kept: ${known.join(', ')}; see weft app history ${name})`,
      { details: { name, version, kept: known } },
    );
  }
  const problems = conflicts(await apps.list(), name, old.actors);
  if (problems.length > 0) {
    throw new WeftError(
      ErrorCode.ManifestInvalid,
      `cannot roll ${name} back to ${version}: ${problems.join('; ')}`,
      { details: { conflicts: problems } },
    );
  }
  const artifacts = await ArtifactStore.open(client);
  for (const a of old.actors) {
    for (const digest of [a.module, ...a.files.map((f) => f.digest)]) {
      if (!(await artifacts.has(digest))) {
        throw new WeftError(
          ErrorCode.ArtifactNotFound,
          `cannot roll ${name} back to ${version}: actor '${a.name}' needs ${digest}, which is no longer stored`,
        );
      }
    }
  }
  const app: DeployedApp = { ...old, deployedAt: new Date().toISOString() };
  await apps.put(app);
  await (await RouteStore.open(client)).put(name, routesOf(app));
  return app;
}

/** Remove an application and its routes; hosts stop its actors. */
export async function undeployApplication(client: LatticeClient, name: string): Promise<void> {
  const apps = await AppStore.open(client);
  if (!(await apps.get(name))) {
    throw new WeftError(ErrorCode.AppNotFound, `no application named '${name}' is deployed`, {
      details: { name },
    });
  }
  await (await RouteStore.open(client)).delete(name);
  await apps.delete(name);
}
