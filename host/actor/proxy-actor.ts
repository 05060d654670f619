/**
 * One proxy actor on this host: `spec.instances` long-lived WASIX instances, each serving HTTP
 * on its own port, and the requests forwarded to the least busy ready one. An instance that
 * crashes or exits is started again after a backoff (250 ms doubling to 10 s, back to the
 * start once an instance has stayed up for a minute); requests that were in flight on it fail
 * with WEFT_ERR_INSTANCE_CRASHED (502), the other instances keep serving. Requests that find
 * no ready instance wait for one until their deadline, then get WEFT_ERR_ACTOR_NOT_READY (503).
 */
import type { Logger } from 'pino';
import {
  ErrorCode,
  WeftError,
  plainEnv,
  traceIdOf,
  type HttpRequestHead,
  type LiveBody,
  type HttpResponseHead,
  type ResolvedActor,
} from '../../lattice/index.ts';
import { WasixInstance } from '../wasix/instance.ts';
import { admitted, type ActorStats } from './admission.ts';
import type { ActorLog } from '../observe.ts';
import type { ActorObserver } from '../metrics.ts';

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 10_000;
const HEALTHY_AFTER_MS = 60_000;

export interface SharedModule {
  key: string;
  module: WebAssembly.Module;
  memory: { initial: number; maximum: number };
}

export interface ProxyTree {
  key: string;
  guest: string;
  entries: ({ path: string; data: Uint8Array } | { path: string; dir: true })[];
}

interface Slot {
  index: number;
  instance: WasixInstance | undefined;
  restarts: number;
  backoffMs: number;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
}

export interface ProxyResult {
  head: HttpResponseHead;
  /** The whole body, or a streamed one still arriving. */
  body: Uint8Array | LiveBody;
  startUs: number;
  runUs: number;
}

export class ProxyActor {
  readonly app: string;
  readonly spec: ResolvedActor;
  readonly module: SharedModule;
  readonly trees: ProxyTree[];
  readonly stats: ActorStats = { invocations: 0, errors: 0, inFlight: 0 };
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  readonly #waiting = new Set<() => void>();
  readonly #publish: { host: string; port: number } | undefined;
  readonly #observer: ActorObserver | undefined;
  readonly #output: ActorLog | undefined;
  #stopped = false;
  #firstOutcome: ((err: string | undefined) => void) | undefined;
  readonly #env: Readonly<Record<string, string>>;

  constructor(opts: {
    app: string;
    spec: ResolvedActor;
    /** The guest's env with secret references resolved (default: `spec.env`, all strings). */
    env?: Readonly<Record<string, string>>;
    module: SharedModule;
    trees: ProxyTree[];
    log: Logger;
    /** `weft run --serve`: also serve real TCP here (instance 0 only). */
    publish?: { host: string; port: number };
    /** Told of instance starts (the host's metrics). */
    observer?: ActorObserver;
    /** Where the instances' stdout and stderr lines go (default: `log`, as `actor output`). */
    output?: ActorLog;
  }) {
    this.app = opts.app;
    this.spec = opts.spec;
    this.module = opts.module;
    this.trees = opts.trees;
    this.#log = opts.log;
    this.#publish = opts.publish;
    this.#env = opts.env ?? plainEnv(opts.spec.env);
    this.#observer = opts.observer;
    this.#output = opts.output;
  }

  /**
   * Start every instance; resolves when all listen, rejects with the reason as soon as one fails
   * to (crash, exit, start timeout), after stopping the others.
   */
  start(onPublished?: (host: string, port: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      let ready = 0;
      this.#firstOutcome = (err) => {
        if (err !== undefined) {
          this.#firstOutcome = undefined;
          void this.stop();
          reject(new Error(err));
          return;
        }
        if (++ready === this.spec.instances) {
          this.#firstOutcome = undefined;
          resolve();
        }
      };
      for (let i = 0; i < this.spec.instances; i++) {
        const slot: Slot = {
          index: i,
          instance: undefined,
          restarts: 0,
          backoffMs: BACKOFF_FIRST_MS,
          startedAt: 0,
          timer: undefined,
        };
        this.#slots.push(slot);
        this.#launch(slot, onPublished);
      }
    });
  }

  #launch(slot: Slot, onPublished?: (host: string, port: number) => void): void {
    const spec = this.spec;
    const listenPorts = [...new Set([spec.port, ...(spec.capabilities.sockets?.listen ?? [])])];
    const log = this.#log.child({ instance: slot.index });
    slot.startedAt = Date.now();
    const env = { PORT: String(spec.port), ...this.#env };
    const inst: WasixInstance = new WasixInstance({
      module: this.module.module,
      memory: this.module.memory,
      args: [spec.name, ...spec.args],
      env,
      trees: this.trees.map((t) => ({ guest: t.guest, entries: t.entries })),
      listenPorts,
      connect: spec.capabilities.sockets?.connect ?? [],
      servePort: spec.port,
      maxThreads: spec.limits.maxThreads,
      maxResponseBytes: spec.limits.maxResponseBytes,
      maxConnections: spec.limits.maxConcurrency,
      startTimeoutMs: spec.limits.startTimeoutMs,
      ...(slot.index === 0 && this.#publish !== undefined ? { publish: this.#publish } : {}),
      log,
      ...(this.#output === undefined
        ? {}
        : {
            onOutput: (stream: 'stdout' | 'stderr', line: string) =>
              this.#output!.line(stream, line, slot.index),
          }),
      onReady: () => {
        this.#observer?.instanceStarted((Date.now() - slot.startedAt) / 1000);
        this.#firstOutcome?.(undefined);
        for (const w of this.#waiting) w();
      },
      onEnded: (reason, crashed) => {
        if (slot.instance === inst) slot.instance = undefined;
        if (this.#stopped) return;
        const msg = `instance ${slot.index} ${reason}`;
        if (this.#firstOutcome !== undefined) {
          log.error({ reason }, 'instance failed to start');
          this.#firstOutcome(msg);
          return;
        }
        if (Date.now() - slot.startedAt > HEALTHY_AFTER_MS) slot.backoffMs = BACKOFF_FIRST_MS;
        const wait = slot.backoffMs;
        slot.backoffMs = Math.min(BACKOFF_MAX_MS, slot.backoffMs * 2);
        slot.restarts++;
        log[crashed ? 'error' : 'warn'](
          { reason, restarts: slot.restarts, restartInMs: wait },
          'instance ended; restarting',
        );
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          if (!this.#stopped) this.#launch(slot);
        }, wait);
      },
      ...(onPublished ? { onPublished } : {}),
    });
    slot.instance = inst;
  }

  /** What is wrong, for the actor's status: undefined while every instance is ready. */
  get problem(): string | undefined {
    const bad = this.#slots.filter((s) => s.instance?.state !== 'ready');
    if (bad.length === 0 || this.#stopped) return undefined;
    return bad
      .map((s) => {
        const why = s.instance?.reason;
        if (s.instance === undefined)
          return `instance ${s.index} restarting (restart ${s.restarts})`;
        return `instance ${s.index} starting${why ? `: ${why}` : ''}`;
      })
      .join('; ');
  }

  get instances(): { index: number; state: string; pid?: number; restarts: number }[] {
    return this.#slots.map((s) => ({
      index: s.index,
      state: s.instance?.state ?? 'restarting',
      ...(s.instance ? { pid: s.instance.pid } : {}),
      restarts: s.restarts,
    }));
  }

  #pick(): WasixInstance | undefined {
    let best: WasixInstance | undefined;
    for (const s of this.#slots) {
      const i = s.instance;
      if (i?.state === 'ready' && (best === undefined || i.inFlight < best.inFlight)) best = i;
    }
    return best;
  }

  /** Wait for a ready instance until `deadline`. */
  #ready(deadline: number): Promise<WasixInstance | undefined> {
    const now = this.#pick();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (): void => {
        const i = this.#pick();
        if (i === undefined && Date.now() < deadline && !this.#stopped) return;
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve(i);
      };
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      this.#waiting.add(done);
    });
  }

  async invoke(
    head: HttpRequestHead,
    body: Uint8Array,
    invocationId: string,
    deadline: number,
    traceparent?: string,
  ): Promise<ProxyResult> {
    return admitted(this.spec.name, this.spec.limits, this.stats, () =>
      this.#forward(head, body, invocationId, deadline, traceparent),
    );
  }

  async #forward(
    head: HttpRequestHead,
    body: Uint8Array,
    invocationId: string,
    deadline: number,
    traceparent: string | undefined,
  ): Promise<ProxyResult> {
    const t0 = performance.now();
    try {
      const inst = await this.#ready(deadline);
      if (inst === undefined) {
        throw new WeftError(
          ErrorCode.ActorNotReady,
          `actor '${this.spec.name}' has no instance listening: ${this.problem ?? 'stopped'}`,
        );
      }
      const t1 = performance.now();
      const r = await inst.request(
        head,
        body,
        [['x-weft-invocation-id', invocationId]],
        deadline,
        this.spec.limits.timeoutMs,
      );
      return {
        head: r.head,
        body: r.body,
        startUs: Math.round((t1 - t0) * 1000),
        runUs: Math.round((performance.now() - t1) * 1000),
      };
    } catch (err) {
      if (err instanceof WeftError && err.code !== ErrorCode.Timeout) {
        this.#log.warn(
          {
            invocationId,
            ...(traceparent === undefined ? {} : { traceId: traceIdOf(traceparent) }),
            code: err.code,
            reason: err.message,
          },
          'proxy request failed',
        );
      }
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const w of this.#waiting) w();
    const stops: Promise<void>[] = [];
    for (const s of this.#slots) {
      if (s.timer !== undefined) clearTimeout(s.timer);
      if (s.instance !== undefined) stops.push(s.instance.stop());
    }
    await Promise.allSettled(stops);
  }
}
