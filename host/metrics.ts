/**
 * A host's metrics and readiness. Counters and histograms are updated as invocations run (label
 * children cached per actor, so a request costs a few increments); gauges are read from the
 * host's actors when scraped. Labels are bounded: application, actor, mode, state, error code,
 * direction, decision; never anything per request. docs/operations.md lists every metric.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  DURATION_BUCKETS_S,
  ErrorCode,
  LiveBody,
  METRIC_PREFIX,
  NatsConnectionMetrics,
  WeftError,
  type HealthSource,
  type Readiness,
  type ResolvedActor,
} from '../lattice/index.ts';
import type { ActorStats } from './actor/admission.ts';
import type { OutboundRecord } from './outbound/guest-http.ts';

/** Instance start: ~50 µs for a cached WCGI module, up to seconds for a proxy server. */
const INSTANCE_START_BUCKETS_S = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
  0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** What an actor tells the host's metrics as it runs. */
export interface ActorObserver {
  /**
   * An instance started, in seconds: context and instance creation (WCGI, each invocation), or
   * launch until it listens (proxy).
   */
  instanceStarted(seconds: number): void;
  /** The outbound HTTP requests one invocation made. */
  outbound(records: readonly OutboundRecord[]): void;
}

/** One actor of the host as the scrape sees it (the host's own record of it). */
export interface ActorView {
  app: string;
  spec: ResolvedActor;
  state: 'starting' | 'running' | 'failed';
  actor?: { stats: ActorStats; instances?: readonly { state: string }[] };
}

/** The outcome of one invocation, as `#invoke` reports it. */
export interface InvocationRecord {
  /** The request body arrived: `bytes` long. */
  received(bytes: number): void;
  /** The actor answered; a streamed body is counted as it is read. */
  ok(body: Uint8Array | LiveBody): void;
  failed(err: unknown): void;
}

/**
 * Outbound decision of a request the guest made: `allowed` once the policy let it be sent
 * (whatever came of it), `denied` when the host refused to send it: the allowlist or an address
 * check refused it, the URL could not be checked, or the invocation was over its request cap.
 */
export function outboundDecision(outcome: OutboundRecord['outcome']): 'allowed' | 'denied' {
  return outcome === 'denied' || outcome === 'bad_url' || outcome === 'limit'
    ? 'denied'
    : 'allowed';
}

/**
 * Ready once the host has started and is connected to NATS, not draining, and no actor placed on
 * it is still starting (running or failed both count as settled).
 */
export function hostReadiness(s: {
  started: boolean;
  connected: boolean;
  draining: boolean;
  /** Names of the actors placed on this host. */
  placed: Iterable<string>;
  /** The actors this host holds, by name. */
  actors: ReadonlyMap<string, { state: string }>;
}): Readiness {
  const reasons: string[] = [];
  if (!s.started) reasons.push('host starting');
  if (!s.connected) reasons.push('not connected to NATS');
  if (s.draining) reasons.push('draining');
  for (const name of s.placed) {
    // A host records an actor once its start settled: placed and not recorded is starting.
    const state = s.actors.get(name)?.state ?? 'starting';
    if (state === 'starting') reasons.push(`actor ${name} starting`);
  }
  return { ready: reasons.length === 0, reasons };
}

interface ActorSeries {
  ok: Counter.Internal;
  error: Counter.Internal;
  duration: Histogram.Internal<'app' | 'actor' | 'mode'>;
  bytesIn: Counter.Internal;
  bytesOut: Counter.Internal;
  instanceStart: Histogram.Internal<'app' | 'actor' | 'mode'>;
  allowed: Counter.Internal;
  denied: Counter.Internal;
}

/** Count what a streamed body's reader takes. */
function countReads(body: LiveBody, onBytes: (n: number) => void): void {
  const read = body.read.bind(body);
  body.read = async (max: number) => {
    const r = await read(max);
    onBytes(r.bytes.length);
    return r;
  };
}

export class HostMetrics implements HealthSource {
  readonly registry = new Registry();
  readonly nats = new NatsConnectionMetrics(this.registry);
  readonly readiness: () => Readiness;
  readonly #invocations: Counter<'app' | 'actor' | 'mode' | 'outcome'>;
  readonly #errors: Counter<'app' | 'actor' | 'mode' | 'code'>;
  readonly #duration: Histogram<'app' | 'actor' | 'mode'>;
  readonly #bytes: Counter<'app' | 'actor' | 'direction'>;
  readonly #instanceStart: Histogram<'app' | 'actor' | 'mode'>;
  readonly #outbound: Counter<'app' | 'actor' | 'decision'>;
  readonly #series = new Map<string, ActorSeries>();

  constructor(opts: {
    actors: () => Iterable<ActorView>;
    /** WCGI jobs waiting for a worker thread. */
    workerQueue: () => number;
    readiness: () => Readiness;
  }) {
    this.readiness = opts.readiness;
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.#invocations = new Counter({
      name: `${p}invocations_total`,
      help: 'Invocations this host ran, by outcome (error: the host answered with a WEFT_ERR_* code)',
      labelNames: ['app', 'actor', 'mode', 'outcome'],
      registers,
    });
    this.#errors = new Counter({
      name: `${p}invocation_errors_total`,
      help: 'Failed invocations by error code',
      labelNames: ['app', 'actor', 'mode', 'code'],
      registers,
    });
    this.#duration = new Histogram({
      name: `${p}invocation_duration_seconds`,
      help: 'From the invocation arriving until its reply (head and body, or the head of a streamed body) is ready',
      labelNames: ['app', 'actor', 'mode'],
      buckets: DURATION_BUCKETS_S,
      registers,
    });
    this.#bytes = new Counter({
      name: `${p}invocation_bytes_total`,
      help: 'Body bytes of invocations: in (requests), out (responses, streamed ones as read)',
      labelNames: ['app', 'actor', 'direction'],
      registers,
    });
    this.#instanceStart = new Histogram({
      name: `${p}instance_start_seconds`,
      help: 'Instance start: context and instance creation (wcgi, per invocation), launch until listening (proxy)',
      labelNames: ['app', 'actor', 'mode'],
      buckets: INSTANCE_START_BUCKETS_S,
      registers,
    });
    this.#outbound = new Counter({
      name: `${p}outbound_requests_total`,
      help: 'Outbound HTTP requests of guests: allowed (sent) or denied (refused by the host)',
      labelNames: ['app', 'actor', 'decision'],
      registers,
    });
    const { actors, workerQueue } = opts;
    new Gauge({
      name: `${p}actors`,
      help: 'Actors on this host by state (running, or failed to start); /readyz names those starting',
      labelNames: ['app', 'actor', 'mode', 'state'],
      registers,
      collect() {
        this.reset();
        for (const a of actors()) {
          this.set({ app: a.app, actor: a.spec.name, mode: a.spec.mode, state: a.state }, 1);
        }
      },
    });
    new Gauge({
      name: `${p}instances`,
      help: 'Instances by state: proxy instances (starting, ready, restarting, …); wcgi has one per invocation in flight (running)',
      labelNames: ['app', 'actor', 'mode', 'state'],
      registers,
      collect() {
        this.reset();
        for (const a of actors()) {
          const base = { app: a.app, actor: a.spec.name, mode: a.spec.mode };
          if (a.spec.mode === 'wcgi') {
            this.set({ ...base, state: 'running' }, a.actor?.stats.inFlight ?? 0);
            continue;
          }
          for (const i of a.actor?.instances ?? []) this.inc({ ...base, state: i.state });
        }
      },
    });
    new Gauge({
      name: `${p}invocations_in_flight`,
      help: 'Invocations admitted and not finished (running or waiting)',
      labelNames: ['app', 'actor', 'mode'],
      registers,
      collect() {
        this.reset();
        for (const a of actors()) {
          const labels = { app: a.app, actor: a.spec.name, mode: a.spec.mode };
          this.set(labels, a.actor?.stats.inFlight ?? 0);
        }
      },
    });
    new Gauge({
      name: `${p}admission_queue_depth`,
      help: 'Invocations admitted past limits.maxConcurrency, waiting (at most limits.maxQueue; past it 503)',
      labelNames: ['app', 'actor', 'mode'],
      registers,
      collect() {
        this.reset();
        for (const a of actors()) {
          const labels = { app: a.app, actor: a.spec.name, mode: a.spec.mode };
          const inFlight = a.actor?.stats.inFlight ?? 0;
          this.set(labels, Math.max(0, inFlight - a.spec.limits.maxConcurrency));
        }
      },
    });
    new Gauge({
      name: `${p}worker_queue_depth`,
      help: 'WCGI jobs waiting for a worker thread (all actors of the host)',
      registers,
      collect() {
        this.set(workerQueue());
      },
    });
    const readiness = opts.readiness;
    new Gauge({
      name: `${p}ready`,
      help: '1 while /readyz answers 200, else 0',
      registers,
      collect() {
        this.set(readiness().ready ? 1 : 0);
      },
    });
  }

  #of(app: string, actor: string, mode: string): ActorSeries {
    const key = `${app}\u0000${actor}\u0000${mode}`;
    let s = this.#series.get(key);
    if (s === undefined) {
      s = {
        ok: this.#invocations.labels({ app, actor, mode, outcome: 'ok' }),
        error: this.#invocations.labels({ app, actor, mode, outcome: 'error' }),
        duration: this.#duration.labels({ app, actor, mode }),
        bytesIn: this.#bytes.labels({ app, actor, direction: 'in' }),
        bytesOut: this.#bytes.labels({ app, actor, direction: 'out' }),
        instanceStart: this.#instanceStart.labels({ app, actor, mode }),
        allowed: this.#outbound.labels({ app, actor, decision: 'allowed' }),
        denied: this.#outbound.labels({ app, actor, decision: 'denied' }),
      };
      this.#series.set(key, s);
    }
    return s;
  }

  /** The observer handed to one actor. */
  observer(app: string, actor: string, mode: string): ActorObserver {
    const s = this.#of(app, actor, mode);
    return {
      instanceStarted: (seconds) => s.instanceStart.observe(seconds),
      outbound: (records) => {
        for (const r of records)
          (outboundDecision(r.outcome) === 'allowed' ? s.allowed : s.denied).inc();
      },
    };
  }

  /** Start recording one invocation of `actor` of `app`. */
  invocation(app: string, actor: string, mode: string): InvocationRecord {
    const s = this.#of(app, actor, mode);
    const t0 = performance.now();
    const elapsed = (): number => (performance.now() - t0) / 1000;
    return {
      received: (bytes) => s.bytesIn.inc(bytes),
      ok: (body) => {
        s.duration.observe(elapsed());
        s.ok.inc();
        if (body instanceof LiveBody) countReads(body, (n) => s.bytesOut.inc(n));
        else s.bytesOut.inc(body.length);
      },
      failed: (err) => {
        s.duration.observe(elapsed());
        s.error.inc();
        const code = err instanceof WeftError ? err.code : ErrorCode.Internal;
        this.#errors.inc({ app, actor, mode, code });
      },
    };
  }
}
