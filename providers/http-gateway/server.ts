/**
 * `weft gateway`: HTTP in, invocations out. Watches the route table in the lattice, matches each
 * request, reads its body under the actor's limit, and invokes the actor's queue subject with a
 * deadline so NATS spreads the load across every host running it. Errors are JSON
 * `{ statusCode, code, error, message, invocationId, traceId }`. The gateway is stateless: run
 * any number. Each request is one hop of a W3C trace (trace.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nuid } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  ErrorCode,
  HealthServer,
  RouteStore,
  WeftError,
  connectLattice,
  invoke,
  normalizeRequestPath,
  headerValue,
  readBody,
  replyError,
  requestHead,
  writeResponse,
  writeStreamedResponse,
  splitTarget,
  watchHostLoss,
  type HeaderPair,
  type InvokeResult,
  type LatticeClient,
  type NatsAuth,
  redactServers,
  serveHealth,
  type Readiness,
  type RouteEntry,
} from '../../lattice/index.ts';
import { GatewayMetrics, gatewayReadiness } from './metrics.ts';
import { Dashboard } from './dashboard/index.ts';
import { RouteTable } from './routes.ts';
import { endGatewayTrace, gatewayTrace } from './trace.ts';

/** RFC 9110 §9.2.2: methods a client may repeat, so the gateway may send them again. */
const IDEMPOTENT: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PUT',
  'DELETE',
]);

/** How long a request waits for a broken NATS link to come back before its 503 (ms). */
const RECONNECT_WAIT_MS = 2_000;

/** Failures after which an idempotent request is sent again. */
const RETRIED: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.NoHost,
  ErrorCode.HostLost,
  ErrorCode.LatticeUnavailable,
]);

/**
 * Send an invocation; while no host runs the actor (an actor moving between hosts, a host
 * draining), or when the host serving it was lost, try again with backoff until `retryUntil`
 * (0: never; non-idempotent requests, which a lost host may have run in part).
 */
async function invokeRetrying(
  send: () => Promise<InvokeResult>,
  retryUntil: number,
): Promise<InvokeResult> {
  for (let wait = 25; ; wait = Math.min(wait * 2, 400)) {
    try {
      return await send();
    } catch (err) {
      const again =
        err instanceof WeftError && RETRIED.has(err.code) && Date.now() + wait < retryUntil;
      if (!again) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export interface GatewayOptions {
  nats: string | string[];
  /** NATS credentials and TLS (secrets are never logged). */
  auth?: NatsAuth;
  lattice: string;
  log: Logger;
  /** Listen address, default 127.0.0.1. */
  host?: string;
  /** Listen port, default 8080; 0 picks a free one. */
  port?: number;
  /** Delay between connection attempts while NATS is unreachable (ms). */
  retryMs?: number;
  /** Serve the live dashboard at `/_weft/` (default true; docs/operations.md#dashboard). */
  dashboard?: boolean;
  /**
   * Also serve `/metrics`, `/livez`, `/readyz` on a listener of their own (port 0: a free one).
   * The gateway's own listener answers `/_weft/livez`, `/_weft/readyz` and, unless the dashboard is
   * off, `/_weft/metrics`.
   */
  metrics?: { host: string; port: number };
}

export class Gateway {
  readonly routes = new RouteTable();
  readonly #opts: GatewayOptions;
  readonly #log: Logger;
  #server: Server | undefined;
  #client: LatticeClient | undefined;
  #watch: { stop(): void } | undefined;
  #hostLoss: { stop(): void } | undefined;
  #stopped = false;
  /** False while the NATS connection is down (nats.js reconnects by itself). */
  #linkUp = false;
  readonly #linkWaiters: (() => void)[] = [];
  #connecting: Promise<void> | undefined;
  readonly #dashboard: Dashboard | undefined;
  readonly #metrics = new GatewayMetrics({
    routes: () => this.routes.entries().length,
    readiness: () => this.readiness(),
  });
  #health: HealthServer | undefined;

  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ component: 'gateway' });
    this.#dashboard = opts.dashboard === false ? undefined : new Dashboard({ log: this.#log });
  }

  /** The URL the gateway serves on. */
  get url(): string {
    const a = this.#server?.address() as AddressInfo | null;
    if (!a) throw new Error('gateway is not listening');
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  get port(): number {
    return (this.#server!.address() as AddressInfo).port;
  }

  /** True once connected to the lattice and the route table is loaded. */
  get ready(): boolean {
    return this.#watch !== undefined && this.#client !== undefined && !this.#client.nc.isClosed();
  }

  /** `/readyz`: connected, route table watched, NATS link up, not stopping. */
  readiness(): Readiness {
    return gatewayReadiness({
      connected: this.#client !== undefined && !this.#client.nc.isClosed(),
      routesLoaded: this.#watch !== undefined,
      linkUp: this.#linkUp,
      stopping: this.#stopped,
    });
  }

  /** The URL of the separate metrics listener (`metrics` option), if any. */
  get metricsUrl(): string | undefined {
    return this.#health?.url;
  }

  /**
   * Listen at once; connect to the lattice in the background, retrying while NATS is down (requests
   * meanwhile get 503 WEFT_ERR_LATTICE_UNAVAILABLE).
   */
  async start(): Promise<void> {
    const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
      // /_weft/… is the gateway's own: never routed to an actor. Without the dashboard, only the
      // probes are served there (metrics can be, on a private listener: `metrics`).
      const metrics = this.#dashboard !== undefined;
      if (serveHealth(req, res, this.#metrics, { plain: false, metrics })) return;
      if (this.#dashboard?.serves(req)) return this.#dashboard.handle(req, res);
      void this.#handle(req, res);
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port ?? 8080, this.#opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#log.info({ url: this.url }, 'gateway listening');
    const m = this.#opts.metrics;
    if (m !== undefined) {
      this.#health = await HealthServer.listen(this.#metrics, m.host, m.port);
      this.#log.info({ url: this.#health.url }, 'metrics and health listening');
    }
    this.#connecting = this.#connectLoop();
    // Refused credentials end the loop: connected() rejects for whoever waits on it.
    this.#connecting.catch(() => undefined);
  }

  /** Resolves once the gateway is connected and has its routes (tests, `weft up`). */
  async connected(): Promise<void> {
    await this.#connecting;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watch?.stop();
    this.#hostLoss?.stop();
    // Its live update streams would keep the server from closing.
    this.#dashboard?.stop();
    const server = this.#server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    }
    await this.#client?.close();
    await this.#health?.close();
    this.#log.info('gateway stopped');
  }

  async #connectLoop(): Promise<void> {
    const retryMs = this.#opts.retryMs ?? 1_000;
    let attempt = 0;
    while (!this.#stopped) {
      try {
        const client = await connectLattice({
          servers: this.#opts.nats,
          lattice: this.#opts.lattice,
          name: 'weft-gateway',
          ...(this.#opts.auth === undefined ? {} : { auth: this.#opts.auth }),
        });
        this.#client = client;
        this.#metrics.nats.watch(client);
        client.onPermissionDenied((err) =>
          this.#log.error({ err: err.message }, 'NATS refused this gateway a permission it needs'),
        );
        this.#linkUp = true;
        const store = await RouteStore.open(client);
        this.#watch = await store.watch((app, routes) => {
          this.routes.setApp(app, routes);
          this.#log.info({ app, routes: routes?.length ?? 0 }, 'routes updated');
        });
        this.#hostLoss = watchHostLoss(client, (loss) => {
          const failed = client.abandonHost(loss.hostId);
          this.#log[failed > 0 || loss.reason === 'silent' ? 'warn' : 'info'](
            { ...loss, requestsFailedOver: failed },
            'host lost: its requests in flight fail over',
          );
        });
        void this.#watchStatus(client);
        void this.#dashboard?.attach(client).catch((err: unknown) => {
          this.#log.warn({ err: (err as Error).message }, 'dashboard cannot follow the lattice');
        });
        this.#log.info(
          { nats: redactServers(this.#opts.nats), lattice: this.#opts.lattice },
          'gateway connected to the lattice',
        );
        return;
      } catch (err) {
        attempt++;
        // Credentials refused, or a credentials file unreadable: trying again will not help.
        const fatal =
          err instanceof WeftError &&
          (err.code === ErrorCode.Unauthorized || err.code === ErrorCode.BadRequest);
        this.#log.error(
          { err: (err as Error).message, attempt, ...(fatal ? {} : { retryMs }) },
          fatal
            ? `cannot join the lattice at ${redactServers(this.#opts.nats)}`
            : `cannot reach the lattice at ${redactServers(this.#opts.nats)}; retrying`,
        );
        // A connection whose setup failed half-way is not kept (nor leaked by the next try).
        const half = this.#client;
        this.#client = undefined;
        await half?.close().catch(() => undefined);
        if (fatal) throw err;
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  }

  /** Wait until the NATS link is back, or `ms` passed. */
  async #linkBack(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#linkWaiters.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }

  async #watchStatus(client: LatticeClient): Promise<void> {
    let downAt = 0;
    for await (const s of client.nc.status()) {
      if (s.type !== 'disconnect' && s.type !== 'reconnect') continue;
      this.#linkUp = s.type === 'reconnect';
      if (s.type === 'disconnect') downAt = Date.now();
      // Replies to what was sent before the link broke may be lost with the server: retryable
      // requests are sent again, the others wait for their reply or their deadline.
      const failed = this.#linkUp ? client.abandonSentBefore(downAt) : 0;
      this.#log.warn({ status: s.type, requestsResent: failed }, 'NATS connection');
      if (this.#linkUp) for (const w of this.#linkWaiters.splice(0)) w();
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const invocationId = nuid.next();
    const trace = gatewayTrace(req);
    const { traceparent, traceId } = trace;
    const t0 = performance.now();
    let actor: string | undefined;
    const started = this.#metrics.start();
    let route: RouteEntry | undefined;
    let errorCode: string | undefined;
    try {
      const client = this.#client;
      // Reconnecting (to another server of a cluster, usually within a second): wait a little.
      // While NATS is down, answer soon rather than let requests wait out their timeout.
      if (client && this.#watch && !this.#linkUp) await this.#linkBack(RECONNECT_WAIT_MS);
      if (!client || !this.#watch || !this.#linkUp || client.nc.isClosed()) {
        throw new WeftError(
          ErrorCode.LatticeUnavailable,
          'the gateway is not connected to the lattice yet',
        );
      }
      const { path: rawPath, query } = splitTarget(req.url ?? '/');
      const path = normalizeRequestPath(rawPath);
      const serverName = (headerValue(req, 'host') ?? '').replace(/:\d+$/, '').toLowerCase();
      const match = this.routes.match(serverName, path);
      if (!match) {
        throw new WeftError(ErrorCode.RouteNotFound, `no route for ${path}`, { details: { path } });
      }
      actor = match.entry.actor;
      route = match.entry;
      const { limits } = match.entry;
      const deadline = Date.now() + limits.timeoutMs;
      const body = await readBody(req, limits.maxRequestBytes);
      const head = requestHead(req, { path, query, routePrefix: match.prefix, traceparent });
      const retryable = IDEMPOTENT.has(head.method);
      const r = await invokeRetrying(
        () =>
          invoke(client, { invocationId, actor: actor!, head }, body, {
            timeoutMs: Math.max(1, deadline - Date.now()),
            traceparent,
            maxResponseBytes: limits.maxResponseBytes,
            retryable,
          }),
        retryable ? deadline : 0,
      );
      const reply = r.reply;
      const extra: HeaderPair[] = [
        ['x-weft-invocation-id', invocationId],
        ['x-weft-host-id', reply.hostId],
        ['x-weft-trace-id', traceId],
      ];
      if (r.stream === undefined) writeResponse(req, res, reply.head, r.body, extra);
      else {
        const size = reply.bodyStream?.size ?? -1;
        await writeStreamedResponse(res, reply.head, r.stream, size, extra).catch(
          (err: unknown) => {
            // The head is out: the cut connection is all the client can be told.
            this.#log.warn(
              { invocationId, traceId, actor, hostId: reply.hostId, err: (err as Error).message },
              'streamed response cut',
            );
          },
        );
      }
      if (this.#log.isLevelEnabled('debug')) {
        this.#log.debug(
          {
            invocationId,
            traceId,
            actor,
            hostId: reply.hostId,
            status: reply.head.status,
            ms: performance.now() - t0,
          },
          'request served',
        );
      }
    } catch (err) {
      errorCode = this.#replyError(req, res, err, invocationId, actor, traceId);
    } finally {
      this.#metrics.done(started, route, res.statusCode, errorCode);
      if (trace.span !== undefined) {
        endGatewayTrace(trace, res.statusCode, {
          method: req.method ?? 'GET',
          ...(route === undefined ? {} : { route: route.path, actor: route.actor }),
          invocationId,
          ...(errorCode === undefined ? {} : { errorCode }),
        });
      }
    }
  }

  #replyError(
    req: IncomingMessage,
    res: ServerResponse,
    err: unknown,
    invocationId: string,
    actor: string | undefined,
    traceId: string,
  ): string {
    const r = replyError(req, res, err, invocationId, traceId);
    this.#log[r.statusCode >= 500 ? 'warn' : 'info'](
      {
        invocationId: r.invocationId,
        traceId,
        actor,
        code: r.error.code,
        statusCode: r.statusCode,
        err: r.error.message,
        cause: (r.error.cause as Error | undefined)?.message,
      },
      'request failed',
    );
    return r.error.code;
  }
}
