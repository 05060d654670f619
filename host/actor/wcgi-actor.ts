/**
 * One WCGI actor on this host: admission (in flight + queued bounded by the manifest's limits),
 * CGI variables in, a fresh instance per request on the worker pool, the CGI response parsed and
 * re-serialized, every failure mapped to a code the gateway turns into a status.
 */
import type { Logger } from 'pino';
import {
  DEFAULT_LIMITS,
  ErrorCode,
  WeftError,
  type HttpRequestHead,
  type HttpResponseHead,
  type ResolvedActor,
} from '../../lattice/index.ts';
import { encodeEnviron } from '../wasi/index.ts';
import { buildCgiEnv, parseCgiResponse } from '../wcgi/index.ts';
import { admitted, type ActorStats } from './admission.ts';
import type { LoadTreeMsg, OutboundGrant } from './worker-protocol.ts';
import type { WorkerPool } from './worker-pool.ts';

export const SERVER_SOFTWARE = 'weft/0.1.0';
/** stderr kept per invocation for logs. */
const STDERR_LIMIT_BYTES = 64 * 1024;
/** stderr excerpt put in a log line. */
const STDERR_LOG_CHARS = 2_000;

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

  constructor(opts: {
    app: string;
    spec: ResolvedActor;
    module: LoadedModule;
    trees: LoadedTree[];
    pool: WorkerPool;
    log: Logger;
  }) {
    this.app = opts.app;
    this.spec = opts.spec;
    this.module = opts.module;
    this.trees = opts.trees;
    this.#pool = opts.pool;
    this.#log = opts.log;
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
  ): Promise<InvokeResult> {
    return admitted(this.spec.name, this.spec.limits, this.stats, () =>
      this.#run(head, body, invocationId, deadline),
    );
  }

  async #run(
    head: HttpRequestHead,
    body: Uint8Array,
    invocationId: string,
    deadline: number,
  ): Promise<InvokeResult> {
    // Ids go into each log call: a child logger per request would cost more than most requests.
    const log = this.#log;
    const { limits } = this.spec;
    const env = encodeEnviron(
      buildCgiEnv(head, {
        bodyLength: body.length,
        serverSoftware: SERVER_SOFTWARE,
        actorEnv: this.spec.env,
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
    });
    for (const o of r.outbound ?? []) {
      // Denials name the URL and why (the rule checked); allowed requests are debug detail.
      if (o.outcome === 'ok') log.debug({ invocationId, outbound: o }, 'outbound request');
      else
        log.warn({ invocationId, actor: this.spec.name, outbound: o }, 'outbound request failed');
    }
    const stderr = r.stderr.length
      ? new TextDecoder().decode(r.stderr).slice(0, STDERR_LOG_CHARS)
      : '';
    if (stderr) log.info({ invocationId, stderr, truncated: r.stderrTruncated }, 'actor stderr');
    const details = { invocationId, exitCode: r.exitCode };
    if (r.failure) {
      switch (r.failure.kind) {
        case 'trap':
          log.error({ invocationId, trap: r.failure.message }, 'actor trapped');
          throw new WeftError(
            ErrorCode.ActorTrap,
            `actor '${this.spec.name}' trapped: ${r.failure.message}`,
            {
              details,
            },
          );
        case 'output-limit':
          log.warn(
            { invocationId, limitBytes: limits.maxResponseBytes },
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
          log.error({ invocationId, reason: r.failure.message }, 'actor instance could not start');
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
        log.warn({ invocationId, exitCode: r.exitCode, stderr }, 'actor exited before a response');
        throw new WeftError(
          ErrorCode.ActorExited,
          `actor '${this.spec.name}' exited with code ${r.exitCode} before writing a response`,
          { details },
        );
      }
      const reason = err instanceof WeftError ? err.message : String(err);
      log.warn({ invocationId, reason }, 'actor wrote a malformed CGI response');
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
        { invocationId, exitCode: r.exitCode },
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
