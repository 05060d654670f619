/**
 * One WCGI actor on this host: admission (in flight + queued bounded by the manifest's limits),
 * CGI variables in, a fresh instance per request on the worker pool, the CGI response parsed and
 * re-serialized, every failure mapped to a code the gateway turns into a status.
 */
import type { Logger } from 'pino';
import {
  DEFAULT_LIMITS,
  ErrorCode,
  SpanKind,
  WeftError,
  plainEnv,
  recordSpan,
  traceIdOf,
  tracingEnabled,
  type HttpRequestHead,
  type HttpResponseHead,
  type ResolvedActor,
} from '../../lattice/index.ts';
import { encodeEnviron } from '../wasi/index.ts';
import { buildCgiEnv, parseCgiResponse } from '../wcgi/index.ts';
import { admitted, type ActorStats } from './admission.ts';
import type { ActorObserver } from '../metrics.ts';
import { ActorLog } from '../observe.ts';
import type { OutboundRecord } from '../outbound/guest-http.ts';
import type { LoadTreeMsg, OutboundGrant } from './worker-protocol.ts';
import type { WorkerPool } from './worker-pool.ts';

export const SERVER_SOFTWARE = 'weft/0.1.0';
/** stderr kept per invocation for logs. */
const STDERR_LIMIT_BYTES = 64 * 1024;
/** stderr excerpt put in a log line. */
const STDERR_LOG_CHARS = 2_000;

function stderrExcerpt(stderr: Uint8Array): string {
  return new TextDecoder()
    .decode(stderr.subarray(0, STDERR_LOG_CHARS * 4))
    .slice(0, STDERR_LOG_CHARS);
}

/** An outbound request's span, timed in the worker thread, under the span id it was sent with. */
function outboundSpan(parent: string, o: OutboundRecord): void {
  recordSpan(
    `${o.method}`,
    SpanKind.CLIENT,
    parent,
    o.spanId!,
    { startMs: o.startMs ?? Date.now(), endMs: o.endMs ?? Date.now() },
    { 'http.request.method': o.method, 'url.full': o.url },
    o.status,
    o.outcome === 'ok' ? undefined : { code: o.outcome, message: o.reason ?? o.outcome },
  );
}

export interface LoadedModule {
  key: string;
  module: WebAssembly.Module;
  /** Set when the module imports a recyclable memory (prepare-module.ts). */
  memory?: { initial: number; maximum: number };
  /** Set when instances may be reset and reused (prepare-module.ts). */
  reuse?: { globals: string[] };
}

export interface LoadedTree {
  key: string;
  guest: string;
  entries: LoadTreeMsg['entries'];
}

export interface InvokeResult {
  head: HttpResponseHead;
  body: Uint8Array;
  startUs: number;
  runUs: number;
}

export class WcgiActor {
  readonly app: string;
  readonly spec: ResolvedActor;
  readonly module: LoadedModule;
  readonly trees: LoadedTree[];
  readonly stats: ActorStats = { invocations: 0, errors: 0, inFlight: 0 };
  readonly #pool: WorkerPool;
  readonly #log: Logger;
  readonly #treeRefs: { key: string; entries: LoadTreeMsg['entries'] }[];
  readonly #preopens: { guestPath: string; treeKey: string }[];
  readonly #outbound: OutboundGrant;
  readonly #env: Readonly<Record<string, string>>;
  readonly #observer: ActorObserver | undefined;
  readonly #output: ActorLog;

  constructor(opts: {
    app: string;
    spec: ResolvedActor;
    /** The guest's env with secret references resolved (default: `spec.env`, all strings). */
    env?: Readonly<Record<string, string>>;
    module: LoadedModule;
    trees: LoadedTree[];
    pool: WorkerPool;
    log: Logger;
    /** Told of instance starts and outbound requests (the host's metrics). */
    observer?: ActorObserver;
    /** Where the guest's stderr goes (default: `log` alone). */
    output?: ActorLog;
  }) {
    this.app = opts.app;
    this.spec = opts.spec;
    this.module = opts.module;
    this.trees = opts.trees;
    this.#pool = opts.pool;
    this.#env = opts.env ?? plainEnv(opts.spec.env);
    this.#log = opts.log;
    this.#observer = opts.observer;
    this.#output =
      opts.output ?? new ActorLog(opts.log, { hostId: '', app: opts.app, actor: opts.spec.name });
    this.#treeRefs = opts.trees.map((t) => ({ key: t.key, entries: t.entries }));
    this.#preopens = opts.trees.map((t) => ({ guestPath: t.guest, treeKey: t.key }));
    const { limits } = opts.spec;
    this.#outbound = {
      allow: opts.spec.capabilities.outboundHttp ?? [],
      // Specs stored before this limit existed lack it.
      maxRequests: limits.maxOutboundRequests ?? DEFAULT_LIMITS.maxOutboundRequests,
      maxRequestBytes: limits.maxRequestBytes,
      maxResponseBytes: limits.maxResponseBytes,
    };
  }

  /**
   * Run one request. Throws WeftError: Overloaded (503) when in-flight + queued exceed
   * maxConcurrency + maxQueue, Timeout (504), ActorTrap (500), ResponseTooLarge (502),
   * ActorExited (502), BadCgiResponse (502), BadRequest (400, unusable request headers).
   */
  async invoke(
    head: HttpRequestHead,
    body: Uint8Array,
    invocationId: string,
    deadline: number,
    traceparent?: string,
  ): Promise<InvokeResult> {
    return admitted(this.spec.name, this.spec.limits, this.stats, () =>
      this.#run(head, body, invocationId, deadline, traceparent),
    );
  }

  async #run(
    head: HttpRequestHead,
    body: Uint8Array,
    invocationId: string,
    deadline: number,
    traceparent: string | undefined,
  ): Promise<InvokeResult> {
    // Ids go into each log call: a child logger per request would cost more than most requests.
    const log = this.#log;
    const traceId = traceparent === undefined ? undefined : traceIdOf(traceparent);
    const { limits } = this.spec;
    const env = encodeEnviron(
      buildCgiEnv(head, {
        bodyLength: body.length,
        serverSoftware: SERVER_SOFTWARE,
        actorEnv: this.#env,
        extra: { X_WEFT_INVOCATION_ID: invocationId },
      }),
    );
    const r = await this.#pool.run({
      moduleKey: this.module.key,
      module: this.module.module,
      memory: this.module.memory,
      reuse: this.module.reuse,
      trees: this.#treeRefs,
      preopens: this.#preopens,
      args: [this.spec.name, ...this.spec.args],
      env,
      stdin: body,
      stdoutLimitBytes: limits.maxResponseBytes + 64 * 1024,
      stderrLimitBytes: STDERR_LIMIT_BYTES,
      deadline,
      timeoutMs: limits.timeoutMs,
      outbound: this.#outbound,
      ...(traceparent === undefined ? {} : { traceparent }),
    });
    // No instance was made for a job that expired waiting or failed to instantiate.
    if (r.failure?.kind !== 'expired' && r.failure?.kind !== 'instantiate') {
      this.#observer?.instanceStarted(r.startUs / 1e6);
    }
    if (r.outbound !== undefined) this.#observer?.outbound(r.outbound);
    for (const o of r.outbound ?? []) {
      // Denials name the URL and why (the rule checked); allowed requests are debug detail.
      if (o.outcome === 'ok') log.debug({ invocationId, traceId, outbound: o }, 'outbound request');
      else
        log.warn(
          { invocationId, traceId, actor: this.spec.name, outbound: o },
          'outbound request failed',
        );
      if (o.spanId !== undefined && traceparent !== undefined && tracingEnabled()) {
        outboundSpan(traceparent, o);
      }
    }
    this.#output.invocation(r.stderr, r.stderrTruncated, invocationId, traceId);
    const details = { invocationId, exitCode: r.exitCode };
    if (r.failure) {
      switch (r.failure.kind) {
        case 'trap':
          log.error({ invocationId, traceId, trap: r.failure.message }, 'actor trapped');
          throw new WeftError(
            ErrorCode.ActorTrap,
            `actor '${this.spec.name}' trapped: ${r.failure.message}`,
            {
              details,
            },
          );
        case 'output-limit':
          log.warn(
            { invocationId, traceId, limitBytes: limits.maxResponseBytes },
            'actor output over its limit',
          );
          throw new WeftError(
            ErrorCode.ResponseTooLarge,
            `actor '${this.spec.name}' wrote more than ${limits.maxResponseBytes} bytes (limits.maxResponseBytes)`,
            { details: { ...details, limitBytes: limits.maxResponseBytes } },
          );
        case 'expired':
          throw new WeftError(
            ErrorCode.Timeout,
            `invocation waited past its timeout of ${limits.timeoutMs} ms`,
            { details },
          );
        case 'instantiate':
          log.error(
            { invocationId, traceId, reason: r.failure.message },
            'actor instance could not start',
          );
          throw new WeftError(
            ErrorCode.ActorTrap,
            `actor '${this.spec.name}' could not start: ${r.failure.message}`,
            {
              details,
            },
          );
      }
    }
    let parsed;
    try {
      parsed = parseCgiResponse(r.stdout, { method: head.method });
    } catch (err) {
      if (r.exitCode !== 0) {
        log.warn(
          { invocationId, traceId, exitCode: r.exitCode, stderr: stderrExcerpt(r.stderr) },
          'actor exited before a response',
        );
        throw new WeftError(
          ErrorCode.ActorExited,
          `actor '${this.spec.name}' exited with code ${r.exitCode} before writing a response`,
          { details },
        );
      }
      const reason = err instanceof WeftError ? err.message : String(err);
      log.warn({ invocationId, traceId, reason }, 'actor wrote a malformed CGI response');
      throw new WeftError(
        ErrorCode.BadCgiResponse,
        `actor '${this.spec.name}' wrote a malformed CGI response: ${reason}`,
        {
          details: { ...details, ...(err instanceof WeftError ? err.details : {}) },
        },
      );
    }
    if (parsed.body.length > limits.maxResponseBytes) {
      throw new WeftError(
        ErrorCode.ResponseTooLarge,
        `actor '${this.spec.name}' answered ${parsed.body.length} bytes, over limits.maxResponseBytes ${limits.maxResponseBytes}`,
        { details: { ...details, limitBytes: limits.maxResponseBytes } },
      );
    }
    if (r.exitCode !== 0)
      log.warn(
        { invocationId, traceId, exitCode: r.exitCode },
        'actor exited non-zero after a complete response',
      );
    return {
      head: { status: parsed.status, headers: parsed.headers },
      body: parsed.body,
      startUs: r.startUs,
      runUs: r.runUs,
    };
  }
}
