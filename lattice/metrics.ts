/**
 * Metrics and health, shared by hosts and gateways: Prometheus text (prom-client) on `/metrics`,
 * liveness on `/livez`, readiness on `/readyz`, each also under `/_weft/` (the form a gateway
 * serves on its public listener, where the plain names belong to the applications' routes).
 * Every metric name starts with `weft_`; the process metrics are prom-client's defaults, collected
 * once per process. docs/operations.md lists every metric.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { LatticeClient } from './client.ts';
import { RESERVED_ROUTE_PREFIX } from './manifest/types.ts';

/** Every metric's name starts with this. */
export const METRIC_PREFIX = 'weft_';

/** The reserved path prefix a gateway answers itself, never routing it to an actor. */
const INTERNAL_PATH_PREFIX = `${RESERVED_ROUTE_PREFIX}/`;

/** Seconds; from 1 ms to a minute, which is past the longest timeout most actors have. */
export const DURATION_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** `/readyz`'s verdict: ready, or the reasons it is not. */
export interface Readiness {
  ready: boolean;
  /** Why not ready (empty when ready). */
  reasons: string[];
}

/** What a health server serves: a registry to scrape and a readiness check. */
export interface HealthSource {
  registry: Registry;
  readiness(): Readiness;
}

let processRegistry: Registry | undefined;

/** prom-client's default process metrics, with the `weft_` prefix, collected once per process. */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: METRIC_PREFIX });
  }
  return processRegistry;
}

/** The Prometheus text of `registry` and of the process metrics. */
export async function metricsText(registry: Registry): Promise<string> {
  return Registry.merge([processMetrics(), registry]).metrics();
}

/** `2xx`, `4xx`, … for a status code; `other` outside 100–599. */
export function statusClass(status: number): string {
  return status >= 100 && status <= 599 ? `${Math.floor(status / 100)}xx` : 'other';
}

/**
 * The NATS connection's metrics (`weft_nats_reconnects_total`, `weft_nats_connected`) and its
 * state, from the connection's status events. One per host or gateway: `watch` each connection
 * it opens (a gateway that connects again keeps counting on the same counter).
 */
export class NatsConnectionMetrics {
  /** False until a watched connection is up, and while it is down (nats.js reconnects). */
  connected = false;
  readonly #reconnects: Counter;

  constructor(registry: Registry) {
    this.#reconnects = new Counter({
      name: `${METRIC_PREFIX}nats_reconnects_total`,
      help: 'Times the NATS connection came back after it was lost',
      registers: [registry],
    });
    const isConnected = (): boolean => this.connected;
    new Gauge({
      name: `${METRIC_PREFIX}nats_connected`,
      help: '1 while connected to NATS, else 0',
      registers: [registry],
      collect() {
        this.set(isConnected() ? 1 : 0);
      },
    });
  }

  /** Follow `client`'s connection until it closes. */
  watch(client: LatticeClient): void {
    this.connected = !client.nc.isClosed();
    void (async () => {
      for await (const s of client.nc.status()) {
        if (s.type === 'disconnect') this.connected = false;
        else if (s.type === 'reconnect') {
          this.connected = true;
          this.#reconnects.inc();
        }
      }
      // The iterator ends when the connection is closed.
      this.connected = false;
    })();
    void client.nc.closed().then(() => (this.connected = false));
  }
}

const HEALTH_NAMES = ['metrics', 'livez', 'readyz'] as const;
type HealthName = (typeof HEALTH_NAMES)[number];

/** Which health endpoint `url` names: `/_weft/NAME` always, `/NAME` when `plain`. */
export function healthEndpoint(url: string, plain: boolean): HealthName | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  for (const name of HEALTH_NAMES) {
    if (path === `${INTERNAL_PATH_PREFIX}${name}` || (plain && path === `/${name}`)) return name;
  }
  return undefined;
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Answer `req` if it asks for a health endpoint (see `healthEndpoint`) and return true; else
 * return false and leave it alone. With `metrics: false` the metrics endpoint is a 404. `/livez` is 200 whenever the event loop gets to answer;
 * `/readyz` is 200 `{"status":"ready"}` or 503 `{"status":"not ready","reasons":[…]}`.
 */
export function serveHealth(
  req: IncomingMessage,
  res: ServerResponse,
  source: HealthSource,
  opts: { plain: boolean; metrics?: boolean },
): boolean {
  const name = healthEndpoint(req.url ?? '/', opts.plain);
  if (name === undefined) return false;
  if (name === 'metrics' && opts.metrics === false) {
    // Still the listener's own path: never passed on to whatever else it serves.
    send(req, res, 404, 'text/plain; charset=utf-8', 'metrics are not served on this listener\n');
    return true;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
    res.end();
    return true;
  }
  switch (name) {
    case 'livez':
      send(req, res, 200, 'text/plain; charset=utf-8', 'ok\n');
      break;
    case 'readyz': {
      const r = source.readiness();
      const body = `${JSON.stringify(r.ready ? { status: 'ready' } : { status: 'not ready', reasons: r.reasons })}\n`;
      send(req, res, r.ready ? 200 : 503, 'application/json', body);
      break;
    }
    case 'metrics':
      metricsText(source.registry).then(
        (text) => send(req, res, 200, source.registry.contentType, text),
        (err: unknown) =>
          send(req, res, 500, 'text/plain; charset=utf-8', `${(err as Error).message}\n`),
      );
      break;
  }
  return true;
}

/** A listener serving only the health endpoints (plain and `/_weft/` names); 404 for the rest. */
export class HealthServer {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Listen on `host:port` (0: a free port); rejects naming the address when it cannot. */
  static async listen(source: HealthSource, host: string, port: number): Promise<HealthServer> {
    const server = createServer((req, res) => {
      if (!serveHealth(req, res, source, { plain: true })) {
        send(
          req,
          res,
          404,
          'text/plain; charset=utf-8',
          'not found: try /metrics, /livez, /readyz\n',
        );
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new Error(`metrics: cannot listen on ${host}:${port}: ${err.message}`, { cause: err }),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    server.unref();
    return new HealthServer(server);
  }

  /** `http://ADDR:PORT` */
  get url(): string {
    const a = this.#server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
