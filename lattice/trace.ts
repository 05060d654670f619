/**
 * W3C Trace Context (`traceparent`, https://www.w3.org/TR/trace-context/) and the spans weft
 * records through the OpenTelemetry API.
 *
 * One trace id goes from the client through the gateway, the NATS headers, the host and the actor
 * (a WCGI actor's `HTTP_TRACEPARENT`, a proxy actor's `traceparent` request header) to the
 * requests the actor makes with outbound HTTP. A hop that records a span passes on a traceparent
 * naming its own span as the parent. A hop that records none (no exporter configured) passes on
 * what it received, as OpenTelemetry's no-op tracer does, so that no parent id points at a span
 * that was never exported; an outbound request always gets a span id of its own, the host being
 * its client.
 *
 * Spans are recorded only after `enableTracing()` was given a tracer (bin/tracing.ts does when an
 * OTLP exporter is configured). Until then each call here is a few string operations: the
 * OpenTelemetry SDK is not loaded at all.
 */
import { randomBytes } from 'node:crypto';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';

/** OpenTelemetry's span kinds (SERVER for a request taken, CLIENT for one sent). */
export { SpanKind };

/** `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, version 00 (the only one defined). */
const TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

// Random ids come from a pool refilled in blocks: one getrandom per 170 requests, not two each.
const RANDOM_POOL_BYTES = 4096;
let randomPool = randomBytes(RANDOM_POOL_BYTES);
let randomOffset = 0;
function randomHex(bytes: number): string {
  if (randomOffset + bytes > RANDOM_POOL_BYTES) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomOffset = 0;
  }
  const s = randomPool.toString('hex', randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return s;
}

/** A new random trace id: 32 lower-case hex digits. */
export function newTraceId(): string {
  return randomHex(16);
}

/** A new random span id: 16 lower-case hex digits. */
export function newSpanId(): string {
  return randomHex(8);
}

/** True for a well-formed version-00 traceparent whose ids are not all zero (§3.2.2.3, §3.2.2.4). */
export function isTraceparent(value: string | undefined): value is string {
  return (
    value !== undefined &&
    TRACEPARENT_RE.test(value) &&
    value.slice(3, 35) !== ZERO_TRACE_ID &&
    value.slice(36, 52) !== ZERO_SPAN_ID
  );
}

/** A W3C traceparent: the caller's when valid, else a fresh one (a new trace, sampled). */
export function traceparentFor(incoming: string | undefined): string {
  if (isTraceparent(incoming)) return incoming;
  return `00-${newTraceId()}-${newSpanId()}-01`;
}

/** The trace id of a valid traceparent. */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/** The same trace and flags with `spanId` as the parent: what a span passes on to its callees. */
export function withSpanId(traceparent: string, spanId: string): string {
  return `${traceparent.slice(0, 36)}${spanId}${traceparent.slice(52)}`;
}

let tracer: Tracer | undefined;
let presetSpanId: string | undefined;

/**
 * Record spans with `t` from now on (undefined: stop). The tracer's provider must take its span
 * ids from `spanIdGenerator`, so that `recordSpan` can give a span the id already sent on the wire.
 */
export function enableTracing(t: Tracer | undefined): void {
  tracer = t;
}

/** True while spans are recorded (an exporter is configured). */
export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/**
 * The OpenTelemetry SDK's `IdGenerator` for weft's tracer provider: random ids, except the span
 * id `recordSpan` sets for the span it is starting.
 */
export const spanIdGenerator = {
  generateTraceId: newTraceId,
  generateSpanId(): string {
    const id = presetSpanId ?? newSpanId();
    presetSpanId = undefined;
    return id;
  },
};

/** One hop of a trace: what it passes on, its trace id (logs, replies), and its span if recorded. */
export interface TraceScope {
  /** The traceparent to send on: this hop's span as the parent, or what this hop received. */
  traceparent: string;
  traceId: string;
  /** Set only while tracing is enabled. */
  span: Span | undefined;
}

function parentContext(parent: string) {
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.slice(3, 35),
    spanId: parent.slice(36, 52),
    traceFlags: parseInt(parent.slice(53, 55), 16),
    isRemote: true,
  });
}

function traceparentOf(span: Span): string {
  const sc = span.spanContext();
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * Begin a hop of the trace `parent` names (invalid or absent: a new trace). While tracing is
 * enabled a span named `name` is started as the parent's child; else nothing is recorded and
 * the parent (or the new trace) is passed on as it is.
 */
export function startTrace(
  name: string,
  kind: SpanKind,
  parent: string | undefined,
  attributes?: Attributes,
): TraceScope {
  const t = tracer;
  if (t === undefined) {
    const traceparent = traceparentFor(parent);
    return { traceparent, traceId: traceIdOf(traceparent), span: undefined };
  }
  const ctx = isTraceparent(parent) ? parentContext(parent) : ROOT_CONTEXT;
  const span = t.startSpan(name, attributes ? { kind, attributes } : { kind }, ctx);
  const traceparent = traceparentOf(span);
  return { traceparent, traceId: traceIdOf(traceparent), span };
}

/** A failure as a span shows it: the `WEFT_ERR_*` code and the message. */
export interface SpanError {
  code: string;
  message: string;
}

/**
 * End a hop's span (nothing when none was recorded) with the HTTP status it answered, more
 * attributes, and the error it failed with. A status of 500 or more without an error also marks
 * the span as failed (OpenTelemetry's HTTP server convention).
 */
export function endTrace(
  scope: TraceScope,
  status: number | undefined,
  attributes?: Attributes,
  error?: SpanError,
): void {
  const span = scope.span;
  if (span === undefined) return;
  finish(span, status, attributes, error);
  span.end();
}

function finish(
  span: Span,
  status: number | undefined,
  attributes: Attributes | undefined,
  error: SpanError | undefined,
): void {
  if (status !== undefined) span.setAttribute('http.response.status_code', status);
  if (attributes) span.setAttributes(attributes);
  if (error !== undefined) {
    span.setAttribute('error.type', error.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else if (status !== undefined && status >= 500) {
    span.setAttribute('error.type', String(status));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

/**
 * Record a span that already happened elsewhere with the id it was sent under: an actor's
 * outbound request, timed in a worker thread. `startMs` and `endMs` are epoch milliseconds.
 * Nothing when tracing is disabled or `parent` is not a valid traceparent.
 */
export function recordSpan(
  name: string,
  kind: SpanKind,
  parent: string,
  spanId: string,
  time: { startMs: number; endMs: number },
  attributes: Attributes,
  status: number | undefined,
  error?: SpanError,
): void {
  const t = tracer;
  if (t === undefined || !isTraceparent(parent)) return;
  presetSpanId = spanId;
  let span: Span;
  try {
    span = t.startSpan(name, { kind, attributes, startTime: time.startMs }, parentContext(parent));
  } finally {
    presetSpanId = undefined;
  }
  finish(span, status, undefined, error);
  span.end(time.endMs);
}
