/**
 * What the dashboard shows, kept up to date from the lattice: hosts from their heartbeats
 * (alive while they beat, as the scheduler judges them), applications and placements from their
 * buckets' watches, routes from the route table, and each actor's request and error rates from
 * the growth of the hosts' counters (rates.ts). Nothing here asks the hosts anything: following
 * the lattice costs the same with one page open or none.
 *
 * A gateway's NATS user may read the route table and host events only (docs/security.md): the
 * applications and placements are then left out, with a note saying why, and what the hosts
 * report about their actors is still shown.
 */
import type { Logger } from 'pino';
import {
  AppStore,
  DEFAULT_HEARTBEAT_MS,
  ErrorCode,
  EventType,
  HostLiveness,
  PlacementStore,
  RouteStore,
  decode,
  statusOf,
  WeftError,
  type ActorHostStatus,
  type AppPlacements,
  type AppState,
  type DeployedApp,
  type HostInventory,
  type LatticeClient,
  type RouteEntry,
} from '../../../lattice/index.ts';
import { RateRing, growth, type Counters } from './rates.ts';

/** The chart window: ten minutes of five-second buckets. */
export const DEFAULT_WINDOW_MS = 10 * 60_000;
export const DEFAULT_STEP_MS = 5_000;
/** The "now" rates are the mean of the last buckets covering this long (ms). */
const RECENT_MS = 10_000;
/** How soon a watch that failed (JetStream unavailable) is tried again (ms). */
const FOLLOW_RETRY_MS = 5_000;

export interface HostView {
  hostId: string;
  hostname: string;
  labels: Record<string, string>;
  version: string;
  state: 'ready' | 'draining';
  uptimeMs: number;
  workers: number;
  workersReplaced: number;
  /** Invocations running on it now, over all its actors. */
  inFlight: number;
  actors: number;
  invocations: number;
  errors: number;
  /** Per-second rates over the last ten seconds. */
  reqPerSec: number;
  errPerSec: number;
  /** When its last heartbeat arrived (ms since the epoch). */
  lastSeen: number;
}

export interface ActorHostView {
  hostId: string;
  /** Instances the scheduler placed there; absent when placements cannot be read. */
  placed?: number;
  /** Instances running the current version there. */
  running: number;
  state: string;
  error?: string;
}

export interface ActorView {
  /** `app/actor`: unique in the lattice. */
  key: string;
  app: string;
  actor: string;
  mode: string;
  /** Instances wanted, when the application can be read. */
  wanted?: number;
  running: number;
  hosts: ActorHostView[];
  /** Why fewer are placed than wanted. */
  waiting?: string;
  error?: string;
  invocations: number;
  errors: number;
  inFlight: number;
  reqPerSec: number;
  errPerSec: number;
  /** Per-second rates of each chart bucket, oldest first. */
  req: number[];
  err: number[];
}

export interface AppView {
  name: string;
  /** Absent when the application bucket cannot be read (only host reports are known). */
  version?: string;
  deployedAt?: string;
  state: AppState | 'unknown';
  actors: string[];
}

export interface DashboardSnapshot {
  lattice: string;
  /** When it was taken (ms since the epoch). */
  at: number;
  /** Whether this process is connected to NATS now. */
  connected: boolean;
  /** What cannot be shown, and why. */
  notes: string[];
  hosts: HostView[];
  apps: AppView[];
  actors: ActorView[];
  routes: RouteEntry[];
  /** The charts' buckets: `points` of `stepMs`, the last one ending at `endMs`. */
  chart: { stepMs: number; points: number; endMs: number };
}

export interface CollectorOptions {
  log: Logger;
  /** How far back the charts go (ms), default 10 minutes. */
  windowMs?: number;
  /** One chart point (ms), default 5 s. */
  stepMs?: number;
}

interface HostEntry {
  inventory: HostInventory;
  /** When its last heartbeat arrived, and the counters it reported, by actor key. */
  seenAt: number;
  counters: Map<string, Counters>;
}

const keyOf = (app: string, actor: string) => `${app}/${actor}`;

export class LatticeCollector {
  readonly #log: Logger;
  readonly #stepMs: number;
  readonly #points: number;
  readonly #hosts = new HostLiveness<HostEntry>();
  readonly #apps = new Map<string, DeployedApp>();
  readonly #placements = new Map<string, AppPlacements>();
  readonly #routes = new Map<string, RouteEntry[]>();
  readonly #actorRates = new Map<string, RateRing>();
  readonly #hostRates = new Map<string, RateRing>();
  readonly #notes = new Map<string, string>();
  readonly #stops: (() => void)[] = [];
  #client: LatticeClient | undefined;
  #lattice = '';
  /** False while the NATS connection is down (nats.js reconnects by itself). */
  #linkUp = false;
  #placementsReadable = false;
  #followingAll: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: CollectorOptions) {
    this.#log = opts.log;
    this.#stepMs = opts.stepMs ?? DEFAULT_STEP_MS;
    this.#points = Math.max(2, Math.round((opts.windowMs ?? DEFAULT_WINDOW_MS) / this.#stepMs));
  }

  /**
   * Follow `client`'s lattice: host events and the route table, which every role that runs a
   * gateway may read. The rest waits for `followAll`.
   */
  async attach(client: LatticeClient): Promise<void> {
    this.#client = client;
    this.#lattice = client.subjects.lattice;
    this.#linkUp = true;
    void (async () => {
      for await (const s of client.nc.status()) {
        if (s.type === 'disconnect') this.#linkUp = false;
        else if (s.type === 'reconnect') this.#linkUp = true;
      }
    })().catch(() => undefined);
    const prefix = client.subjects.events().length - 1;
    const sub = client.nc.subscribe(client.subjects.events(), {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.#onEvent(msg.subject.slice(prefix), msg.data);
        } catch (e) {
          this.#log.debug({ err: (e as Error).message }, 'dashboard: event not understood');
        }
      },
    });
    this.#stops.push(() => sub.unsubscribe());
    await this.#follow('routes', async () =>
      (await RouteStore.open(client)).watch((app, routes) => {
        if (routes === undefined) this.#routes.delete(app);
        else this.#routes.set(app, routes);
      }),
    );
  }

  /**
   * Also follow the applications and placements, and ping the hosts (else they appear with their
   * next heartbeat); once, after `attach`. A gateway's NATS user may do none of these
   * (docs/security.md): a gateway calls this only when a page is looked at, so that a gateway
   * nobody looks at never tries, and NATS never reports it refused.
   */
  followAll(): Promise<void> {
    const client = this.#client;
    if (client === undefined) return Promise.resolve();
    this.#followingAll ??= (async () => {
      void client
        .gather<HostInventory>(client.subjects.hostPing(), {}, 300)
        .then((hosts) => {
          for (const h of hosts) if (this.#hosts.get(h.hostId) === undefined) this.#sawHost(h);
        })
        .catch(() => undefined);
      await Promise.all([
        this.#follow('applications', async () =>
          (await AppStore.open(client)).watch((name, app) => {
            if (app === undefined) this.#apps.delete(name);
            else this.#apps.set(name, app);
          }),
        ),
        this.#follow('placements', async () => {
          const w = await (
            await PlacementStore.open(client)
          ).watch((name, p) => {
            if (p === undefined) this.#placements.delete(name);
            else this.#placements.set(name, p);
          });
          this.#placementsReadable = true;
          return w;
        }),
      ]);
    })();
    return this.#followingAll;
  }

  /**
   * Start a watch; on failure, note why, and try again every FOLLOW_RETRY_MS unless NATS refused
   * the permission (that will not change).
   */
  async #follow(what: string, watch: () => Promise<{ stop(): void }>): Promise<void> {
    while (!this.#stopped) {
      try {
        const w = await watch();
        if (this.#stopped) w.stop();
        else this.#stops.push(() => w.stop());
        this.#notes.delete(what);
        return;
      } catch (err) {
        const message = (err as Error).message;
        const refused = err instanceof WeftError && err.code === ErrorCode.Unauthorized;
        this.#notes.set(
          what,
          refused
            ? `${what} are not shown: this process's NATS user may not read them (${message}); weft ui with operator credentials shows them`
            : `${what} are not shown yet: ${message}`,
        );
        this.#log.warn({ err: message, what }, 'dashboard: cannot follow a bucket');
        if (refused) return;
        await new Promise((r) => setTimeout(r, FOLLOW_RETRY_MS).unref());
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#stops.splice(0)) s();
  }

  #onEvent(type: string, data: Uint8Array): void {
    switch (type) {
      case EventType.HostHeartbeat:
      case EventType.HostStarted:
        this.#sawHost(decode<HostInventory>(data));
        return;
      case EventType.HostStopped:
        this.#forgetHost(decode<{ hostId: string }>(data).hostId);
        return;
      case EventType.HostDraining: {
        const e = this.#hosts.get(decode<{ hostId: string }>(data).hostId);
        if (e !== undefined) e.inventory = { ...e.inventory, draining: true };
        return;
      }
      default:
    }
  }

  #sawHost(inv: HostInventory, now = Date.now()): void {
    const before = this.#hosts.get(inv.hostId);
    const counters = new Map<string, Counters>();
    const hostGrowth: Counters = { invocations: 0, errors: 0 };
    for (const a of inv.actors) {
      const key = keyOf(a.app, a.name);
      const c = { invocations: a.invocations, errors: a.errors };
      counters.set(key, c);
      // A host's first report is where its counters start from, not growth.
      if (before === undefined) continue;
      const g = growth(before.counters.get(key), c);
      this.#ring(this.#actorRates, key).add(before.seenAt, now, g);
      hostGrowth.invocations += g.invocations;
      hostGrowth.errors += g.errors;
    }
    if (before !== undefined) {
      this.#ring(this.#hostRates, inv.hostId).add(before.seenAt, now, hostGrowth);
    }
    this.#hosts.saw(inv.hostId, inv.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, {
      inventory: inv,
      seenAt: now,
      counters,
    });
  }

  #forgetHost(hostId: string): void {
    this.#hosts.forget(hostId);
    this.#hostRates.delete(hostId);
  }

  #ring(map: Map<string, RateRing>, key: string): RateRing {
    let r = map.get(key);
    if (r === undefined) {
      r = new RateRing(this.#stepMs, this.#points);
      map.set(key, r);
    }
    return r;
  }

  /** Everything the page shows, as of `now`. */
  snapshot(now = Date.now()): DashboardSnapshot {
    for (const { hostId } of this.#hosts.expire(now)) this.#hostRates.delete(hostId);
    const entries = [...this.#hosts.values()].sort((a, b) =>
      a.inventory.hostId.localeCompare(b.inventory.hostId),
    );
    const inventories = entries.map((e) => e.inventory);
    // The charts end where every live host has reported: later buckets are not complete yet.
    const covered = entries.length === 0 ? now : Math.min(...entries.map((e) => e.seenAt));
    const endMs = Math.floor(covered / this.#stepMs) * this.#stepMs;
    const recent = Math.max(1, Math.round(RECENT_MS / this.#stepMs));
    const rateOf = (r: RateRing | undefined) => r?.rate(endMs, recent) ?? { req: 0, err: 0 };

    const hosts: HostView[] = entries.map(({ inventory: h, seenAt }) => {
      const r = rateOf(this.#hostRates.get(h.hostId));
      return {
        hostId: h.hostId,
        hostname: h.hostname,
        labels: h.labels,
        version: h.version,
        state: h.draining === true ? 'draining' : 'ready',
        uptimeMs: h.uptimeMs + (now - seenAt),
        workers: h.workers,
        workersReplaced: h.workersReplaced,
        inFlight: h.actors.reduce((n, a) => n + a.inFlight, 0),
        actors: h.actors.length,
        invocations: h.actors.reduce((n, a) => n + a.invocations, 0),
        errors: h.actors.reduce((n, a) => n + a.errors, 0),
        reqPerSec: r.req,
        errPerSec: r.err,
        lastSeen: seenAt,
      };
    });

    const actors = new Map<string, ActorView>();
    const apps: AppView[] = [];
    const view = (app: string, actor: string, mode: string): ActorView => {
      const key = keyOf(app, actor);
      let v = actors.get(key);
      if (v === undefined) {
        const ring = this.#actorRates.get(key);
        const r = rateOf(ring);
        const s = ring?.series(endMs) ?? {
          req: new Array<number>(this.#points).fill(0),
          err: new Array<number>(this.#points).fill(0),
        };
        v = {
          key,
          app,
          actor,
          mode,
          running: 0,
          hosts: [],
          invocations: 0,
          errors: 0,
          inFlight: 0,
          reqPerSec: r.req,
          errPerSec: r.err,
          req: s.req,
          err: s.err,
        };
        actors.set(key, v);
      }
      return v;
    };

    for (const app of [...this.#apps.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const placed = this.#placements.get(app.name);
      const st = statusOf(app, placed, inventories);
      apps.push({
        name: app.name,
        version: app.version,
        deployedAt: app.deployedAt,
        state: this.#placementsReadable ? st.state : 'unknown',
        actors: app.actors.map((a) => a.name),
      });
      for (const a of st.actors) {
        const v = view(app.name, a.actor, a.mode);
        v.running = a.running;
        v.hosts = a.hosts.map((h: ActorHostStatus) => ({
          hostId: h.hostId,
          ...(this.#placementsReadable ? { placed: h.placed } : {}),
          running: h.running,
          state: h.state,
          ...(h.error === undefined ? {} : { error: h.error }),
        }));
        if (this.#placementsReadable) {
          v.wanted = a.wanted;
          if (a.waiting !== undefined) v.waiting = a.waiting;
        }
        if (a.error !== undefined) v.error = a.error;
      }
    }

    // What the hosts report: counters, and actors of applications this process cannot read (or
    // that are being undeployed).
    const fromHosts = new Set<string>();
    for (const h of inventories) {
      for (const a of h.actors) {
        const key = keyOf(a.app, a.name);
        const known = this.#apps.get(a.app)?.actors.some((x) => x.name === a.name) === true;
        const v = view(a.app, a.name, a.mode);
        v.invocations += a.invocations;
        v.errors += a.errors;
        v.inFlight += a.inFlight;
        if (known) continue;
        fromHosts.add(a.app);
        const running =
          a.state === 'running' ? (a.instances?.filter((i) => i.state === 'ready').length ?? 1) : 0;
        v.running += running;
        v.hosts.push({
          hostId: h.hostId,
          running,
          state: a.state,
          ...(a.error === undefined ? {} : { error: a.error }),
        });
        if (a.error !== undefined) v.error = a.error;
        actors.set(key, v);
      }
    }
    for (const name of [...fromHosts].sort()) {
      apps.push({
        name,
        state: 'unknown',
        actors: [...actors.values()].filter((a) => a.app === name).map((a) => a.actor),
      });
    }

    // Rates of actors gone from every host and application are kept for the window only.
    for (const [key, ring] of this.#actorRates) {
      if (!actors.has(key) && ring.lastAddedMs < now - this.#points * this.#stepMs) {
        this.#actorRates.delete(key);
      }
    }

    const notes = [...this.#notes.values()];
    if (this.#client === undefined) notes.unshift('not connected to the lattice yet');
    return {
      lattice: this.#lattice,
      at: now,
      connected: this.#client !== undefined && this.#linkUp && !this.#client.nc.isClosed(),
      notes,
      hosts,
      apps,
      actors: [...actors.values()].sort((a, b) => a.key.localeCompare(b.key)),
      routes: [...this.#routes.values()]
        .flat()
        .sort((a, b) => a.host.localeCompare(b.host) || a.path.localeCompare(b.path)),
      chart: { stepMs: this.#stepMs, points: this.#points, endMs },
    };
  }
}
