/**
 * A connection to one lattice: request/reply with the envelope codec and error mapping, gather
 * (ping every host), and serving handlers. Hosts, gateways and the CLI all talk through it.
 */
import { readFile } from 'node:fs/promises';
import {
  connect,
  createInbox,
  credsAuthenticator,
  headers as natsHeaders,
  errors as natsErrors,
  nkeyAuthenticator,
  nkeys,
  type Authenticator,
  type Msg,
  type MsgHdrs,
  type PublishOptions,
  type NatsConnection,
  type NodeConnectionOptions,
  type PermissionViolationError,
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
/**
 * A retryable request that no server acknowledged for this long is taken for lost (a message
 * dropped with a dying NATS server) and fails with WEFT_ERR_LATTICE_UNAVAILABLE, to be sent
 * again: a live host acknowledges within two ACK_EVERY_MS ticks of receiving it.
 */
export const UNACKED_LOST_MS = 2_000;

export interface ConnectOptions {
  /** One or more NATS URLs; `nats://user:pass@host` or `nats://token@host` credentials count. */
  servers: string | string[];
  lattice: string;
  /** Connection name shown by nats-server monitoring. */
  name?: string;
  /** Keep retrying the first connection instead of failing at once (gateways, hosts). */
  waitOnFirstConnect?: boolean;
  /** How long one attempt to connect may take (ms; default nats.js's 20 000). */
  connectTimeoutMs?: number;
  /** Credentials and TLS (see NatsAuth). */
  auth?: NatsAuth;
  /**
   * Replicas of the lattice's buckets when they are created: default 3 on a cluster of three or
   * more servers (env WEFT_REPLICAS overrides), else 1.
   */
  replicas?: number;
}

/**
 * How a process proves itself to NATS, and the TLS it uses. Files are read at connect time, and
 * a file that cannot be read or holds no credentials fails with WEFT_ERR_BAD_REQUEST naming it.
 * Passwords, tokens and seeds are never logged nor put in an error: log `describeAuth(auth)`.
 */
export interface NatsAuth {
  user?: string;
  pass?: string;
  token?: string;
  /** A NATS `.creds` file (a user JWT and its nkey seed, as `nsc` writes them). */
  creds?: string;
  /** An nkey seed (`SU…`), or a file that holds one. */
  nkeySeed?: string;
  /**
   * TLS, files in PEM: `ca` the authority that signed the server's certificate (default: the
   * system's), `cert` and `key` this client's certificate for servers that verify clients.
   */
  tls?: { ca?: string; cert?: string; key?: string };
}

/** What `auth` authenticates with, without its secrets (logs, error messages). */
export function describeAuth(auth: NatsAuth | undefined): string {
  const parts: string[] = [];
  if (auth?.creds !== undefined) parts.push(`credentials file ${auth.creds}`);
  if (auth?.nkeySeed !== undefined)
    parts.push(NKEY_SEED_RE.test(auth.nkeySeed.trim()) ? 'an nkey' : `nkey file ${auth.nkeySeed}`);
  if (auth?.user !== undefined) parts.push(`user '${auth.user}' with a password`);
  if (auth?.token !== undefined) parts.push('a token');
  if (auth?.tls?.cert !== undefined) parts.push(`client certificate ${auth.tls.cert}`);
  return parts.length === 0 ? 'no credentials' : parts.join(', ');
}

/** A NATS URL without the user and password it may carry (`nats://u:p@h:4222` → `nats://h:4222`). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1');
}

/** The servers as a printable list, credentials stripped. */
export function redactServers(servers: string | string[]): string {
  return (Array.isArray(servers) ? servers : [servers]).map(redactUrl).join(', ');
}

const NKEY_SEED_RE = /^SU[A-Z2-7]{56}$/;

/**
 * Credentials carried in the servers' URLs (`nats://user:pass@h`, `nats://token@h`), which nats.js
 * itself ignores, and the URLs without them.
 */
function credentialsFromUrls(servers: string | string[]): { servers: string[]; auth: NatsAuth } {
  const list = Array.isArray(servers) ? servers : [servers];
  let auth: NatsAuth = {};
  for (const url of list) {
    const m = /^[a-z]+:\/\/([^@/]*)@/i.exec(url);
    if (m === null || Object.keys(auth).length > 0) continue;
    const [user, pass] = m[1]!.split(':', 2).map((x) => decodeURIComponent(x));
    auth = pass === undefined ? { token: user! } : { user: user!, pass };
  }
  return { servers: list.map(redactUrl), auth };
}

async function readAuthFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new WeftError(
      ErrorCode.BadRequest,
      `cannot read the ${what} ${file}: ${e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message)}`,
      { details: { file } },
    );
  }
}

/** The nats.js options for `auth`: files read and checked, so a bad one is named at once. */
async function natsAuthOptions(auth: NatsAuth): Promise<Partial<NodeConnectionOptions>> {
  const out: Partial<NodeConnectionOptions> = {};
  const authenticators: Authenticator[] = [];
  if (auth.creds !== undefined) {
    const text = await readAuthFile(auth.creds, 'NATS credentials file');
    if (!/BEGIN NATS USER JWT/.test(text) || !/BEGIN USER NKEY SEED/.test(text)) {
      throw new WeftError(
        ErrorCode.BadRequest,
        `${auth.creds} is not a NATS credentials file: expected a user JWT and an nkey seed`,
        { details: { file: auth.creds } },
      );
    }
    authenticators.push(credsAuthenticator(new TextEncoder().encode(text)));
  }
  if (auth.nkeySeed !== undefined) {
    const given = auth.nkeySeed.trim();
    const inline = NKEY_SEED_RE.test(given);
    const seed = inline ? given : (await readAuthFile(given, 'nkey seed file')).trim();
    try {
      nkeys.fromSeed(new TextEncoder().encode(seed));
    } catch {
      throw new WeftError(
        ErrorCode.BadRequest,
        inline ? 'the nkey seed is not valid' : `${given} holds no valid user nkey seed (SU…)`,
        inline ? {} : { details: { file: given } },
      );
    }
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  if (authenticators.length > 0) out.authenticator = authenticators;
  if (auth.user !== undefined) out.user = auth.user;
  if (auth.pass !== undefined) out.pass = auth.pass;
  if (auth.token !== undefined) out.token = auth.token;
  const tls = auth.tls;
  if (tls !== undefined && (tls.ca ?? tls.cert ?? tls.key) !== undefined) {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      throw new WeftError(
        ErrorCode.BadRequest,
        'a TLS client certificate needs its key, and a key its certificate (--tls-cert with --tls-key)',
      );
    }
    out.tls = {
      ...(tls.ca === undefined ? {} : { ca: await readAuthFile(tls.ca, 'TLS CA file') }),
      ...(tls.cert === undefined
        ? {}
        : { cert: await readAuthFile(tls.cert, 'TLS certificate file') }),
      ...(tls.key === undefined ? {} : { key: await readAuthFile(tls.key, 'TLS key file') }),
    };
  }
  return out;
}

/** Node's TLS verification codes for a server certificate this client does not trust. */
const UNTRUSTED_CA = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);
const TLS_REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's certificate does not name the host connected to",
};
/** TLS alerts of a server that refused this client's certificate (or its lack of one). */
const CLIENT_CERT_REFUSED_RE = /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA)/;

/**
 * Why a connection failed, as a WeftError: refused credentials → WEFT_ERR_UNAUTHORIZED, anything
 * else → WEFT_ERR_LATTICE_UNAVAILABLE; each names the servers, never a secret.
 */
function connectError(err: unknown, servers: string, auth: NatsAuth | undefined): WeftError {
  if (err instanceof WeftError) return err;
  const chain: Error[] = [];
  for (let e = err; e instanceof Error && chain.length < 5; e = e.cause) chain.push(e);
  const authErr = chain.find(
    (e) =>
      e instanceof natsErrors.AuthorizationError ||
      e instanceof natsErrors.UserAuthenticationExpiredError ||
      /authorization violation|authentication/i.test(e.message),
  );
  if (authErr !== undefined) {
    const given = describeAuth(auth);
    return new WeftError(
      ErrorCode.Unauthorized,
      given === 'no credentials'
        ? `NATS at ${servers} requires credentials: give --creds, --nkey, --user with --password, or --token`
        : `NATS at ${servers} refused ${given}: ${authErr.message.toLowerCase()}`,
      { cause: authErr, details: { servers } },
    );
  }
  const codes = chain.map((e) => String((e as NodeJS.ErrnoException).code ?? ''));
  const refusedCert = codes.find((c) => CLIENT_CERT_REFUSED_RE.test(c));
  if (refusedCert !== undefined) {
    return new WeftError(
      ErrorCode.Unauthorized,
      `NATS at ${servers} refused this client's TLS certificate${auth?.tls?.cert === undefined ? ' (none given: --tls-cert and --tls-key)' : ` ${auth.tls.cert}`} (${refusedCert})`,
      { details: { servers } },
    );
  }
  const untrusted = codes.find((c) => UNTRUSTED_CA.has(c));
  const known = codes.find((c) => c in TLS_REASONS);
  let message: string;
  if (untrusted !== undefined) {
    message =
      auth?.tls?.ca === undefined
        ? `TLS: the server's certificate is not signed by a CA this system trusts: give its CA with --tls-ca (${untrusted})`
        : `TLS: the server's certificate is not signed by the CA in ${auth.tls.ca} (${untrusted})`;
  } else if (known !== undefined) {
    message = `TLS: ${TLS_REASONS[known]} (${known})`;
  } else {
    message = chain.map((e) => e.message).find((m) => m !== '') ?? String(err);
    // A TLS 1.3 server that refuses the client's certificate (or its lack of one) closes the
    // connection after the handshake, which nats.js does not notice: the attempt times out.
    if (/timeout/i.test(message) && auth?.tls !== undefined) {
      message +=
        auth.tls.cert === undefined
          ? ' (if the server verifies clients, give --tls-cert and --tls-key)'
          : ` (if the server verifies clients, it may not accept ${auth.tls.cert})`;
    }
  }
  return new WeftError(
    ErrorCode.LatticeUnavailable,
    `cannot connect to NATS at ${servers}: ${redactSecrets(message, auth)}`,
    { cause: err, details: { servers } },
  );
}

/** A message with any URL credentials, password or token in it masked. */
function redactSecrets(message: string, auth: NatsAuth | undefined): string {
  let out = message.replace(/([a-z]+:\/\/)[^@/\s]*@/gi, '$1');
  for (const secret of [auth?.pass, auth?.token]) {
    if (secret !== undefined && secret.length > 0) out = out.split(secret).join('***');
  }
  return out;
}

/**
 * Connect to NATS; a refused login becomes WEFT_ERR_UNAUTHORIZED, any other failure
 * WEFT_ERR_LATTICE_UNAVAILABLE, each naming the servers (without credentials); an unreadable
 * credentials file WEFT_ERR_BAD_REQUEST naming the file.
 */
export async function connectLattice(opts: ConnectOptions): Promise<LatticeClient> {
  const subjects = new Subjects(opts.lattice);
  const fromUrls = credentialsFromUrls(opts.servers);
  const auth: NatsAuth = { ...fromUrls.auth, ...opts.auth };
  const servers = redactServers(opts.servers);
  try {
    const nc = await connect({
      servers: fromUrls.servers,
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(await natsAuthOptions(auth)),
      // Replies come back under the lattice's prefix, which NATS permissions can scope.
      inboxPrefix: subjects.inbox(),
      // Error objects with stack traces for every request cost more than the request itself.
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
      ...(opts.connectTimeoutMs === undefined ? {} : { timeout: opts.connectTimeoutMs }),
    });
    return new LatticeClient(nc, subjects, opts.replicas ?? defaultReplicas(nc));
  } catch (err) {
    throw connectError(err, servers, auth);
  }
}

export interface RequestOpts {
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** The code to raise when nobody subscribes to the subject (default NoHost). */
  noResponders?: { code: ErrorCode; message: string };
  /**
   * The request may be sent again: unacknowledged by any host for UNACKED_LOST_MS, or sent before
   * the connection broke (`abandonSentBefore`), it fails so that the caller sends it again.
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
    void this.#watchPermissions();
  }

  readonly #deniedListeners: ((err: WeftError) => void)[] = [];

  /**
   * Call `fn` with WEFT_ERR_UNAUTHORIZED whenever NATS refuses this connection a publish or a
   * subscription (its user lacks the permission): NATS says so asynchronously, and the message or
   * subscription is lost. Requests made through this client fail with the error by themselves.
   */
  onPermissionDenied(fn: (err: WeftError) => void): void {
    this.#deniedListeners.push(fn);
  }

  /**
   * NATS reports a permission violation as an error on the connection, not on the publish: fail
   * the pending requests to that subject at once (else they would wait out their timeout), and all
   * of them if the reply subscription itself was refused.
   */
  async #watchPermissions(): Promise<void> {
    for await (const st of this.nc.status()) {
      if (st.type !== 'error' || !(st.error instanceof natsErrors.PermissionViolationError)) {
        continue;
      }
      const pv = st.error;
      const err = permissionDenied(pv);
      const inboxRefused =
        pv.operation === 'subscription' &&
        this.#inboxPrefix !== undefined &&
        pv.subject === `${this.#inboxPrefix}*`;
      if (inboxRefused) this.#inboxPrefix = undefined;
      for (const [token, p] of this.#pending) {
        if (!inboxRefused && !(pv.operation === 'publish' && p.subject === pv.subject)) continue;
        this.#pending.delete(token);
        p.reject(err);
      }
      for (const fn of this.#deniedListeners) fn(err);
    }
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
      const prefix = `${createInbox(this.subjects.inbox())}.`;
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
        if (p.retryable && p.hostId === undefined && now - p.sentAt > UNACKED_LOST_MS) {
          // No host said it has it: the message was lost on the way (a server between died).
          this.#pending.delete(token);
          p.reject(
            new WeftError(
              ErrorCode.LatticeUnavailable,
              `no host acknowledged ${p.subject} within ${UNACKED_LOST_MS} ms`,
              { details: { subject: p.subject } },
            ),
          );
          continue;
        }
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
   * A host is gone (it missed its heartbeats, or stopped): fail the requests it acknowledged
   * with WEFT_ERR_HOST_LOST. (Those it held without acknowledging yet fail by themselves after
   * UNACKED_LOST_MS.) Their replies, should any still come, are ignored. Returns how many failed.
   */
  abandonHost(hostId: string): number {
    let failed = 0;
    for (const [token, p] of this.#pending) {
      if (p.hostId !== hostId) continue;
      this.#pending.delete(token);
      failed++;
      p.reject(
        new WeftError(ErrorCode.HostLost, `host ${hostId} was lost while serving ${p.subject}`, {
          details: { subject: p.subject, hostId },
        }),
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
      throw permissionDeniedIn(err) ?? err;
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
      if (!isNoResponders(err)) throw permissionDeniedIn(err) ?? err;
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
    const held = opts.ack === undefined ? undefined : this.#acker(opts.ack);
    return this.nc.subscribe(subject, {
      ...(opts.queue === undefined ? {} : { queue: opts.queue }),
      callback: (err, msg) => {
        if (err) return;
        const inbox = msg.reply;
        if (held !== undefined && inbox) held.inFlight.set(inbox, held.clock.tick);
        void (async () => {
          let reply: Uint8Array;
          try {
            reply = encode(await handler(decode(msg.data), msg));
          } catch (e) {
            reply = encodeError(e);
          }
          if (inbox) {
            held?.inFlight.delete(inbox);
            this.#publishSoon(inbox, reply, {});
          }
        })();
      },
    });
  }

  readonly #ackers = new Map<string, { inFlight: Map<string, number>; clock: { tick: number } }>();
  readonly #ackTimers: NodeJS.Timeout[] = [];

  /**
   * Reply subjects of requests in flight as `hostId`, with the tick each came in: a timer
   * acknowledges, once, those in flight for a whole tick (ACK_EVERY_MS). A request answered
   * sooner, as most are, costs no acknowledgement.
   */
  #acker(hostId: string): { inFlight: Map<string, number>; clock: { tick: number } } {
    let held = this.#ackers.get(hostId);
    if (held !== undefined) return held;
    const inFlight = new Map<string, number>();
    const clock = { tick: 0 };
    held = { inFlight, clock };
    this.#ackers.set(hostId, held);
    const headers = toHeaders({ [Header.Ack]: hostId });
    const empty = new Uint8Array(0);
    const timer = setInterval(() => {
      clock.tick++;
      if (inFlight.size === 0 || this.nc.isClosed()) return;
      for (const [inbox, since] of inFlight) {
        if (since > clock.tick - 2) continue;
        this.#publishSoon(inbox, empty, { headers });
        inFlight.delete(inbox);
      }
    }, ACK_EVERY_MS);
    timer.unref();
    this.#ackTimers.push(timer);
    return held;
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

/** WEFT_ERR_UNAUTHORIZED for a permission violation: what was refused, and on which subject. */
export function permissionDenied(pv: PermissionViolationError): WeftError {
  const what =
    pv.operation === 'publish'
      ? `publish to ${pv.subject}`
      : `subscribe to ${pv.subject}${pv.queue === undefined ? '' : ` (queue ${pv.queue})`}`;
  return new WeftError(ErrorCode.Unauthorized, `permission denied to ${what}`, {
    cause: pv,
    details: { operation: pv.operation, subject: pv.subject },
  });
}

/** The WEFT_ERR_UNAUTHORIZED for `err` if a permission violation is it or its cause. */
export function permissionDeniedIn(err: unknown): WeftError | undefined {
  for (let e = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    if (e instanceof natsErrors.PermissionViolationError) return permissionDenied(e);
  }
  return undefined;
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
  const denied = permissionDeniedIn(err);
  if (denied !== undefined) return denied;
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
