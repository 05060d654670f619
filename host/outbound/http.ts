/**
 * The host's HTTP client for actors: one outbound request under an `OutboundPolicy`, on undici.
 *
 * The model:
 * - The URL (and each redirect's Location) is checked with `checkUrl` before anything is sent; a
 *   denial throws `OutboundError('denied')` and no connection is attempted.
 * - Sockets are opened by a connector of our own: an IP-literal host is checked with
 *   `checkAddress` before connecting, and a name is resolved by a `lookup` that checks every
 *   address and hands the socket only those that passed. The address connected is the address
 *   checked: no rebinding window between check and connect. TLS keeps the URL's name (SNI and
 *   certificate check), and undici writes the Host header from the URL.
 * - The guest never sets Host or hop-by-hop headers, so it cannot reach another name through a
 *   granted address, nor smuggle a second request.
 * - Redirects are followed here, never by undici, so each hop is checked the same way.
 * - One timer covers connect, headers and the whole body; the response cap counts bytes as they
 *   arrive (and a Content-Length over the cap fails before reading). Bodies are passed through
 *   undecoded, so the cap counts what crossed the network.
 * - Connections are kept alive for the next call under the same policy (one undici Agent per
 *   policy, idle connections closed after KEEP_ALIVE_MS), never shared with another policy: a
 *   kept connection was checked when it was opened, for an origin the policy still grants, and
 *   each call's URL is checked again before it is sent on one. A call that ends early (a
 *   timeout, a cancel, a body left unread) destroys its connection instead of returning it.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import {
  DEFAULT_PORTS,
  ErrorCode,
  HOP_BY_HOP_FIELDS,
  HTTP_TOKEN,
  WeftError,
  type OutboundPolicy,
} from '../../lattice/index.ts';

/** A request as the guest built it. */
export interface OutboundRequest {
  method: string;
  /** An absolute http: or https: URL. */
  url: string;
  headers: [string, string][];
  /** Bytes (resent on a 307/308 redirect), or a stream (a 307/308 then ends the redirects). */
  body?: Uint8Array | AsyncIterable<Uint8Array>;
  /**
   * W3C trace context to send (`00-<trace id>-<this request's span id>-<flags>`), on every hop;
   * a `traceparent` among `headers` wins over it.
   */
  traceparent?: string;
}

/** Limits of one call. */
export interface OutboundLimits {
  /** Connect + headers + the whole body, redirects included (ms). */
  timeoutMs: number;
  /** Response body bytes (of the final response). */
  maxResponseBytes: number;
  /** Redirects followed (default 5); 0 returns 3xx responses as they are. */
  maxRedirects?: number;
}

/** A response whose body is still to be read. */
export interface OutboundResponse {
  status: number;
  /** In the order received; names lowercase, repeated headers repeated. */
  headers: [string, string][];
  /** Body pieces; the cap is enforced as they arrive (an OutboundError 'too_large' is thrown from the iterator). */
  body: AsyncIterable<Uint8Array>;
  /** Release the connection early; the body iterator then ends. */
  cancel(): void;
  /** The final URL, after redirects. */
  url: string;
  /** The allowlist entry that allowed the final URL. */
  rule: string;
}

/** Redirects followed when `maxRedirects` is not given. */
export const DEFAULT_MAX_REDIRECTS = 5;

export type OutboundErrorKind =
  'denied' | 'bad_url' | 'timeout' | 'too_large' | 'connect' | 'protocol';

const CODE_BY_KIND: Readonly<Record<OutboundErrorKind, ErrorCode>> = {
  denied: ErrorCode.PolicyDenied,
  bad_url: ErrorCode.BadRequest,
  timeout: ErrorCode.Timeout,
  too_large: ErrorCode.ResponseTooLarge,
  connect: ErrorCode.Protocol,
  protocol: ErrorCode.Protocol,
};

/**
 * Why an outbound call failed. `denied`: the policy refused the URL or every address it resolved
 * to (`rule`: the entry that allowed the URL but not the address, if any). `bad_url`: not an
 * absolute http(s) URL, or a redirect to one. `timeout`: `timeoutMs` passed. `too_large`: the
 * response body passed `maxResponseBytes`. `connect`: DNS, TCP or TLS failed. `protocol`: a bad
 * request (method, header) or response, too many redirects, or the connection lost mid-body.
 * Codes: WEFT_ERR_POLICY_DENIED, WEFT_ERR_BAD_REQUEST, WEFT_ERR_TIMEOUT,
 * WEFT_ERR_RESPONSE_TOO_LARGE, WEFT_ERR_PROTOCOL.
 */
export class OutboundError extends WeftError {
  readonly kind: OutboundErrorKind;
  readonly rule?: string;
  /** The URL of the hop that failed (after redirects, the redirect's target). */
  readonly url: string;
  constructor(
    kind: OutboundErrorKind,
    message: string,
    url: string,
    options?: ErrorOptions & { rule?: string | undefined },
  ) {
    const rule = options?.rule;
    super(CODE_BY_KIND[kind], message, {
      ...(options?.cause === undefined ? {} : { cause: options.cause }),
      details: { kind, url, ...(rule === undefined ? {} : { rule }) },
    });
    this.kind = kind;
    this.url = url;
    if (rule !== undefined) this.rule = rule;
  }
}

/** Field values: no CR, LF or NUL (RFC 9110 §5.5), and bytes only (latin1). */
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Methods that fetch normalizes to upper case; the others are sent as written. */
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
/** Not a request one sends to an origin (and CONNECT would turn the connection into a tunnel). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Request-body headers, dropped when a redirect turns the request into a GET (fetch §4.4). */
const BODY_HEADERS = new Set([
  'content-encoding',
  'content-language',
  'content-location',
  'content-type',
]);
/** Credentials set by the guest for one origin are not sent to another one after a redirect. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie']);
/** Bytes of a redirect's body read to keep its connection; past that it is closed. */
const REDIRECT_DRAIN_BYTES = 64 * 1024;

function parseUrl(text: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch (err) {
    throw new OutboundError(
      'bad_url',
      `${base === undefined ? 'URL' : 'redirect Location'} ${JSON.stringify(text)} is not a valid URL`,
      text,
      { cause: err },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OutboundError(
      'bad_url',
      `${url.protocol} URLs are not supported (http: and https: are)`,
      url.href,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new OutboundError(
      'bad_url',
      'credentials in the URL are not supported: send an Authorization header',
      url.href,
    );
  }
  url.hash = '';
  return url;
}

function normalizeMethod(method: string, url: URL): string {
  if (!HTTP_TOKEN.test(method)) {
    throw new OutboundError(
      'protocol',
      `method ${JSON.stringify(method)} is not a valid token`,
      url.href,
    );
  }
  const upper = method.toUpperCase();
  if (FORBIDDEN_METHODS.has(upper)) {
    throw new OutboundError('protocol', `method ${upper} is not allowed`, url.href);
  }
  return NORMALIZED_METHODS.has(upper) ? upper : method;
}

/**
 * The guest's headers minus those the client controls: Host (from the URL, so a granted address
 * cannot be asked for another name), hop-by-hop ones and those the Connection header names,
 * Proxy-*, Expect, and Content-Length unless the body is a stream (undici computes it otherwise
 * and checks a stream against it).
 */
function sanitizeHeaders(
  headers: [string, string][],
  streamed: boolean,
  url: URL,
): [string, string][] {
  const named = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() === 'connection') {
      for (const token of value.split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out: [string, string][] = [];
  for (const [name, rawValue] of headers) {
    const value = rawValue.trim();
    if (!HTTP_TOKEN.test(name) || !VALUE_RE.test(value)) {
      throw new OutboundError('protocol', `header ${JSON.stringify(name)} is not valid`, url.href);
    }
    const lower = name.toLowerCase();
    if (
      lower === 'host' ||
      lower === 'expect' ||
      lower.startsWith('proxy-') ||
      HOP_BY_HOP_FIELDS.has(lower) ||
      named.has(lower) ||
      (lower === 'content-length' && !streamed)
    ) {
      continue;
    }
    out.push([name, value]);
  }
  return out;
}

function checkLimits(limits: OutboundLimits): number {
  const { timeoutMs, maxResponseBytes, maxRedirects = DEFAULT_MAX_REDIRECTS } = limits;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new RangeError(`timeoutMs must be a positive number, not ${timeoutMs}`);
  }
  if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 0) {
    throw new RangeError(`maxResponseBytes must be an integer >= 0, not ${maxResponseBytes}`);
  }
  if (!Number.isSafeInteger(maxRedirects) || maxRedirects < 0) {
    throw new RangeError(`maxRedirects must be an integer >= 0, not ${maxRedirects}`);
  }
  return maxRedirects;
}

function errorCode(err: unknown): string {
  if (err instanceof AggregateError) return errorCode(err.errors[0]);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(messageOf).join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

function findOutboundError(err: unknown): OutboundError | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof OutboundError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** DNS, TCP and TLS failures: errno-style codes, and TLS/certificate ones. */
function isConnectFailure(code: string): boolean {
  return /^E[A-Z_]+$/.test(code) || /TLS|SSL|CERT|SIGNATURE/.test(code);
}

/** Idle kept-alive connections close after this long (ms). */
const KEEP_ALIVE_MS = 4_000;
/** Connections one policy may hold to one origin. */
const CONNECTIONS_PER_ORIGIN = 64;
/** A connect that takes longer fails (the call's own timer may end it sooner). */
const CONNECT_TIMEOUT_MS = 30_000;

/** One Agent per policy: its kept connections were opened under that policy's checks. */
const agents = new WeakMap<OutboundPolicy, Agent>();

function agentFor(policy: OutboundPolicy): Agent {
  let agent = agents.get(policy);
  if (agent === undefined) {
    agent = new Agent({
      connect: checkedConnector(policy),
      allowH2: false,
      connections: CONNECTIONS_PER_ORIGIN,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
    });
    agents.set(policy, agent);
  }
  return agent;
}

/**
 * undici's connector for `policy`, per connection: IP literals are checked here (net.connect
 * skips lookup for them); names resolve through a lookup that keeps only the addresses the
 * policy allows. A refusal fails the connect with an OutboundError (its URL filled in by the
 * call that meets it).
 */
function checkedConnector(policy: OutboundPolicy): buildConnector.connector {
  return (opts, callback) => {
    const scheme = opts.protocol.replace(/:$/, '');
    const port = opts.port === '' ? DEFAULT_PORTS[scheme] : Number(opts.port);
    const family = isIP(opts.hostname);
    if (family !== 0) {
      const v = policy.checkHostPortAddress(scheme, opts.hostname, port, opts.hostname);
      if (!v.allowed) {
        callback(new OutboundError('denied', v.reason, '', { rule: v.rule }), null);
        return;
      }
    }
    const lookup: LookupFunction = (hostname, options, cb) => {
      dnsLookup(
        hostname,
        { all: true, family: options.family ?? 0, hints: options.hints ?? 0 },
        (err, found) => {
          if (err !== null) {
            cb(err, '', 0);
            return;
          }
          const allowed: LookupAddress[] = [];
          let refused: { reason: string; rule?: string } | undefined;
          for (const a of found) {
            const v = policy.checkHostPortAddress(scheme, hostname, port, a.address);
            if (v.allowed) allowed.push(a);
            else refused ??= v;
          }
          const first = allowed[0];
          if (first === undefined) {
            const reason = refused?.reason ?? `${hostname} resolved to no address`;
            cb(new OutboundError('denied', reason, '', { rule: refused?.rule }), '', 0);
          } else if (options.all === true) {
            cb(null, allowed);
          } else {
            cb(null, first.address, first.family);
          }
        },
      );
    };
    // A connector per connection so that its lookup knows this connection's scheme and port.
    buildConnector({ timeout: CONNECT_TIMEOUT_MS, allowH2: false, lookup })(opts, callback);
  };
}

/** One call: its timer, its abort signal, the body it is reading. */
class Exchange {
  readonly #policy: OutboundPolicy;
  readonly #limits: OutboundLimits;
  readonly #signal: AbortSignal | undefined;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #onAbort = () => this.#abort(this.#signal?.reason);
  #body: Dispatcher.ResponseData['body'] | undefined;
  #timedOut = false;
  #closed = false;
  cancelled = false;

  constructor(policy: OutboundPolicy, limits: OutboundLimits, signal: AbortSignal | undefined) {
    this.#policy = policy;
    this.#limits = limits;
    this.#signal = signal;
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.#abort(
        new OutboundError('timeout', `no complete response within ${limits.timeoutMs} ms`, ''),
      );
    }, limits.timeoutMs);
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  #abort(reason: unknown): void {
    this.#controller.abort(reason);
    this.close();
  }

  /** Release everything; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    // A body read to its end has given its connection back; one left unread takes it down.
    if (this.#body !== undefined && !this.#body.readableEnded) this.#body.destroy();
  }

  cancel(): void {
    this.cancelled = true;
    this.close();
  }

  /** Refuse `url` before sending anything: the rules, and an IP literal's address class. */
  admit(url: URL): string {
    const byUrl = this.#policy.checkUrl(url);
    if (!byUrl.allowed) throw new OutboundError('denied', byUrl.reason, url.href);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const family = isIP(host);
    if (family === 4 || family === 6) {
      const v = this.#policy.checkAddress(url, host, family);
      if (!v.allowed) throw new OutboundError('denied', v.reason, url.href, { rule: v.rule });
    }
    return byUrl.rule;
  }

  async send(
    url: URL,
    method: string,
    headers: [string, string][],
    body: OutboundRequest['body'],
  ): Promise<Dispatcher.ResponseData> {
    const flat: string[] = [];
    for (const [k, v] of headers) flat.push(k, v);
    const res = await agentFor(this.#policy).request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method,
      headers: flat,
      // undici takes async iterables too (writeIterable); its types list only Readable.
      body: (body ?? null) as Uint8Array | Readable | null,
      signal: this.#controller.signal,
      responseHeaders: 'raw',
    });
    // close() may destroy the body while nobody reads it: its error then has a listener.
    res.body.on('error', () => {});
    this.#body = res.body;
    return res;
  }

  /** Map anything thrown during the call to what the caller should see. */
  toError(err: unknown, url: URL, phase: 'headers' | 'body'): unknown {
    if (this.#timedOut) {
      return new OutboundError(
        'timeout',
        `${url.href}: no complete response within ${this.#limits.timeoutMs} ms`,
        url.href,
        { cause: err },
      );
    }
    if (this.#signal?.aborted === true) return this.#signal.reason;
    const found = findOutboundError(err);
    if (found !== undefined) {
      // The connector's refusal knows the address, not the URL: name the hop that met it.
      if (found.url !== '') return found;
      return new OutboundError(found.kind, found.message, url.href, {
        rule: found.rule,
        cause: err,
      });
    }
    const code = errorCode(err);
    if (TIMEOUT_CODES.has(code)) {
      return new OutboundError('timeout', `${url.href}: ${messageOf(err)}`, url.href, {
        cause: err,
      });
    }
    if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
      return new OutboundError('too_large', `${url.href}: ${messageOf(err)}`, url.href, {
        cause: err,
      });
    }
    if (phase === 'headers' && isConnectFailure(code)) {
      return new OutboundError(
        'connect',
        `cannot connect to ${url.host}: ${messageOf(err)}`,
        url.href,
        {
          cause: err,
        },
      );
    }
    return new OutboundError(
      'protocol',
      phase === 'headers'
        ? `${url.href}: no valid response: ${messageOf(err)}`
        : `${url.href}: the response body failed: ${messageOf(err)}`,
      url.href,
      { cause: err },
    );
  }
}

function headerPairs(raw: unknown): [string, string][] {
  const flat = raw as string[];
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    out.push([String(flat[i]).toLowerCase(), String(flat[i + 1])]);
  }
  return out;
}

function header(pairs: [string, string][], name: string): string | undefined {
  return pairs.find(([k]) => k === name)?.[1];
}

async function* readBody(
  exchange: Exchange,
  body: AsyncIterable<Buffer>,
  url: URL,
  maxBytes: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  let received = 0;
  try {
    for await (const chunk of body) {
      received += chunk.byteLength;
      if (received > maxBytes) {
        throw new OutboundError(
          'too_large',
          `${url.href}: the response body is over ${maxBytes} bytes`,
          url.href,
        );
      }
      yield chunk;
    }
    // undici frees the connection a turn after the body's end: wait for it, so that a call made
    // right after this one finds it idle and reuses it.
    await new Promise<void>((resolve) => setImmediate(resolve));
  } catch (err) {
    if (exchange.cancelled) return;
    throw exchange.toError(err, url, 'body');
  } finally {
    exchange.close();
  }
}

/**
 * Send `req` under `policy`, following redirects (each hop checked again), within `limits`.
 * Resolves when the final response's headers arrive; its body is read from `body`, and
 * `cancel()` (or reading to the end) releases the connection. Throws `OutboundError`, or the
 * signal's reason when `signal` aborts; a bad `limits` is a RangeError.
 */
export async function outboundFetch(
  policy: OutboundPolicy,
  req: OutboundRequest,
  limits: OutboundLimits,
  signal?: AbortSignal,
): Promise<OutboundResponse> {
  const maxRedirects = checkLimits(limits);
  signal?.throwIfAborted();
  let url = parseUrl(req.url);
  let method = normalizeMethod(req.method, url);
  let body = req.body;
  const streamed = body !== undefined && !(body instanceof Uint8Array);
  let headers = sanitizeHeaders(req.headers, streamed, url);
  if (req.traceparent !== undefined && !headers.some(([k]) => k.toLowerCase() === 'traceparent')) {
    headers.push(['traceparent', req.traceparent]);
  }
  const exchange = new Exchange(policy, limits, signal);
  try {
    for (let redirects = 0; ; redirects++) {
      const rule = exchange.admit(url);
      let res: Dispatcher.ResponseData;
      try {
        res = await exchange.send(url, method, headers, body);
      } catch (err) {
        throw exchange.toError(err, url, 'headers');
      }
      const pairs = headerPairs(res.headers);
      const location = header(pairs, 'location');
      const next =
        REDIRECTS.has(res.statusCode) && location !== undefined && maxRedirects > 0
          ? redirectMethod(res.statusCode, method, body)
          : undefined;
      if (next === undefined) return respond(exchange, res, pairs, url, rule, method, limits);
      if (redirects >= maxRedirects) {
        throw new OutboundError(
          'protocol',
          `${url.href}: more than ${maxRedirects} redirects`,
          url.href,
        );
      }
      await res.body.dump({ limit: REDIRECT_DRAIN_BYTES }).catch(() => {});
      const target = parseUrl(location ?? '', url);
      if (target.origin !== url.origin) {
        headers = headers.filter(([k]) => !CREDENTIAL_HEADERS.has(k.toLowerCase()));
      }
      if (next.dropBody) {
        body = undefined;
        headers = headers.filter(([k]) => !BODY_HEADERS.has(k.toLowerCase()));
      }
      method = next.method;
      url = target;
    }
  } catch (err) {
    exchange.close();
    throw err;
  }
}

/**
 * The next hop's method, or undefined when the redirect is not followed: 303 (except for HEAD)
 * and 301/302 on POST become a GET without body (fetch §4.4); the others keep method and body,
 * which needs bytes to send again — a streamed body has been consumed.
 */
function redirectMethod(
  status: number,
  method: string,
  body: OutboundRequest['body'],
): { method: string; dropBody: boolean } | undefined {
  if (
    (status === 303 && method !== 'GET' && method !== 'HEAD') ||
    ((status === 301 || status === 302) && method === 'POST')
  ) {
    return { method: 'GET', dropBody: true };
  }
  if (body !== undefined && !(body instanceof Uint8Array)) return undefined;
  return { method, dropBody: false };
}

function respond(
  exchange: Exchange,
  res: Dispatcher.ResponseData,
  headers: [string, string][],
  url: URL,
  rule: string,
  method: string,
  limits: OutboundLimits,
): OutboundResponse {
  const declared = header(headers, 'content-length');
  const bodiless = method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
  if (
    !bodiless &&
    declared !== undefined &&
    /^\d+$/.test(declared) &&
    Number(declared) > limits.maxResponseBytes
  ) {
    exchange.close();
    throw new OutboundError(
      'too_large',
      `${url.href}: the response declares ${declared} bytes, over the cap of ${limits.maxResponseBytes}`,
      url.href,
    );
  }
  return {
    status: res.statusCode,
    headers,
    body: readBody(exchange, res.body, url, limits.maxResponseBytes),
    cancel: () => exchange.cancel(),
    url: url.href,
    rule,
  };
}
