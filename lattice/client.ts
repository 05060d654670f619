/**
 * A connection to one lattice: request/reply with the envelope codec and error mapping, gather
 * (ping every host), and serving handlers. Hosts, gateways and the CLI all talk through it.
 */
import {
  connect,
  headers as natsHeaders,
  errors as natsErrors,
  type Msg,
  type MsgHdrs,
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
} as const;

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
    return new LatticeClient(nc, subjects);
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
}

export type Handler = (body: unknown, msg: Msg) => Promise<unknown> | unknown;

export class LatticeClient {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  constructor(nc: NatsConnection, subjects: Subjects) {
    this.nc = nc;
    this.subjects = subjects;
  }

  get lattice(): string {
    return this.subjects.lattice;
  }

  /** Send an enveloped request and decode the reply, rethrowing the responder's error. */
  async request<T>(subject: string, body: unknown, opts: RequestOpts = {}): Promise<T> {
    const msg = await this.requestRaw(subject, encode(body), opts);
    return decode<T>(msg.data);
  }

  /** Request with a raw payload; maps NATS timeouts and no-responders to WeftErrors. */
  async requestRaw(subject: string, payload: Uint8Array, opts: RequestOpts = {}): Promise<Msg> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    try {
      return await this.nc.request(subject, payload, {
        timeout: timeoutMs,
        ...(opts.headers === undefined ? {} : { headers: toHeaders(opts.headers) }),
      });
    } catch (err) {
      throw mapRequestError(err, subject, timeoutMs, opts.noResponders);
    }
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
   * reply body; a thrown error is replied as its wire form. Handlers run concurrently.
   */
  serve(subject: string, handler: Handler, opts: { queue?: string } = {}): Subscription {
    return this.nc.subscribe(subject, {
      ...(opts.queue === undefined ? {} : { queue: opts.queue }),
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          let reply: Uint8Array;
          try {
            reply = encode(await handler(decode(msg.data), msg));
          } catch (e) {
            reply = encodeError(e);
          }
          if (msg.reply) msg.respond(reply);
        })();
      },
    });
  }

  /** Flush, then drain subscriptions and close. */
  async close(): Promise<void> {
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
