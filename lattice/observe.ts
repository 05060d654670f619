/**
 * What hosts say about the actors they run, for `weft logs` and `weft spy`: actors' output as log
 * records, and one small event per invocation while someone spies on the actor. See
 * docs/protocol.md ("Logs and spying") for the subjects.
 */

/** Where a log record's line came from: the guest's stdout or stderr, or weft itself (a notice). */
export type LogStream = 'stdout' | 'stderr' | 'weft';

/** One line an actor wrote, as a host publishes it on `logs.<app>.<actor>`. */
export interface LogRecord {
  /** When the host took the line, epoch milliseconds. */
  time: number;
  hostId: string;
  app: string;
  actor: string;
  stream: LogStream;
  /** The line without its newline, cut at MAX_LOG_LINE_CHARS. */
  line: string;
  /** WCGI: the invocation that wrote it (a proxy instance serves many at once: none). */
  invocationId?: string;
  traceId?: string;
  /** Proxy: the instance (0-based) that wrote it. */
  instance?: number;
  /** Counts up per host: with `hostId`, tells a record seen twice (history and live) apart. */
  seq: number;
}

/** The body published on `logs.<app>.<actor>`: records in the order they were taken. */
export interface LogBatch {
  records: LogRecord[];
}

/** Request on `ctl.logs.<app>` (every host answers): the last records it keeps of the app. */
export interface LogHistoryRequest {
  /** Only this actor's. */
  actor?: string;
  /** At most this many, the newest (default and cap: LOG_HISTORY_MAX_RECORDS). */
  limit?: number;
}

export interface LogHistoryReply {
  hostId: string;
  records: LogRecord[];
}

/** A line longer than this is cut (characters). */
export const MAX_LOG_LINE_CHARS = 2_000;
/** Records a host keeps per application for `weft logs` (a ring: the oldest go first). */
export const LOG_HISTORY_PER_APP = 1_000;
/** Records one history reply holds at most. */
export const LOG_HISTORY_MAX_RECORDS = 1_000;

/**
 * Published on `ctl.spy` by `weft spy`, again every SPY_RENEW_MS: hosts publish an invocation
 * event for `actor` on `spy.<actor>` until `ttlMs` after the last announcement. A request (with a
 * reply subject) is answered with a `SpyAck` by every host.
 */
export interface SpyInterest {
  actor: string;
  /** How long the interest lasts without renewal (ms; hosts cap it at SPY_MAX_TTL_MS). */
  ttlMs: number;
}

export interface SpyAck {
  hostId: string;
  /** The host runs the actor (its invocations will be shown). */
  running: boolean;
}

/** How often `weft spy` renews its interest (ms), and for how long each renewal holds. */
export const SPY_RENEW_MS = 2_000;
export const SPY_TTL_MS = 6_000;
export const SPY_MAX_TTL_MS = 60_000;

/** One invocation as `weft spy` shows it, published on `spy.<actor>`. */
export interface SpyEvent {
  /** When the invocation ended (or its response head was ready), epoch milliseconds. */
  time: number;
  hostId: string;
  app: string;
  actor: string;
  invocationId: string;
  traceId: string;
  method: string;
  path: string;
  query: string;
  /** The HTTP status answered (for a failure, the status its code maps to). */
  status: number;
  /** The `WEFT_ERR_*` code of a failure. */
  code?: string;
  /** Time on the host from the request's arrival to its reply, milliseconds. */
  durationMs: number;
}
