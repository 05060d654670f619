/**
 * `weft host`: joins a lattice, announces itself, heartbeats its inventory, answers ping and get,
 * runs a scheduler candidate (scheduler/), and runs the actors the scheduler places on it: a
 * wcgi actor once, a proxy actor with as many instances as placed here. Modules come from the
 * artifact store and are compiled once per digest and memory cap. On stop it drains: it says so
 * first (its placements move at once), takes no new invocations, lets those in flight finish.
 */
import { availableParallelism, hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  AppStore,
  ArtifactStore,
  DEFAULT_HEARTBEAT_MS,
  ErrorCode,
  EventType,
  Header,
  HostVerb,
  PlacementStore,
  SecretResolver,
  WeftError,
  assertIssuerKey,
  attachBody,
  LiveBody,
  offerLive,
  connectLattice,
  HealthServer,
  envReferences,
  receiveBody,
  secretsPublicKey,
  specDigest,
  unpack,
  verifyModule,
  type AppPlacements,
  type DeployedApp,
  type HostInventory,
  type InvokeReply,
  type InvokeRequest,
  type LatticeClient,
  type NatsAuth,
  type ResolvedActor,
} from '../lattice/index.ts';
import { prepareModule, prepareSharedMemoryModule } from './actor/prepare-module.ts';
import { ProxyActor, type SharedModule } from './actor/proxy-actor.ts';
import { WcgiActor, type LoadedModule, type LoadedTree } from './actor/wcgi-actor.ts';
import { WorkerPool } from './actor/worker-pool.ts';
import { Scheduler } from '../scheduler/scheduler.ts';
import { HostMetrics, hostReadiness } from './metrics.ts';
import { HostObserve } from './observe.ts';

const DEFAULT_DRAIN_GRACE_MS = 10_000;
/** How long a reply body stays offered for pulling (ms). */
const REPLY_STREAM_TTL_MS = 60_000;

export interface HostOptions {
  nats: string | string[];
  /** NATS credentials and TLS (secrets are never logged). */
  auth?: NatsAuth;
  lattice: string;
  log: Logger;
  hostId?: string;
  labels?: Record<string, string>;
  /** Worker threads for WCGI instances (default: available cores). */
  workers?: number;
  heartbeatMs?: number;
  /** Run a scheduler candidate (default true). */
  scheduler?: boolean;
  /** The scheduler lease's time to live (default three heartbeats). */
  leaseMs?: number;
  /** Draining: how long to wait for this host's actors to run elsewhere (default 10 s). */
  drainGraceMs?: number;
  /**
   * Issuers' public keys (nkeys account `A…` or operator `O…`) whose signed modules this host
   * runs; when set, any other module (unsigned, another issuer's, altered, expired) fails to
   * start with WEFT_ERR_UNTRUSTED. Default: none, and signatures are not checked.
   */
  trustedIssuers?: string[];
  /**
   * The lattice's secrets key, a curve seed (`SX…`), to open the secrets actors' env refers to
   * (`{ secret: NAME }`); without it such actors fail to start with WEFT_ERR_SECRET. Never logged.
   */
  secretsKey?: string;
  /** The variables `{ hostEnv: VAR }` may read (bin/weft.ts: the process's own); `WEFT_*` never. */
  environment?: Readonly<Record<string, string | undefined>>;
  /** Serve `/metrics`, `/livez`, `/readyz` here (port 0: a free one). Default: not served. */
  metrics?: { host: string; port: number };
}

interface Running {
  app: string;
  spec: ResolvedActor;
  /** JSON of the spec it was started with: a change means restart. */
  fingerprint: string;
  /** `specDigest` of that spec, reported in the inventory. */
  digest: string;
  state: 'starting' | 'running' | 'failed';
  error?: string;
  actor?: WcgiActor | ProxyActor;
  subs: Subscription[];
}

/** The status line of an actor, if something is wrong with it. */
function errorOf(r: Running): { error?: string } {
  const error = r.error ?? (r.actor instanceof ProxyActor ? r.actor.problem : undefined);
  return error === undefined ? {} : { error };
}

/** Keys of the modules and trees an actor holds in caches. */
function cacheKeys(actor: WcgiActor | ProxyActor): string[] {
  return [actor.module.key, ...actor.trees.map((t) => t.key)];
}

export function newHostId(): string {
  return `H${randomBytes(8).toString('hex').toUpperCase()}`;
}

export class Host {
  readonly hostId: string;
  readonly labels: Record<string, string>;
  readonly #opts: HostOptions;
  readonly #log: Logger;
  readonly #startedAt = new Date();
  #client!: LatticeClient;
  #artifacts!: ArtifactStore;
  #apps!: AppStore;
  #placementStore!: PlacementStore;
  /** The applications and their placements, as last seen. */
  readonly #appsByName = new Map<string, DeployedApp>();
  readonly #placements = new Map<string, AppPlacements>();
  #scheduler: Scheduler | undefined;
  #draining = false;
  #pool!: WorkerPool;
  /** Actors' output for `weft logs`, invocations for `weft spy`, and traces. */
  #observe!: HostObserve;
  #secrets!: SecretResolver;
  #subs: Subscription[] = [];
  #watches: { stop(): void }[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  /** Actors by name (names are unique in a lattice). */
  readonly #running = new Map<string, Running>();
  /** Compiled modules by digest and memory cap: compile each once. */
  readonly #compiled = new Map<string, Promise<LoadedModule>>();
  readonly #compiledShared = new Map<string, Promise<SharedModule>>();
  /** Serializes reconciles so that two quick deploys apply in order. */
  #reconciling: Promise<void> = Promise.resolve();
  readonly #metrics = new HostMetrics({
    actors: () => this.#running.values(),
    workerQueue: () => this.#pool?.queued ?? 0,
    readiness: () => this.readiness(),
  });
  #health: HealthServer | undefined;
  #started = false;

  constructor(opts: HostOptions) {
    this.#opts = opts;
    this.hostId = opts.hostId ?? newHostId();
    this.labels = { hostname: hostname(), ...opts.labels };
    this.#log = opts.log.child({ component: 'host', hostId: this.hostId });
    for (const key of opts.trustedIssuers ?? []) assertIssuerKey(key);
    if (opts.secretsKey !== undefined) secretsPublicKey(opts.secretsKey);
  }

  get client(): LatticeClient {
    return this.#client;
  }

  async start(): Promise<void> {
    this.#client = await connectLattice({
      servers: this.#opts.nats,
      lattice: this.#opts.lattice,
      name: `weft-host-${this.hostId}`,
      ...(this.#opts.auth === undefined ? {} : { auth: this.#opts.auth }),
    });
    this.#client.onPermissionDenied((err) =>
      this.#log.error({ err: err.message }, 'NATS refused this host a permission it needs'),
    );
    this.#metrics.nats.watch(this.#client);
    this.#pool = new WorkerPool({
      size: this.#opts.workers ?? availableParallelism(),
      log: this.#log,
    });
    this.#artifacts = await ArtifactStore.open(this.#client);
    this.#apps = await AppStore.open(this.#client);
    this.#placementStore = await PlacementStore.open(this.#client);
    this.#secrets = new SecretResolver({
      client: this.#client,
      seed: this.#opts.secretsKey,
      environment: this.#opts.environment,
      onChange: (name) => this.#secretChanged(name),
    });
    const s = this.#client.subjects;
    await this.#refuseDuplicateId();
    const m = this.#opts.metrics;
    if (m !== undefined) this.#health = await HealthServer.listen(this.#metrics, m.host, m.port);
    this.#subs.push(
      this.#client.serve(s.hostPing(), () => this.inventory()),
      this.#client.serve(s.hostCtl(this.hostId, HostVerb.Get), () => this.inventory()),
    );
    this.#observe = new HostObserve({
      client: this.#client,
      hostId: this.hostId,
      runs: (actor) => this.#running.get(actor)?.state === 'running',
    });
    this.#observe.start();
    const reconcile = (name: string): void => this.#reconcile(name);
    this.#watches.push(
      await this.#apps.watch((name, app) => {
        if (app === undefined) this.#appsByName.delete(name);
        else this.#appsByName.set(name, app);
        reconcile(name);
      }),
      await this.#placementStore.watch((name, p) => {
        if (p === undefined) this.#placements.delete(name);
        else this.#placements.set(name, p);
        reconcile(name);
      }),
    );
    const beat = this.#opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#heartbeat = setInterval(() => {
      this.#client.publish(s.event(EventType.HostHeartbeat), this.inventory());
    }, beat);
    this.#heartbeat.unref();
    this.#client.publish(s.event(EventType.HostStarted), this.inventory());
    if (this.#opts.scheduler !== false) {
      this.#scheduler = new Scheduler({
        client: this.#client,
        id: this.hostId,
        heartbeatMs: beat,
        ...(this.#opts.leaseMs === undefined ? {} : { leaseMs: this.#opts.leaseMs }),
        log: this.#log,
      });
      await this.#scheduler.start();
    }
    this.#started = true;
    this.#log.info(
      {
        lattice: this.#opts.lattice,
        labels: this.labels,
        workers: this.#pool.size,
        trustedIssuers: this.#opts.trustedIssuers ?? [],
        ...(this.#secrets.publicKey === undefined ? {} : { secretsKey: this.#secrets.publicKey }),
        ...(this.#health === undefined ? {} : { metrics: this.#health.url }),
      },
      'host started',
    );
    if (this.#secrets.publicKey !== undefined) {
      const warning = await this.#secrets
        .checkPublishedKey()
        .catch((err: unknown) => `cannot read the secret store: ${(err as Error).message}`);
      if (warning !== undefined) this.#log.warn(warning);
    }
  }

  #reconcile(name: string): void {
    this.#reconciling = this.#reconciling.then(() => this.#reconcileApp(name));
  }

  /** Actors whose env reads secret `name` start again with its new value (or fail without). */
  #secretChanged(name: string): void {
    const apps = new Set<string>();
    for (const r of this.#running.values()) {
      if (!envReferences(r.spec.env).secrets.includes(name)) continue;
      r.fingerprint = '';
      apps.add(r.app);
    }
    for (const app of apps) {
      this.#log.info({ app, secret: name }, 'secret changed; restarting the actors that use it');
      this.#reconcile(app);
    }
  }

  /** Two hosts with one id would take each other's placements and invocations. */
  async #refuseDuplicateId(): Promise<void> {
    const s = this.#client.subjects;
    const other = await this.#client
      .request<HostInventory>(s.hostCtl(this.hostId, HostVerb.Get), {}, { timeoutMs: 500 })
      .catch(() => undefined);
    if (other !== undefined) {
      await this.#client.close();
      throw new WeftError(
        ErrorCode.HostIdTaken,
        `host id ${this.hostId} is already in lattice '${this.#opts.lattice}' (on ${other.hostname}, up ${Math.round(other.uptimeMs / 1000)} s): give this host another --host-id`,
        { details: { hostId: this.hostId, hostname: other.hostname } },
      );
    }
  }

  /** Where `/metrics`, `/livez` and `/readyz` are served (`metrics` option), if anywhere. */
  get metricsUrl(): string | undefined {
    return this.#health?.url;
  }

  /** `/readyz`: started, connected, not draining, and no actor placed here still starting. */
  readiness(): ReturnType<typeof hostReadiness> {
    return hostReadiness({
      started: this.#started,
      connected: this.#metrics.nats.connected,
      draining: this.#draining,
      placed: [...this.#placements.keys()].flatMap((app) => [...this.#placedHere(app).keys()]),
      actors: this.#running,
    });
  }

  inventory(): HostInventory {
    return {
      hostId: this.hostId,
      lattice: this.#opts.lattice,
      hostname: hostname(),
      labels: this.labels,
      version: '0.1.0',
      startedAt: this.#startedAt.toISOString(),
      uptimeMs: Date.now() - this.#startedAt.getTime(),
      workers: this.#pool?.size ?? 0,
      workersReplaced: this.#pool?.replaced ?? 0,
      draining: this.#draining,
      heartbeatMs: this.#opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      actors: [...this.#running.values()].map((r) => ({
        app: r.app,
        name: r.spec.name,
        module: r.spec.module,
        mode: r.spec.mode,
        spec: r.digest,
        state: r.state,
        ...errorOf(r),
        ...(r.actor instanceof ProxyActor ? { instances: r.actor.instances } : {}),
        invocations: r.actor?.stats.invocations ?? 0,
        errors: r.actor?.stats.errors ?? 0,
        inFlight: r.actor?.stats.inFlight ?? 0,
      })),
    };
  }

  /**
   * Drain: say so (the scheduler moves this host's placements at once), hand the scheduler lease
   * on, stop taking invocations, let those in flight finish, announce the stop, disconnect.
   */
  async stop(): Promise<void> {
    this.#draining = true;
    this.#client.publish(this.#client.subjects.event(EventType.HostDraining), {
      hostId: this.hostId,
    });
    clearInterval(this.#heartbeat);
    await this.#scheduler?.stop();
    await this.#awaitReplacements();
    for (const w of this.#watches) w.stop();
    await this.#reconciling.catch(() => undefined);
    await this.#secrets.stop();
    const running = [...this.#running.values()];
    this.#running.clear();
    await Promise.allSettled(running.map((r) => this.#stopActor(r)));
    this.#client.publish(this.#client.subjects.event(EventType.HostStopped), {
      hostId: this.hostId,
    });
    for (const sub of this.#subs) sub.unsubscribe();
    this.#observe.stop();
    await this.#pool.close();
    await this.#client.close();
    await this.#health?.close();
    this.#log.info('host stopped');
  }

  /**
   * While draining, keep serving until each actor running here is placed elsewhere and running
   * there (or cannot be placed elsewhere), up to the grace period: its invocations then move
   * over without a gap.
   */
  async #awaitReplacements(): Promise<void> {
    const deadline = Date.now() + (this.#opts.drainGraceMs ?? DEFAULT_DRAIN_GRACE_MS);
    const s = this.#client.subjects;
    while (this.#running.size > 0 && Date.now() < deadline) {
      const elsewhere = new Set<string>();
      for (const h of await this.#client.gather<HostInventory>(s.hostPing(), {}, 200)) {
        if (h.hostId === this.hostId) continue;
        for (const a of h.actors) if (a.state === 'running') elsewhere.add(a.name);
      }
      const waiting = [...this.#running.values()].filter((r) => {
        if (elsewhere.has(r.spec.name)) return false;
        const placed = this.#placements.get(r.app)?.actors[r.spec.name]?.placements ?? [];
        // Placed on no other host (nowhere to go): nothing to wait for.
        return placed.some((p) => p.hostId !== this.hostId);
      });
      if (waiting.length === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** What of application `name` is placed here: its actors' specs, proxy instances as placed. */
  #placedHere(name: string): Map<string, ResolvedActor> {
    const app = this.#appsByName.get(name);
    const placed = this.#placements.get(name);
    const out = new Map<string, ResolvedActor>();
    if (app === undefined || placed === undefined) return out;
    for (const spec of app.actors) {
      const count =
        placed.actors[spec.name]?.placements.find((p) => p.hostId === this.hostId)?.count ?? 0;
      if (count > 0)
        out.set(spec.name, spec.mode === 'proxy' ? { ...spec, instances: count } : spec);
    }
    return out;
  }

  async #reconcileApp(name: string): Promise<void> {
    // Draining: stop() stops every actor once it runs elsewhere.
    if (this.#draining) return;
    const wanted = this.#placedHere(name);
    for (const [actorName, r] of this.#running) {
      if (r.app === name && !wanted.has(actorName)) {
        this.#running.delete(actorName);
        await this.#stopActor(r);
      }
    }
    for (const spec of wanted.values()) {
      const old = this.#running.get(spec.name);
      if (old && old.fingerprint === JSON.stringify(spec)) continue;
      // The new version starts before the old one stops, so the actor keeps being served; a
      // version that fails to start leaves the old one serving, and the status says why.
      const next = await this.#startActor(name, spec);
      if (next.state === 'failed' && old?.state === 'running') {
        old.error = `update to ${spec.module} failed: ${next.error ?? 'unknown error'}`;
        continue;
      }
      this.#running.set(spec.name, next);
      if (old) await this.#stopActor(old);
    }
  }

  async #startActor(app: string, spec: ResolvedActor): Promise<Running> {
    const r: Running = {
      app,
      spec,
      fingerprint: JSON.stringify(spec),
      digest: specDigest(spec),
      state: 'starting',
      subs: [],
    };
    const log = this.#log.child({ actor: spec.name, app });
    const t0 = performance.now();
    try {
      // Secrets first: an actor that cannot have its env fails before anything is loaded.
      const env = await this.#secrets.resolve(spec.name, spec.env);
      const trees: LoadedTree[] = [];
      for (const f of spec.files) {
        const bundle = unpack<{ entries: LoadedTree['entries'] }>(
          await this.#artifacts.get(f.digest),
        );
        trees.push({ key: f.digest, guest: f.guest, entries: bundle.entries });
      }
      let actor: WcgiActor | ProxyActor;
      if (spec.mode === 'proxy') {
        const module = await this.#loadSharedModule(spec);
        const observer = this.#metrics.observer(app, spec.name, spec.mode);
        const output = this.#observe.actorLog(app, spec.name, log);
        actor = new ProxyActor({ app, spec, env, module, trees, log, observer, output });
        r.actor = actor;
        // Serving starts only once every instance listens; a failure stops it and says why.
        await actor.start();
      } else {
        const module = await this.#loadModule(spec);
        const observer = this.#metrics.observer(app, spec.name, spec.mode);
        const output = this.#observe.actorLog(app, spec.name, log);
        const pool = this.#pool;
        actor = new WcgiActor({ app, spec, env, module, trees, pool, log, observer, output });
        r.actor = actor;
      }
      const s = this.#client.subjects;
      const handler = (body: unknown, msg: Msg) =>
        this.#invoke(
          actor,
          body as InvokeRequest,
          msg.headers?.get(Header.Deadline),
          msg.headers?.get(Header.TraceParent),
        );
      r.subs.push(
        this.#client.serve(s.rpc(spec.name), handler, { queue: spec.name, ack: this.hostId }),
        this.#client.serve(s.rpcHost(spec.name, this.hostId), handler, { ack: this.hostId }),
      );
      await this.#client.nc.flush();
      r.state = 'running';
      this.#client.publish(s.event(EventType.ActorStarted), {
        hostId: this.hostId,
        app,
        actor: spec.name,
      });
      log.info({ module: spec.module, ms: Math.round(performance.now() - t0) }, 'actor started');
    } catch (err) {
      r.state = 'failed';
      r.error = (err as Error).message;
      this.#client.publish(this.#client.subjects.event(EventType.ActorFailed), {
        hostId: this.hostId,
        app,
        actor: spec.name,
        error: r.error,
      });
      log.error({ err: r.error }, 'actor failed to start');
    }
    return r;
  }

  /** Drain an actor's subscriptions (in-flight invocations finish), then free what it alone used. */
  async #stopActor(r: Running): Promise<void> {
    await Promise.allSettled(r.subs.map((s) => s.drain()));
    // Drained subscriptions take no new invocations; let those in flight finish (up to the
    // actor's own timeout, after which the worker pool has failed them anyway).
    const deadline = Date.now() + r.spec.limits.timeoutMs + 1_000;
    while (r.actor && r.actor.stats.inFlight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (r.actor instanceof ProxyActor) await r.actor.stop();
    const inUse = new Set(
      [...this.#running.values()].flatMap((x) => (x.actor ? cacheKeys(x.actor) : [])),
    );
    if (r.actor) {
      for (const key of cacheKeys(r.actor)) {
        if (inUse.has(key)) continue;
        this.#pool.forget(key);
        this.#compiled.delete(key);
        this.#compiledShared.delete(key);
      }
    }
    this.#client.publish(this.#client.subjects.event(EventType.ActorStopped), {
      hostId: this.hostId,
      app: r.app,
      actor: r.spec.name,
    });
    this.#log.info({ actor: r.spec.name, app: r.app }, 'actor stopped');
  }

  #loadModule(spec: ResolvedActor): Promise<LoadedModule> {
    const key = `${spec.module}@${spec.limits.memoryMiB}`;
    let p = this.#compiled.get(key);
    if (!p) {
      p = (async () => {
        const bytes = await this.#fetchVerified(spec);
        const prepared = prepareModule(
          bytes,
          spec.limits.memoryMiB,
          `actor '${spec.name}' (${spec.module})`,
        );
        const module = await WebAssembly.compile(prepared.bytes);
        return {
          key,
          module,
          ...(prepared.memory ? { memory: prepared.memory } : {}),
          ...(prepared.reuse ? { reuse: prepared.reuse } : {}),
        };
      })();
      this.#compiled.set(key, p);
      p.catch(() => this.#compiled.delete(key));
    }
    return p;
  }

  /**
   * The module's bytes from the artifact store, checked against the trusted issuers (if any)
   * before anything compiles them. The check runs when a module is loaded into the cache: a
   * signature that expires while an actor runs stops only the next load.
   */
  async #fetchVerified(spec: ResolvedActor): Promise<Uint8Array> {
    const bytes = await this.#artifacts.get(spec.module);
    const trusted = this.#opts.trustedIssuers ?? [];
    if (trusted.length === 0) return bytes;
    try {
      verifyModule(bytes, trusted, new Date(), `actor '${spec.name}' (${spec.module})`);
    } catch (err) {
      // The code leads the message: it is what `weft status` and `weft get actors` show.
      if (err instanceof WeftError && err.code === ErrorCode.Untrusted) {
        throw new WeftError(err.code, `${err.code}: ${err.message}`, { details: err.details });
      }
      throw err;
    }
    return bytes;
  }

  /** The module with its memory made an imported shared one, for the WASIX runtime. */
  #loadSharedModule(spec: ResolvedActor): Promise<SharedModule> {
    const key = `${spec.module}@${spec.limits.memoryMiB}@shared`;
    let p = this.#compiledShared.get(key);
    if (!p) {
      p = (async () => {
        const bytes = await this.#fetchVerified(spec);
        const prepared = prepareSharedMemoryModule(
          bytes,
          spec.limits.memoryMiB,
          `actor '${spec.name}' (${spec.module})`,
        );
        return { key, module: await WebAssembly.compile(prepared.bytes), memory: prepared.memory };
      })();
      this.#compiledShared.set(key, p);
      p.catch(() => this.#compiledShared.delete(key));
    }
    return p;
  }

  async #invoke(
    actor: WcgiActor | ProxyActor,
    req: InvokeRequest,
    deadlineHeader: string | undefined,
    traceparent: string | undefined,
  ): Promise<InvokeReply> {
    const { limits } = actor.spec;
    const callerDeadline = Number(deadlineHeader);
    const ownDeadline = Date.now() + limits.timeoutMs;
    const deadline = Number.isFinite(callerDeadline)
      ? Math.min(callerDeadline, ownDeadline)
      : ownDeadline;
    const record = this.#metrics.invocation(actor.app, actor.spec.name, actor.spec.mode);
    const watch = this.#observe.invocation(actor.app, actor.spec.name, req, traceparent);
    try {
      const body = await receiveBody(this.#client, req, {
        timeoutMs: limits.timeoutMs,
        maxBytes: limits.maxRequestBytes,
        tooLarge: ErrorCode.RequestTooLarge,
      });
      if (body.length > limits.maxRequestBytes) {
        throw new WeftError(
          ErrorCode.RequestTooLarge,
          `request body over ${limits.maxRequestBytes} bytes`,
        );
      }
      record.received(body.length);
      const res = await actor.invoke(req.head, body, req.invocationId, deadline, watch.traceparent);
      record.ok(res.body);
      watch.ok(res.head.status);
      return {
        head: res.head,
        ...(res.body instanceof LiveBody
          ? { bodyStream: offerLive(this.#client, res.body, REPLY_STREAM_TTL_MS) }
          : attachBody(this.#client, res.body, REPLY_STREAM_TTL_MS)),
        hostId: this.hostId,
        timing: { startUs: res.startUs, runUs: res.runUs },
      };
    } catch (err) {
      record.failed(err);
      watch.failed(err);
      const ids = { invocationId: req.invocationId, hostId: this.hostId, traceId: watch.traceId };
      // Tie the error to this invocation, host and trace, keeping its code.
      if (err instanceof WeftError) {
        throw new WeftError(err.code, err.message, { details: { ...err.details, ...ids } });
      }
      this.#log.error({ err, ...ids }, 'invocation failed');
      throw new WeftError(ErrorCode.Internal, 'internal host error', { details: ids });
    }
  }
}
