/**
 * The scheduler: every host runs one as a candidate, and the one holding the lease (lease.ts)
 * turns applications into placements. It keeps the hosts it has heard from (heartbeats, starts,
 * stops, drains), plans every actor of every application against the live ones (plan.ts: pure,
 * stable, a fixed point of itself), and writes an application's placements only when they
 * change. Hosts watch the placements and run what is placed on them. A new leader starts from
 * what the store holds, so one killed mid-reconcile leaves nothing duplicated or lost: the plan
 * is recomputed from the same state and converges.
 */
import type { Logger } from 'pino';
import type { Subscription } from '@nats-io/transport-node';
import {
  AppStore,
  EventType,
  HostLiveness,
  PlacementStore,
  decode,
  openLeases,
  type AppPlacements,
  type DeployedApp,
  type HostInventory,
  type LatticeClient,
} from '../lattice/index.ts';
import { Lease } from './lease.ts';
import { planActors, type ActorWant, type HostView, type Placement } from './plan.ts';

export interface SchedulerOptions {
  client: LatticeClient;
  /** This candidate's name (its host id). */
  id: string;
  /** Hosts' heartbeat interval when they do not say (ms). */
  heartbeatMs: number;
  /** Lease time to live (ms); a standby takes over this long after the leader went silent. */
  leaseMs?: number;
  log: Logger;
}

interface KnownHost {
  view: HostView;
  draining: boolean;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #log: Logger;
  readonly #apps = new Map<string, DeployedApp>();
  readonly #placed = new Map<string, AppPlacements>();
  readonly #hosts = new HostLiveness<KnownHost>();
  #appStore!: AppStore;
  #placements!: PlacementStore;
  #lease!: Lease;
  #watches: { stop(): void }[] = [];
  #sub: Subscription | undefined;
  #tick: NodeJS.Timeout | undefined;
  #pending: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(o: SchedulerOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'scheduler' });
  }

  get leader(): boolean {
    return this.#lease?.leader ?? false;
  }

  async start(): Promise<void> {
    const { client } = this.#o;
    this.#appStore = await AppStore.open(client);
    this.#placements = await PlacementStore.open(client);
    this.#sub = client.nc.subscribe(client.subjects.events(), {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.#onEvent(msg.subject, decode(msg.data));
        } catch {
          // An event that cannot be read changes nothing.
        }
      },
    });
    this.#watches.push(
      await this.#appStore.watch((name, app) => {
        if (app === undefined) this.#apps.delete(name);
        else this.#apps.set(name, app);
        this.#schedule();
      }),
      await this.#placements.watch((name, p) => {
        if (p === undefined) this.#placed.delete(name);
        else this.#placed.set(name, p);
      }),
    );
    this.#lease = new Lease({
      kv: await openLeases(client),
      key: 'scheduler',
      holder: this.#o.id,
      ttlMs: this.#o.leaseMs ?? 3 * this.#o.heartbeatMs,
      log: this.#log,
      onChange: (leader) => {
        if (leader) void this.#seedHosts().then(() => this.#schedule());
      },
    });
    this.#lease.start();
    this.#tick = setInterval(() => this.#schedule(), this.#o.heartbeatMs);
    this.#tick.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#tick);
    clearTimeout(this.#pending);
    for (const w of this.#watches) w.stop();
    this.#sub?.unsubscribe();
    await this.#running.catch(() => undefined);
    await this.#lease?.stop();
  }

  /** Ask every host for its inventory: a new leader must not plan against an empty lattice. */
  async #seedHosts(): Promise<void> {
    const { client } = this.#o;
    const answers = await client
      .gather<HostInventory>(client.subjects.hostPing(), {}, 500)
      .catch(() => []);
    for (const inv of answers) this.#saw(inv);
  }

  #saw(inv: HostInventory): void {
    const known = this.#hosts.get(inv.hostId);
    const draining = inv.draining === true;
    const labelsChanged =
      known === undefined || JSON.stringify(known.view.labels) !== JSON.stringify(inv.labels);
    this.#hosts.saw(inv.hostId, inv.heartbeatMs ?? this.#o.heartbeatMs, {
      view: { hostId: inv.hostId, labels: inv.labels },
      draining,
    });
    if (labelsChanged || known?.draining !== draining) this.#schedule();
  }

  #onEvent(subject: string, data: unknown): void {
    const type = subject.slice(this.#o.client.subjects.events().length - 1);
    if (type === EventType.HostHeartbeat || type === EventType.HostStarted) {
      this.#saw(data as HostInventory);
    } else if (type === EventType.HostStopped || type === EventType.HostDraining) {
      const { hostId } = data as { hostId: string };
      const known = this.#hosts.get(hostId);
      if (type === EventType.HostStopped) this.#hosts.forget(hostId);
      else if (known !== undefined) known.draining = true;
      this.#schedule();
    }
  }

  /** Plan soon (changes often come in bursts), one plan at a time. */
  #schedule(): void {
    if (this.#stopped || this.#pending !== undefined || !this.leader) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      this.#running = this.#running
        .then(() => this.#reconcile())
        .catch((err: unknown) => {
          this.#log.warn({ err: (err as Error).message }, 'reconcile failed; trying again');
          this.#schedule();
        });
    }, 20);
  }

  /** The hosts placements may go to: heard from recently and not draining. */
  #liveHosts(): HostView[] {
    for (const { hostId, silentMs } of this.#hosts.expire()) {
      this.#log.warn(
        { hostId, silentMs },
        'host missed its heartbeats: taken for dead, its placements move',
      );
    }
    return [...this.#hosts.values()].filter((h) => !h.draining).map((h) => h.view);
  }

  async #reconcile(): Promise<void> {
    if (!this.leader) return;
    const hosts = this.#liveHosts();
    const wants: ActorWant[] = [];
    const current = new Map<string, Placement[]>();
    const apps = [...this.#apps.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const app of apps) {
      for (const a of app.actors) {
        wants.push({
          app: app.name,
          actor: a.name,
          mode: a.mode,
          instances: a.instances,
          daemon: a.daemon === true,
          ...(a.spread === undefined ? {} : { spread: a.spread }),
        });
        const was = this.#placed.get(app.name)?.actors[a.name]?.placements;
        if (was !== undefined) current.set(a.name, was);
      }
    }
    const plans = planActors(wants, hosts, current);
    for (const app of apps) {
      const next: AppPlacements = {
        app: app.name,
        version: app.version,
        actors: {},
        plannedBy: this.#o.id,
      };
      for (const p of plans) {
        if (p.app !== app.name) continue;
        next.actors[p.actor] = {
          wanted: p.wanted,
          placements: p.placements,
          ...(p.waiting === undefined ? {} : { waiting: p.waiting }),
        };
      }
      const before = this.#placed.get(app.name);
      if (before !== undefined && samePlacements(before, next)) continue;
      if (!this.leader) return;
      await this.#placements.put(next);
      this.#placed.set(app.name, next);
      this.#log.info(
        { app: app.name, version: app.version, actors: next.actors },
        'placements changed',
      );
    }
    const gone = [...this.#placed.keys()].filter((name) => !this.#apps.has(name));
    for (const name of gone) {
      if (!this.leader) return;
      await this.#placements.delete(name);
      this.#placed.delete(name);
    }
  }
}

function samePlacements(a: AppPlacements, b: AppPlacements): boolean {
  return a.version === b.version && JSON.stringify(a.actors) === JSON.stringify(b.actors);
}
