/**
 * An application's status (`weft status NAME`, `weft deploy --wait`): for each actor, the
 * instances wanted and running, on which hosts, and why any are missing, from the application
 * store, the scheduler's placements and the hosts' own inventories.
 */
import { specDigest, type DeployedApp } from './app.ts';
import type { LatticeClient } from './client.ts';
import { ErrorCode, WeftError } from './errors.ts';
import type { HostInventory } from './inventory.ts';
import { AppStore, PlacementStore, openLeases, type AppPlacements } from './stores.ts';

export interface ActorHostStatus {
  hostId: string;
  /** Instances placed on this host. */
  placed: number;
  /** Instances running the current version there. */
  running: number;
  state: string;
  error?: string;
}

export interface ActorStatus {
  actor: string;
  mode: string;
  wanted: number;
  running: number;
  hosts: ActorHostStatus[];
  /** Why fewer are placed than wanted (the scheduler's reason). */
  waiting?: string;
  /** The last error a host reported for it. */
  error?: string;
}

export type AppState = 'running' | 'starting' | 'waiting' | 'failed';

export interface AppStatus {
  app: string;
  version: string;
  /** running: every actor at its wanted instances; waiting: some cannot be placed (see why);
   *  failed: some failed to start; starting: placed, not all running yet. */
  state: AppState;
  actors: ActorStatus[];
}

/** The status of application `name`; WEFT_ERR_APP_NOT_FOUND when it is not deployed. */
export async function appStatus(
  client: LatticeClient,
  name: string,
  opts: { gatherMs?: number } = {},
): Promise<AppStatus> {
  const app = await (await AppStore.open(client)).get(name);
  if (app === undefined) {
    throw new WeftError(ErrorCode.AppNotFound, `no application named '${name}' is deployed`, {
      details: { name },
    });
  }
  const placed = await (await PlacementStore.open(client)).get(name);
  const hosts = await client.gather<HostInventory>(
    client.subjects.hostPing(),
    {},
    opts.gatherMs ?? 300,
  );
  return statusOf(app, placed, hosts);
}

/**
 * The status of a deployed application from its placements and the hosts' inventories, without
 * asking the lattice (the dashboard keeps all three up to date from watches and heartbeats).
 */
export function statusOf(
  app: DeployedApp,
  placed: AppPlacements | undefined,
  hosts: readonly HostInventory[],
): AppStatus {
  const actors: ActorStatus[] = app.actors.map((spec) => {
    const plan = placed?.actors[spec.name];
    const version = specDigest(spec);
    const byHost = new Map<string, ActorHostStatus>();
    for (const p of plan?.placements ?? []) {
      byHost.set(p.hostId, { hostId: p.hostId, placed: p.count, running: 0, state: 'missing' });
    }
    let error: string | undefined;
    for (const h of hosts) {
      const a = h.actors.find((x) => x.name === spec.name && x.app === app.name);
      if (a === undefined) continue;
      const current = a.spec === undefined ? a.module === spec.module : a.spec === version;
      const ready =
        a.state !== 'running' || !current
          ? 0
          : a.instances === undefined
            ? 1
            : a.instances.filter((i) => i.state === 'ready').length;
      const row = byHost.get(h.hostId) ?? {
        hostId: h.hostId,
        placed: 0,
        running: 0,
        state: a.state,
      };
      row.running = ready;
      row.state = current ? a.state : `${a.state} (old version)`;
      if (a.error !== undefined) {
        row.error = a.error;
        error = a.error;
      }
      byHost.set(h.hostId, row);
    }
    const rows = [...byHost.values()].sort((a, b) => a.hostId.localeCompare(b.hostId));
    return {
      actor: spec.name,
      mode: spec.mode,
      wanted: plan?.wanted ?? (spec.daemon === true ? 0 : spec.instances),
      running: rows.reduce((n, r) => n + Math.min(r.running, r.placed), 0),
      hosts: rows,
      ...(plan === undefined
        ? { waiting: 'not placed yet (is a host with a scheduler running? see weft get hosts)' }
        : plan.waiting === undefined
          ? {}
          : { waiting: plan.waiting }),
      ...(error === undefined ? {} : { error }),
    };
  });
  let state: AppState = 'running';
  if (actors.some((a) => a.running < a.wanted || a.wanted === 0)) state = 'starting';
  // Failed: an actor failed to start where placed, or serves only an old version and says why.
  const failed = (h: ActorHostStatus) =>
    h.placed > 0 && (h.state === 'failed' || (h.running === 0 && h.error !== undefined));
  if (actors.some((a) => a.hosts.some(failed))) {
    state = 'failed';
  }
  if (actors.some((a) => a.waiting !== undefined)) state = 'waiting';
  return { app: app.name, version: app.version, state, actors };
}

/** The host whose scheduler holds the lease now, if any. */
export async function schedulerLeader(client: LatticeClient): Promise<string | undefined> {
  const e = await (await openLeases(client)).get('scheduler');
  if (e === null || e.operation !== 'PUT') return undefined;
  return (JSON.parse(e.string()) as { holder: string }).holder;
}
