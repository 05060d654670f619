/**
 * A gateway's metrics: every HTTP request it answers, by route and status class, and its errors
 * by code. Labels come from the route table (application, actor, route pattern) and the error
 * catalogue, so they stay bounded whatever paths clients send; a request that matched no route
 * has empty app, actor and route labels. docs/operations.md lists every metric.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  DURATION_BUCKETS_S,
  METRIC_PREFIX,
  NatsConnectionMetrics,
  statusClass,
  type HealthSource,
  type Readiness,
  type RouteEntry,
} from '../../lattice/index.ts';

/** What the gateway's readiness depends on. */
export interface GatewayState {
  /** Connected to the lattice (a client, not closed). */
  connected: boolean;
  /** The route table is being watched (its current entries were asked for). */
  routesLoaded: boolean;
  /** The NATS link is up (false while nats.js reconnects). */
  linkUp: boolean;
  stopping: boolean;
}

/** Ready while connected with the route table watched and the link up, and not stopping. */
export function gatewayReadiness(s: GatewayState): Readiness {
  const reasons: string[] = [];
  if (!s.connected) reasons.push('not connected to the lattice');
  else if (!s.linkUp) reasons.push('NATS connection down, reconnecting');
  if (!s.routesLoaded) reasons.push('route table not loaded');
  if (s.stopping) reasons.push('stopping');
  return { ready: reasons.length === 0, reasons };
}

type RequestLabels = 'app' | 'actor' | 'route' | 'status_class';

/** Duration series kept looked up; past this many the cache starts again. */
const MAX_CACHED_SERIES = 1024;

export class GatewayMetrics implements HealthSource {
  readonly registry = new Registry();
  readonly nats = new NatsConnectionMetrics(this.registry);
  readonly readiness: () => Readiness;
  readonly #duration: Histogram<RequestLabels>;
  readonly #errors: Counter<'app' | 'actor' | 'code'>;
  readonly #inFlight: Gauge;
  readonly #durations = new Map<string, Histogram.Internal<RequestLabels>>();

  constructor(opts: { routes: () => number; readiness: () => Readiness }) {
    this.readiness = opts.readiness;
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.#duration = new Histogram({
      name: `${p}http_request_duration_seconds`,
      help: 'HTTP requests the gateway answered, from arrival until the response was written',
      labelNames: ['app', 'actor', 'route', 'status_class'],
      buckets: DURATION_BUCKETS_S,
      registers,
    });
    this.#errors = new Counter({
      name: `${p}http_request_errors_total`,
      help: 'Error replies of the gateway by WEFT_ERR_* code (its own, or the host that answered)',
      labelNames: ['app', 'actor', 'code'],
      registers,
    });
    this.#inFlight = new Gauge({
      name: `${p}http_requests_in_flight`,
      help: 'HTTP requests being answered',
      registers,
    });
    const { routes, readiness } = opts;
    new Gauge({
      name: `${p}routes`,
      help: 'Routes in the table the gateway serves',
      registers,
      collect() {
        this.set(routes());
      },
    });
    new Gauge({
      name: `${p}ready`,
      help: '1 while /readyz answers 200, else 0',
      registers,
      collect() {
        this.set(readiness().ready ? 1 : 0);
      },
    });
  }

  /** One request begins: its start time, to give back to `done`. */
  start(): number {
    this.#inFlight.inc();
    return performance.now();
  }

  /** The request that began at `t0` was answered with `status`, for `route` if it matched one. */
  done(t0: number, route: RouteEntry | undefined, status: number, errorCode?: string): void {
    this.#inFlight.dec();
    this.#durationOf(route, statusClass(status)).observe((performance.now() - t0) / 1000);
    if (errorCode !== undefined) {
      this.#errors.inc({ app: route?.app ?? '', actor: route?.actor ?? '', code: errorCode });
    }
  }

  /** The duration series of a route and status class, looked up once (labels hashed once). */
  #durationOf(route: RouteEntry | undefined, cls: string): Histogram.Internal<RequestLabels> {
    const key = `${route?.app ?? ''}\n${route?.actor ?? ''}\n${route?.path ?? ''}\n${cls}`;
    let child = this.#durations.get(key);
    if (child === undefined) {
      // Routes come and go with deployments: a bounded cache (the series themselves stay).
      if (this.#durations.size >= MAX_CACHED_SERIES) this.#durations.clear();
      child = this.#duration.labels({
        app: route?.app ?? '',
        actor: route?.actor ?? '',
        route: route?.path ?? '',
        status_class: cls,
      });
      this.#durations.set(key, child);
    }
    return child;
  }
}
