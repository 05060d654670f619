/**
 * The `weft_http` import module (actors/include/weft_http.h): outbound HTTP for a guest, through
 * `outboundFetch` and the actor's policy. Calls that wait (`send`, `read`) are JSPI suspending
 * imports: the guest blocks, the thread does not. Every request and denial is recorded for the
 * host's log (actor, URL, rule), and everything still open is released when the run ends.
 */
import { OutboundError, outboundFetch, type OutboundResponse } from './http.ts';
import { newSpanId, withSpanId, type OutboundPolicy } from '../../lattice/index.ts';

/** Return codes (negative), as the C header defines them. */
export const HttpErr = {
  Denied: -1,
  BadUrl: -2,
  Timeout: -3,
  TooLarge: -4,
  Connect: -5,
  Protocol: -6,
  Limit: -7,
  BadHandle: -8,
  Fault: -9,
} as const;

const ERR_BY_KIND: Record<OutboundError['kind'], number> = {
  denied: HttpErr.Denied,
  bad_url: HttpErr.BadUrl,
  timeout: HttpErr.Timeout,
  too_large: HttpErr.TooLarge,
  connect: HttpErr.Connect,
  protocol: HttpErr.Protocol,
};

/** One outbound request as the host's log shows it. */
export interface OutboundRecord {
  method: string;
  url: string;
  /** `ok` (a response came), or the failure's kind. */
  outcome: 'ok' | OutboundError['kind'] | 'limit';
  status?: number;
  /** The rule that allowed it, or why it was denied. */
  rule?: string;
  reason?: string;
  /**
   * The span id sent in the request's `traceparent` (none when the guest set its own), and when
   * the request was sent and its response ended (epoch ms): the host records the span from these.
   */
  spanId?: string;
  startMs?: number;
  endMs?: number;
}

export interface OutboundSessionOptions {
  policy: OutboundPolicy;
  /** The invocation's deadline (`Date.now()` ms): no request outlives it. */
  deadline: number;
  maxResponseBytes: number;
  /** Largest request body a guest may build (bytes). */
  maxRequestBytes: number;
  maxRequests: number;
  /**
   * The invocation's traceparent (the host's span): each request gets one of the same trace with a
   * new span id, unless the guest set a `traceparent` of its own.
   */
  traceparent?: string;
}

interface Req {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array[];
  bodyBytes: number;
  res?: OutboundResponse;
  pieces?: AsyncIterator<Uint8Array>;
  left?: Uint8Array;
  ended: boolean;
  /** Its record, when it has a span: the end time is set when the body ends. */
  traced?: OutboundRecord;
}

/** Records kept per run for the log; later ones are counted, not kept. */
const MAX_RECORDS = 64;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** The `weft_http` imports of one run, and what they did. */
export class OutboundSession {
  readonly records: OutboundRecord[] = [];
  /** Requests made, including those past the record cap. */
  made = 0;
  readonly #o: OutboundSessionOptions;
  readonly #reqs = new Map<number, Req>();
  #next = 1;
  #error = '';
  #memory: () => WebAssembly.Memory;

  constructor(o: OutboundSessionOptions, memory: () => WebAssembly.Memory) {
    this.#o = o;
    this.#memory = memory;
  }

  /** Release every open response (the run ended). */
  close(): void {
    for (const r of this.#reqs.values()) r.res?.cancel();
    this.#reqs.clear();
  }

  #fail(code: number, message: string): number {
    this.#error = message;
    return code;
  }

  #bytes(ptr: number, len: number): Uint8Array | undefined {
    const buf = this.#memory().buffer;
    if (ptr < 0 || len < 0 || ptr + len > buf.byteLength) return undefined;
    return new Uint8Array(buf, ptr, len);
  }

  #text(ptr: number, len: number): string | undefined {
    const b = this.#bytes(ptr, len);
    if (b === undefined) return undefined;
    try {
      return dec.decode(b);
    } catch {
      return undefined;
    }
  }

  #record(r: OutboundRecord): void {
    if (this.records.length < MAX_RECORDS) this.records.push(r);
  }

  /** The import object; `send` and `read` suspend the guest. */
  imports(): WebAssembly.ModuleImports {
    const u = (x: number) => x >>> 0;
    return {
      request: (mp: number, ml: number, up: number, ul: number) => {
        const method = this.#text(u(mp), u(ml));
        const url = this.#text(u(up), u(ul));
        if (method === undefined || url === undefined) {
          return this.#fail(HttpErr.Fault, 'method or url outside memory, or not UTF-8');
        }
        // Method, URL and headers are checked when the request is sent (outboundFetch).
        const id = this.#next++;
        this.#reqs.set(id, {
          method,
          url,
          headers: [],
          body: [],
          bodyBytes: 0,
          ended: false,
        });
        return id;
      },
      header: (h: number, np: number, nl: number, vp: number, vl: number) => {
        const r = this.#reqs.get(h);
        if (r === undefined || r.res !== undefined) {
          return this.#fail(HttpErr.BadHandle, `no request ${h} being built`);
        }
        const name = this.#text(u(np), u(nl));
        const value = this.#text(u(vp), u(vl));
        if (name === undefined || value === undefined) {
          return this.#fail(HttpErr.Fault, 'header outside memory, or not UTF-8');
        }
        r.headers.push([name, value]);
        return 0;
      },
      write: (h: number, p: number, l: number) => {
        const r = this.#reqs.get(h);
        if (r === undefined || r.res !== undefined) {
          return this.#fail(HttpErr.BadHandle, `no request ${h} being built`);
        }
        const b = this.#bytes(u(p), u(l));
        if (b === undefined) return this.#fail(HttpErr.Fault, 'body outside memory');
        if (r.bodyBytes + b.length > this.#o.maxRequestBytes) {
          return this.#fail(
            HttpErr.TooLarge,
            `request body over ${this.#o.maxRequestBytes} bytes (limits.maxRequestBytes)`,
          );
        }
        r.body.push(b.slice());
        r.bodyBytes += b.length;
        return b.length;
      },
      send: new WebAssembly.Suspending((h: number) => this.#send(h)),
      headers: (h: number, p: number, l: number) => {
        const r = this.#reqs.get(h);
        if (r?.res === undefined) return this.#fail(HttpErr.BadHandle, `request ${h} not sent`);
        const text = enc.encode(
          r.res.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}\n`).join(''),
        );
        const out = this.#bytes(u(p), u(l));
        if (out === undefined) return this.#fail(HttpErr.Fault, 'buffer outside memory');
        if (text.length <= out.length) out.set(text);
        return text.length;
      },
      read: new WebAssembly.Suspending((h: number, p: number, l: number) =>
        this.#read(h, u(p), u(l)),
      ),
      close: (h: number) => {
        const r = this.#reqs.get(h);
        if (r === undefined) return this.#fail(HttpErr.BadHandle, `no request ${h}`);
        r.res?.cancel();
        if (r.traced !== undefined && !r.ended) r.traced.endMs = Date.now();
        this.#reqs.delete(h);
        return 0;
      },
      error: (p: number, l: number) => {
        const text = enc.encode(this.#error);
        const out = this.#bytes(u(p), u(l));
        if (out === undefined) return HttpErr.Fault;
        if (out.length > 0) {
          const n = Math.min(text.length, out.length - 1);
          out.set(text.subarray(0, n));
          out[n] = 0;
        }
        return text.length;
      },
    };
  }

  async #send(h: number): Promise<number> {
    const r = this.#reqs.get(h);
    if (r === undefined || r.res !== undefined) {
      return this.#fail(HttpErr.BadHandle, `no request ${h} to send`);
    }
    if (this.made >= this.#o.maxRequests) {
      this.#record({ method: r.method, url: r.url, outcome: 'limit' });
      return this.#fail(
        HttpErr.Limit,
        `over ${this.#o.maxRequests} outbound requests in one invocation (limits.maxOutboundRequests)`,
      );
    }
    this.made++;
    const timeoutMs = this.#o.deadline - Date.now();
    if (timeoutMs <= 0) return this.#fail(HttpErr.Timeout, 'the invocation is out of time');
    // One write (the usual case) is sent as it was copied; several are joined once.
    let body: Uint8Array | undefined = r.body.length === 1 ? r.body[0] : undefined;
    if (r.body.length > 1) {
      body = new Uint8Array(r.bodyBytes);
      let at = 0;
      for (const piece of r.body) {
        body.set(piece, at);
        at += piece.length;
      }
    }
    r.body = [];
    const span = this.#span(r);
    try {
      const res = await outboundFetch(
        this.#o.policy,
        {
          method: r.method,
          url: r.url,
          headers: r.headers,
          ...(body ? { body } : {}),
          ...(span === undefined ? {} : { traceparent: span.traceparent }),
        },
        { timeoutMs, maxResponseBytes: this.#o.maxResponseBytes },
      );
      r.res = res;
      r.pieces = res.body[Symbol.asyncIterator]();
      const rec: OutboundRecord = {
        method: r.method,
        url: r.url,
        outcome: 'ok',
        status: res.status,
      };
      if (span !== undefined) {
        // The span lasts until the body ends or is closed (#read, close), else until the headers.
        rec.spanId = span.spanId;
        rec.startMs = span.startMs;
        rec.endMs = Date.now();
      }
      if (span !== undefined) r.traced = rec;
      this.#record(rec);
      return res.status;
    } catch (err) {
      return this.#failed(r, err, span);
    }
  }

  /** The traceparent of a request about to be sent (a new span id), and when it starts. */
  #span(r: Req): { traceparent: string; spanId: string; startMs: number } | undefined {
    const parent = this.#o.traceparent;
    if (parent === undefined) return undefined;
    if (r.headers.some(([k]) => k.toLowerCase() === 'traceparent')) return undefined;
    const spanId = newSpanId();
    return { traceparent: withSpanId(parent, spanId), spanId, startMs: Date.now() };
  }

  #failed(r: Req, err: unknown, span?: { spanId: string; startMs: number }): number {
    const times =
      span === undefined ? {} : { spanId: span.spanId, startMs: span.startMs, endMs: Date.now() };
    if (err instanceof OutboundError) {
      this.#record({
        method: r.method,
        url: err.url || r.url,
        outcome: err.kind,
        reason: err.message,
        ...(err.rule === undefined ? {} : { rule: err.rule }),
        ...times,
      });
      return this.#fail(ERR_BY_KIND[err.kind], err.message);
    }
    const message = (err as Error).message ?? String(err);
    this.#record({ method: r.method, url: r.url, outcome: 'connect', reason: message, ...times });
    return this.#fail(HttpErr.Connect, message);
  }

  async #read(h: number, p: number, l: number): Promise<number> {
    const r = this.#reqs.get(h);
    if (r?.pieces === undefined) return this.#fail(HttpErr.BadHandle, `request ${h} not sent`);
    if (r.left === undefined || r.left.length === 0) {
      if (r.ended) return 0;
      try {
        const next = await r.pieces.next();
        if (next.done === true) {
          r.ended = true;
          if (r.traced !== undefined) r.traced.endMs = Date.now();
          return 0;
        }
        r.left = next.value;
      } catch (err) {
        r.ended = true;
        if (r.traced !== undefined) r.traced.endMs = Date.now();
        return this.#failed(r, err);
      }
    }
    // The memory may have grown while the guest waited: take the view now.
    const out = this.#bytes(p, l);
    if (out === undefined) return this.#fail(HttpErr.Fault, 'buffer outside memory');
    const n = Math.min(out.length, r.left.length);
    out.set(r.left.subarray(0, n));
    r.left = r.left.subarray(n);
    return n;
  }
}
