/**
 * What a host tells about the actors it runs, beyond its own log: their output as log records
 * (pino, and NATS for `weft logs`) and, while someone spies on an actor, one event per invocation
 * (`weft spy`).
 *
 * Bounds, because a guest decides how much it writes:
 * - a line is cut at MAX_LOG_LINE_CHARS (and ends with '…'); a WCGI invocation gives at most
 *   MAX_LINES_PER_INVOCATION records (its stderr is capped in bytes before that), then one
 *   record saying how many more lines were dropped;
 * - an actor gives at most LINES_PER_SECOND records a second on average (bursts up to
 *   LINES_BURST); lines over that are counted, and the next record that passes says how many.
 * Records go out on `logs.<app>.<actor>` in batches, every FLUSH_MS or MAX_BATCH records; each
 * host also keeps the last LOG_HISTORY_PER_APP records of each app in memory, answered on
 * `ctl.logs.<app>`.
 *
 * Spying costs nothing until someone spies: `spied()` is one map lookup on an empty map. `weft
 * spy` announces its interest on `ctl.spy` and renews it; an interest not renewed expires.
 */
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  ErrorCode,
  LOG_HISTORY_MAX_RECORDS,
  LOG_HISTORY_PER_APP,
  MAX_LOG_LINE_CHARS,
  SPY_MAX_TTL_MS,
  SpanKind,
  WeftError,
  endTrace,
  startTrace,
  tracingEnabled,
  type HttpRequestHead,
  type InvokeRequest,
  type LatticeClient,
  type LogHistoryReply,
  type LogHistoryRequest,
  type LogRecord,
  type LogStream,
  type SpyAck,
  type SpyEvent,
  type SpyInterest,
  type TraceScope,
} from '../lattice/index.ts';

/** Records one WCGI invocation may give; the rest are counted in one more record. */
export const MAX_LINES_PER_INVOCATION = 100;
/** Sustained records a second per actor, and the burst allowed above it. */
export const LINES_PER_SECOND = 200;
export const LINES_BURST = 1_000;
/** Records wait at most this long to be published together (ms). */
const FLUSH_MS = 50;
/** Records in one published batch at most (each line ≤ 2 000 chars: well under max_payload). */
const MAX_BATCH = 200;
/** A history reply stops adding records past this many characters of lines. */
const MAX_HISTORY_REPLY_CHARS = 256 * 1024;
/** Applications whose records are kept (the least recently written forgotten first). */
const MAX_APPS_KEPT = 64;
/** Actors spied on at once, at most (names come from requests: a bound, not a limit in use). */
const MAX_SPIES_KEPT = 1_024;

const decoder = new TextDecoder();

/** A line without a CR before its LF, cut at MAX_LOG_LINE_CHARS (marked with an ellipsis). */
function cut(line: string): string {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  return text.length <= MAX_LOG_LINE_CHARS ? text : `${text.slice(0, MAX_LOG_LINE_CHARS)}…`;
}

/** Where an actor's output goes: the host's pino log, and (on a host) the lattice. */
export class ActorLog {
  readonly #log: Logger;
  readonly #ids: { hostId: string; app: string; actor: string };
  readonly #sink: ((r: LogRecord) => void) | undefined;
  #tokens = LINES_BURST;
  #refilledAt = Date.now();
  #dropped = 0;

  /**
   * `log` carries the actor's ids already (a child with app, actor, hostId); `sink` takes each
   * record for the lattice (none for `weft run --serve`).
   */
  constructor(
    log: Logger,
    ids: { hostId: string; app: string; actor: string },
    sink?: (r: LogRecord) => void,
  ) {
    this.#log = log;
    this.#ids = ids;
    this.#sink = sink;
  }

  /** A WCGI invocation's stderr: a record per line, at most MAX_LINES_PER_INVOCATION. */
  invocation(
    stderr: Uint8Array,
    truncated: boolean,
    invocationId: string,
    traceId: string | undefined,
  ): void {
    if (stderr.length === 0) return;
    const lines = decoder.decode(stderr).split('\n');
    if (lines.at(-1) === '') lines.pop();
    const ids = { invocationId, ...(traceId === undefined ? {} : { traceId }) };
    const n = Math.min(lines.length, MAX_LINES_PER_INVOCATION);
    for (let i = 0; i < n; i++) this.#emit('stderr', cut(lines[i]!), ids);
    if (lines.length > n) {
      this.#emit(
        'weft',
        `${lines.length - n} more line(s) of stderr not logged (over ${MAX_LINES_PER_INVOCATION} per invocation)`,
        ids,
      );
    }
    if (truncated) {
      this.#emit('weft', 'stderr cut: the invocation wrote more than the host keeps', ids);
    }
  }

  /** One line of a long-lived (proxy) instance's stdout or stderr. */
  line(stream: 'stdout' | 'stderr', text: string, instance: number): void {
    this.#emit(stream, cut(text), { instance });
  }

  #emit(
    stream: LogStream,
    line: string,
    ids: { invocationId?: string; traceId?: string; instance?: number },
  ): void {
    if (!this.#take()) {
      this.#dropped++;
      return;
    }
    if (this.#dropped > 0) {
      const n = this.#dropped;
      this.#dropped = 0;
      this.#write(
        'weft',
        `${n} line(s) of output dropped (over ${LINES_PER_SECOND} lines a second for this actor)`,
        {},
      );
    }
    this.#write(stream, line, ids);
  }

  #write(
    stream: LogStream,
    line: string,
    ids: { invocationId?: string; traceId?: string; instance?: number },
  ): void {
    this.#log.info(
      { ...ids, stream, line },
      stream === 'weft' ? 'actor output' : `actor ${stream}`,
    );
    this.#sink?.({ time: Date.now(), ...this.#ids, stream, line, ...ids, seq: 0 });
  }

  /** Token bucket: LINES_PER_SECOND refilled continuously, up to LINES_BURST. */
  #take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(
      LINES_BURST,
      this.#tokens + ((now - this.#refilledAt) * LINES_PER_SECOND) / 1000,
    );
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}

/** A fixed-size ring of the newest records. */
class Ring {
  readonly #items: (LogRecord | undefined)[];
  #next = 0;
  constructor(size: number) {
    this.#items = new Array<LogRecord | undefined>(size);
  }
  push(r: LogRecord): void {
    this.#items[this.#next] = r;
    this.#next = (this.#next + 1) % this.#items.length;
  }
  /** Newest first. */
  *newest(): Generator<LogRecord> {
    const n = this.#items.length;
    for (let i = 1; i <= n; i++) {
      const r = this.#items[(this.#next - i + n) % n];
      if (r === undefined) return;
      yield r;
    }
  }
}

/**
 * A host's log records: numbered, kept per app for history requests, and published in batches.
 * Also the host's spy interests.
 */
export class HostObserve {
  readonly #client: LatticeClient;
  readonly #hostId: string;
  readonly #runs: (actor: string) => boolean;
  readonly #kept = new Map<string, Ring>();
  readonly #pending = new Map<string, LogRecord[]>();
  #pendingCount = 0;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  /** Actor → when the interest of whoever spies on it expires (epoch ms). */
  readonly #spies = new Map<string, number>();
  #subs: Subscription[] = [];

  /** `runs`: whether this host runs an actor now (a spy is told which hosts will report). */
  constructor(opts: { client: LatticeClient; hostId: string; runs: (actor: string) => boolean }) {
    this.#client = opts.client;
    this.#hostId = opts.hostId;
    this.#runs = opts.runs;
  }

  /** Answer history requests and spy announcements. */
  start(): void {
    const s = this.#client.subjects;
    this.#subs.push(
      this.#client.serve(s.logHistoryAll(), (body, msg) =>
        this.#history(body as LogHistoryRequest, msg),
      ),
      this.#client.serve(s.spyInterest(), (body) => this.#interest(body as SpyInterest)),
    );
  }

  /** Publish what is pending and stop answering. */
  stop(): void {
    this.#flush();
    for (const sub of this.#subs) sub.unsubscribe();
    this.#subs = [];
  }

  /** The output of one actor on this host (`log`: a child logger with its ids). */
  actorLog(app: string, actor: string, log: Logger): ActorLog {
    return new ActorLog(log, { hostId: this.#hostId, app, actor }, (r) => this.#record(r));
  }

  #record(r: LogRecord): void {
    r.seq = ++this.#seq;
    let ring = this.#kept.get(r.app);
    if (ring === undefined) {
      if (this.#kept.size >= MAX_APPS_KEPT) this.#kept.delete(this.#kept.keys().next().value!);
      ring = new Ring(LOG_HISTORY_PER_APP);
    } else {
      // Re-inserted: the map's order is then least recently written first.
      this.#kept.delete(r.app);
    }
    this.#kept.set(r.app, ring);
    ring.push(r);
    const subject = this.#client.subjects.logs(r.app, r.actor);
    let batch = this.#pending.get(subject);
    if (batch === undefined) this.#pending.set(subject, (batch = []));
    batch.push(r);
    if (++this.#pendingCount >= MAX_BATCH) this.#flush();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#flush(), FLUSH_MS);
      this.#timer.unref();
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pendingCount === 0) return;
    this.#pendingCount = 0;
    const batches = [...this.#pending];
    this.#pending.clear();
    if (this.#client.nc.isClosed()) return;
    for (const [subject, records] of batches) {
      for (let i = 0; i < records.length; i += MAX_BATCH) {
        this.#client.publish(subject, { records: records.slice(i, i + MAX_BATCH) });
      }
    }
  }

  #history(req: LogHistoryRequest, msg: Msg): LogHistoryReply {
    const app = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const limit = Math.min(
      LOG_HISTORY_MAX_RECORDS,
      Math.max(0, Math.floor(Number(req?.limit ?? LOG_HISTORY_MAX_RECORDS)) || 0),
    );
    const out: LogRecord[] = [];
    let chars = 0;
    for (const r of this.#kept.get(app)?.newest() ?? []) {
      if (out.length >= limit || chars > MAX_HISTORY_REPLY_CHARS) break;
      if (req?.actor !== undefined && r.actor !== req.actor) continue;
      out.push(r);
      chars += r.line.length;
    }
    return { hostId: this.#hostId, records: out.toReversed() };
  }

  #interest(req: SpyInterest): SpyAck {
    const actor = typeof req?.actor === 'string' ? req.actor : '';
    const ttl = Math.min(SPY_MAX_TTL_MS, Math.max(0, Number(req?.ttlMs) || 0));
    if (actor !== '' && ttl > 0) {
      const now = Date.now();
      // Interests in actors never invoked here are not dropped by `spied()`: sweep them now.
      if (this.#spies.size >= MAX_SPIES_KEPT) {
        for (const [a, until] of this.#spies) if (until < now) this.#spies.delete(a);
      }
      if (this.#spies.size < MAX_SPIES_KEPT || this.#spies.has(actor)) {
        this.#spies.set(actor, now + ttl);
      }
    }
    return { hostId: this.#hostId, running: actor !== '' && this.#runs(actor) };
  }

  /**
   * Follow an invocation of `actor`: its hop of the trace `parent` (the NATS header; else the
   * head's `traceparent`; else a new trace), which also becomes the head's `traceparent`.
   */
  invocation(
    app: string,
    actor: string,
    req: InvokeRequest,
    parent: string | undefined,
  ): InvocationWatch {
    return new InvocationWatch(this, { app, actor, hostId: this.#hostId }, req, parent);
  }

  /** Someone spies on `actor` now. Cheap when nobody spies on anything. */
  spied(actor: string): boolean {
    if (this.#spies.size === 0) return false;
    const until = this.#spies.get(actor);
    if (until === undefined) return false;
    if (until >= Date.now()) return true;
    this.#spies.delete(actor);
    return false;
  }

  /** Publish one invocation for whoever spies on its actor. */
  spy(ev: Omit<SpyEvent, 'hostId'>): void {
    if (this.#client.nc.isClosed()) return;
    this.#client.publish(this.#client.subjects.spy(ev.actor), { ...ev, hostId: this.#hostId });
  }
}

/** An invocation as a host follows it: its hop of the trace, and what a spy is told at its end. */
export class InvocationWatch {
  /** The traceparent the actor sees (the host's span as the parent, when one is recorded). */
  readonly traceparent: string;
  readonly traceId: string;
  readonly #observe: HostObserve;
  readonly #scope: TraceScope;
  readonly #app: string;
  readonly #actor: string;
  readonly #req: InvokeRequest;
  readonly #t0 = performance.now();

  constructor(
    observe: HostObserve,
    ids: { app: string; actor: string; hostId: string },
    req: InvokeRequest,
    parent: string | undefined,
  ) {
    this.#observe = observe;
    this.#app = ids.app;
    this.#actor = ids.actor;
    this.#req = req;
    const head = req.head;
    this.#scope = tracingEnabled()
      ? startTrace(`invoke ${ids.actor}`, SpanKind.SERVER, parent || headerOf(head, TRACEPARENT), {
          'http.request.method': head.method,
          'url.path': head.path,
          'weft.app': ids.app,
          'weft.actor': ids.actor,
          'weft.host_id': ids.hostId,
          'weft.invocation_id': req.invocationId,
        })
      : startTrace('', SpanKind.SERVER, parent || headerOf(head, TRACEPARENT));
    this.traceparent = this.#scope.traceparent;
    this.traceId = this.#scope.traceId;
    setHeader(head, TRACEPARENT, this.traceparent);
  }

  /** The actor answered with `status` (its head: a streamed body may still be coming). */
  ok(status: number): void {
    endTrace(this.#scope, status);
    if (this.#observe.spied(this.#actor)) this.#spy(status, undefined);
  }

  /** The invocation failed with `err` (what the caller is answered). */
  failed(err: unknown): void {
    const e = err instanceof WeftError ? err : undefined;
    const status = e?.httpStatus ?? 500;
    const code = e?.code ?? ErrorCode.Internal;
    endTrace(this.#scope, status, undefined, {
      code,
      message: e?.message ?? 'internal host error',
    });
    if (this.#observe.spied(this.#actor)) this.#spy(status, code);
  }

  #spy(status: number, code: string | undefined): void {
    const head = this.#req.head;
    this.#observe.spy({
      time: Date.now(),
      app: this.#app,
      actor: this.#actor,
      invocationId: this.#req.invocationId,
      traceId: this.traceId,
      method: head.method,
      path: head.path,
      query: head.query,
      status,
      ...(code === undefined ? {} : { code }),
      durationMs: Math.round((performance.now() - this.#t0) * 1000) / 1000,
    });
  }
}

const TRACEPARENT = 'traceparent';

function headerOf(head: HttpRequestHead, lower: string): string | undefined {
  for (const [k, v] of head.headers) {
    if (k.length === lower.length && k.toLowerCase() === lower) return v;
  }
  return undefined;
}

/** Set a field of the head (the first of that name; appended when absent). */
function setHeader(head: HttpRequestHead, lower: string, value: string): void {
  const headers = head.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (h[0].length === lower.length && h[0].toLowerCase() === lower) {
      if (h[1] !== value) headers[i] = [h[0], value];
      return;
    }
  }
  headers.push([lower, value]);
}
