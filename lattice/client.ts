/**
 * A connection to one lattice: request/reply with the envelope codec and error mapping, gather
 * (ping every host), and serving handlers. Hosts, gateways and the CLI all talk through it.
 */
import {
  connect,
  createInbox,
  headers as natsHeaders,
  errors as natsErrors,
  type Msg,
  type MsgHdrs,
  type PublishOptions,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import { decode, encode, encodeError } from './envelope.ts';
import { ErrorCode, WeftError } from './errors.ts';
import { Subjects } from './subjects.ts';

/** Default deadline of a control request (ms). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** How long `gather` waits for answers (ms). */
export const DEFAULT_GATHER_WAIT_MS = 500;

/** Header names carried on lattice messages. */
export const Header = {
  TraceParent: 'traceparent',
  /** Absolute deadline of the caller, epoch milliseconds. */
  Deadline: 'weft-deadline',
  InvocationId: 'weft-invocation-id',
  /**
   * On an empty message to a request's reply subject: "host ID has this request". Not a reply;
   * the requester learns which host to give up on if that host dies (see `abandonHost`).
   */
  Ack: 'weft-ack',
} as const;

/** A server acknowledges requests still in flight this often (ms); see `serve`'s `ack`. */
export const ACK_EVERY_MS = 100;

export interface ConnectOptions {
  /** One or more NATS URLs. */
  servers: string | string[];
  lattice: string;
  /** Connection name shown by nats-server monitoring. */
  name?: string;
  /** Keep retrying the first connection instead of failing at once (gateways, hosts). */
  waitOnFirstConnect?: boolean;
  user?: string;
  pass?: string;
  token?: string;
  /**
   * Replicas of the lattice's buckets when they are created: default 3 on a cluster of three or
   * more servers (env WEFT_REPLICAS overrides), else 1.
   */
  replicas?: number;
}

/** Connect to NATS; a failure becomes WEFT_ERR_LATTICE_UNAVAILABLE naming the servers. */
export async function connectLattice(opts: ConnectOptions): Promise<LatticeClient> {
  const subjects = new Subjects(opts.lattice);
  try {
    const nc = await connect({
      servers: opts.servers,
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(opts.user === undefined ? {} : { user: opts.user }),
      ...(opts.pass === undefined ? {} : { pass: opts.pass }),
      ...(opts.token === undefined ? {} : { token: opts.token }),
      // Error objects with stack traces for every request cost more than the request itself.
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
    });
    return new LatticeClient(nc, subjects, opts.replicas ?? defaultReplicas(nc));
  } catch (err) {
    const servers = Array.isArray(opts.servers) ? opts.servers.join(', ') : opts.servers;
    throw new WeftError(
      ErrorCode.LatticeUnavailable,
      `cannot connect to NATS at ${servers}: ${(err as Error).message}`,
      { cause: err, details: { servers } },
    );
  }
}

export interface RequestOpts {
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** The code to raise when nobody subscribes to the subject (default NoHost). */
  noResponders?: { code: ErrorCode; message: string };
  /**
   * The request may be sent again: when a host is lost (`abandonHost`), this request fails with
   * WEFT_ERR_HOST_LOST even if no host acknowledged it yet.
   */
  retryable?: boolean;
}

/** How often pending requests are checked against their deadlines (ms). */
const REQUEST_SWEEP_MS = 25;

interface PendingRequest {
  resolve(msg: Msg): void;
  reject(err: unknown): void;
  deadline: number;
  subject: string;
  timeoutMs: number;
  noResponders: RequestOpts['noResponders'];
  sentAt: number;
  retryable: boolean;
  /** The host that acknowledged the request (serve's `ack`). */
  hostId?: string;
}

export type Handler = (body: unknown, msg: Msg) => Promise<unknown> | unknown;

/**
 * R3 on a cluster that has at least three servers (the servers a client may reconnect to, as the
 * server announces them), else R1; WEFT_REPLICAS (1, 3 or 5) says otherwise.
 */
function defaultReplicas(nc: NatsConnection): number {
  const env = Number(process.env['WEFT_REPLICAS']);
  if (env === 1 || env === 3 || env === 5) return env;
  const info = nc.info;
  return info?.cluster !== undefined && (info.connect_urls?.length ?? 0) >= 3 ? 3 : 1;
}

export class LatticeClient {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  /** Replicas of the buckets this client creates. */
  readonly replicas: number;
  constructor(nc: NatsConnection, subjects: Subjects, replicas = 1) {
    this.nc = nc;
    this.subjects = subjects;
    this.replicas = replicas;
  }

  get lattice(): string {
    return this.subjects.lattice;
  }

  /** Send an enveloped request and decode the reply, rethrowing the responder's error. */
  async request<T>(subject: string, body: unknown, opts: RequestOpts = {}): Promise<T> {
    const msg = await this.requestRaw(subject, encode(body), opts);
    return decode<T>(msg.data);
  }

  /**
   * Request with a raw payload; maps timeouts and no-responders to WeftErrors. Replies come back
   * on one wildcard inbox subscription per connection, and deadlines are checked by one sweep
   * timer: per request this costs a map entry, where nats.js's own `request` builds a timer and
   * two error objects with stack traces.
   */
  requestRaw(subject: string, payload: Uint8Array, opts: RequestOpts = {}): Promise<Msg> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const token = String(this.#nextToken++);
    return new Promise<Msg>((resolve, reject) => {
      const now = Date.now();
      this.#pending.set(token, {
        resolve,
        reject,
        deadline: now + timeoutMs,
        subject,
        timeoutMs,
        noResponders: opts.noResponders,
        sentAt: now,
        retryable: opts.retryable === true,
      });
      this.#ensureSweep();
      this.#publishSoon(subject, payload, {
        reply: `${this.#inbox()}${token}`,
        ...(opts.headers === undefined ? {} : { headers: toHeaders(opts.headers) }),
      });
    });
  }

  readonly #outbox: { subject: string; payload: Uint8Array; opts: PublishOptions }[] = [];

  /**
   * Publish at the end of this turn of the event loop, together with everything else published
   * in it: one socket write for many messages. On loopback every write wakes the server, and
   * those wake-ups, not the bytes, are what a small machine runs out of under load.
   */
  #publishSoon(subject: string, payload: Uint8Array, opts: PublishOptions): void {
    if (this.#outbox.push({ subject, payload, opts }) === 1)
      setImmediate(() => this.#flushOutbox());
  }

  #flushOutbox(): void {
    for (const m of this.#outbox.splice(0)) {
      try {
        this.nc.publish(m.subject, m.payload, m.opts);
      } catch (err) {
        const token = m.opts.reply?.slice(this.#inboxPrefix?.length ?? 0);
        const p = token === undefined ? undefined : this.#pending.get(token);
        if (p && token !== undefined) {
          this.#pending.delete(token);
          p.reject(mapRequestError(err, p.subject, p.timeoutMs, p.noResponders));
        }
      }
    }
  }

  readonly #pending = new Map<string, PendingRequest>();
  #nextToken = 1;
  #inboxPrefix: string | undefined;
  #sweep: NodeJS.Timeout | undefined;

  #inbox(): string {
    if (this.#inboxPrefix === undefined) {
      const prefix = `${createInbox()}.`;
      this.#inboxPrefix = prefix;
      this.nc.subscribe(`${prefix}*`, {
        callback: (err, msg) => {
          if (err) return;
          const token = msg.subject.slice(prefix.length);
          const p = this.#pending.get(token);
          if (!p) return;
          if (msg.data.length === 0) {
            const ack = msg.headers?.get(Header.Ack);
            if (ack) {
              p.hostId = ack;
              return;
            }
          }
          this.#pending.delete(token);
          // A no-responders status arrives as an empty message with a 503 status header.
          if (msg.data.length === 0 && msg.headers?.code === 503) {
            p.reject(
              mapRequestError(
                new natsErrors.NoRespondersError(p.subject),
                p.subject,
                p.timeoutMs,
                p.noResponders,
              ),
            );
          } else {
            p.resolve(msg);
          }
        },
      });
    }
    return this.#inboxPrefix;
  }

  #ensureSweep(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const [token, p] of this.#pending) {
        if (now < p.deadline) continue;
        this.#pending.delete(token);
        p.reject(
          new WeftError(ErrorCode.Timeout, `no reply on ${p.subject} within ${p.timeoutMs} ms`, {
            details: { subject: p.subject, timeoutMs: p.timeoutMs },
          }),
        );
      }
      if (this.#pending.size === 0) {
        clearInterval(this.#sweep);
        this.#sweep = undefined;
      }
    }, REQUEST_SWEEP_MS);
    this.#sweep.unref();
  }

  /**
   * A host is gone (it missed its heartbeats, or stopped): fail the requests it acknowledged, and
   * the retryable ones still unacknowledged after `unackedGraceMs` (a live host acknowledges within
   * ACK_EVERY_MS of receiving; the request may have died with the host), with WEFT_ERR_HOST_LOST.
   * Their replies, should any still come, are ignored. Returns how many failed.
   */
  abandonHost(hostId: string, unackedGraceMs: number): number {
    const before = Date.now() - unackedGraceMs;
    let failed = 0;
    for (const [token, p] of this.#pending) {
      const acked = p.hostId === hostId;
      if (!acked && !(p.hostId === undefined && p.retryable && p.sentAt < before)) continue;
      this.#pending.delete(token);
      failed++;
      p.reject(
        new WeftError(
          ErrorCode.HostLost,
          acked
            ? `host ${hostId} was lost while serving ${p.subject}`
            : `no host acknowledged ${p.subject} and host ${hostId} was lost`,
          { details: { subject: p.subject, hostId, acknowledged: acked } },
        ),
      );
    }
    return failed;
  }

  /**
   * The connection broke at `t` and is back: fail the retryable requests sent before it (their
   * replies may have been lost with the server) with WEFT_ERR_LATTICE_UNAVAILABLE, so that they
   * are sent again. Returns how many failed.
   */
  abandonSentBefore(t: number): number {
    let failed = 0;
    for (const [token, p] of this.#pending) {
      if (!p.retryable || p.sentAt >= t) continue;
      this.#pending.delete(token);
      failed++;
      p.reject(
        new WeftError(
          ErrorCode.LatticeUnavailable,
          `the NATS connection broke while waiting on ${p.subject}`,
          { details: { subject: p.subject } },
        ),
      );
    }
    return failed;
  }

  /** Publish an enveloped message (events). */
  publish(subject: string, body: unknown): void {
    this.nc.publish(subject, encode(body));
  }

  /** Ask every responder and collect the answers that arrive within `maxWaitMs`. */
  async gather<T>(
    subject: string,
    body: unknown,
    maxWaitMs = DEFAULT_GATHER_WAIT_MS,
  ): Promise<T[]> {
    const out: T[] = [];
    let it: AsyncIterable<Msg>;
    try {
      it = await this.nc.requestMany(subject, encode(body), {
        strategy: 'timer',
        maxWait: maxWaitMs,
      });
    } catch (err) {
      if (isNoResponders(err)) return out;
      throw err;
    }
    try {
      for await (const m of it) {
        // A no-responders status arrives as an empty message with a 503 header.
        if (m.data.length === 0) continue;
        try {
          out.push(decode<T>(m.data));
        } catch {
          // One bad answer does not hide the others.
        }
      }
    } catch (err) {
      if (!isNoResponders(err)) throw err;
    }
    return out;
  }

  /**
   * Serve requests on `subject` (optionally in a queue group). A handler's return value is the
   * reply body; a thrown error is replied as its wire form. Handlers run concurrently. With
   * `ack` (this server's host id), requests still in flight are acknowledged every ACK_EVERY_MS,
   * so that a requester can give up on them at once if this host dies; a request answered
   * sooner costs no message more.
   */
  serve(
    subject: string,
    handler: Handler,
    opts: { queue?: string; ack?: string } = {},
  ): Subscription {
    const unacked = opts.ack === undefined ? undefined : this.#acker(opts.ack);
    return this.nc.subscribe(subject, {
      ...(opts.queue === undefined ? {} : { queue: opts.queue }),
      callback: (err, msg) => {
        if (err) return;
        const inbox = msg.reply;
        if (unacked !== undefined && inbox) unacked.add(inbox);
        void (async () => {
          let reply: Uint8Array;
          try {
            reply = encode(await handler(decode(msg.data), msg));
          } catch (e) {
            reply = encodeError(e);
          }
          if (inbox) {
            unacked?.delete(inbox);
            this.#publishSoon(inbox, reply, {});
          }
        })();
      },
    });
  }

  readonly #ackers = new Map<string, Set<string>>();
  readonly #ackTimers: NodeJS.Timeout[] = [];

  /** The set of reply subjects awaiting an acknowledgement as `hostId`, swept by one timer. */
  #acker(hostId: string): Set<string> {
    let unacked = this.#ackers.get(hostId);
    if (unacked !== undefined) return unacked;
    const set = new Set<string>();
    unacked = set;
    this.#ackers.set(hostId, set);
    const headers = toHeaders({ [Header.Ack]: hostId });
    const empty = new Uint8Array(0);
    const timer = setInterval(() => {
      if (set.size === 0 || this.nc.isClosed()) return;
      for (const inbox of set) this.#publishSoon(inbox, empty, { headers });
      set.clear();
    }, ACK_EVERY_MS);
    timer.unref();
    this.#ackTimers.push(timer);
    return unacked;
  }

  /** Flush, then drain subscriptions and close; pending requests fail. */
  async close(): Promise<void> {
    if (!this.nc.isClosed()) this.#flushOutbox();
    clearInterval(this.#sweep);
    for (const t of this.#ackTimers) clearInterval(t);
    for (const p of this.#pending.values()) {
      p.reject(new WeftError(ErrorCode.LatticeUnavailable, 'the lattice connection was closed'));
    }
    this.#pending.clear();
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }
}

export function toHeaders(h: Record<string, string>): MsgHdrs {
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof natsErrors.NoRespondersError) return true;
  if (err instanceof natsErrors.RequestError) return err.isNoResponders();
  return false;
}

function mapRequestError(
  err: unknown,
  subject: string,
  timeoutMs: number,
  noResponders: RequestOpts['noResponders'],
): unknown {
  if (err instanceof WeftError) return err;
  if (isNoResponders(err)) {
    return new WeftError(
      noResponders?.code ?? ErrorCode.NoHost,
      noResponders?.message ?? `no host answers on ${subject}`,
      { details: { subject } },
    );
  }
  if (
    err instanceof natsErrors.TimeoutError ||
    (err instanceof natsErrors.RequestError && err.cause instanceof natsErrors.TimeoutError)
  ) {
    return new WeftError(ErrorCode.Timeout, `no reply on ${subject} within ${timeoutMs} ms`, {
      details: { subject, timeoutMs },
    });
  }
  if (err instanceof natsErrors.ClosedConnectionError) {
    return new WeftError(ErrorCode.LatticeUnavailable, 'the NATS connection is closed', {
      cause: err,
    });
  }
  return new WeftError(ErrorCode.Internal, (err as Error).message ?? String(err), { cause: err });
}
