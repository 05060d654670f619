/**
 * The gateway's hop of a request's trace: the client's `traceparent` when valid, else a new trace
 * (W3C Trace Context). While tracing is enabled (an exporter configured) it records an HTTP server
 * span, named `METHOD /route/...` once the route is known, whose id the invocation carries on.
 */
import type { IncomingMessage } from 'node:http';
import {
  SpanKind,
  endTrace,
  headerValue,
  startTrace,
  tracingEnabled,
  type TraceScope,
} from '../../lattice/index.ts';

/** Begin the request's hop: the traceparent to send on and the trace id to answer with. */
export function gatewayTrace(req: IncomingMessage): TraceScope {
  const incoming = headerValue(req, 'traceparent');
  const method = req.method ?? 'GET';
  if (!tracingEnabled()) return startTrace(method, SpanKind.SERVER, incoming);
  return startTrace(method, SpanKind.SERVER, incoming, {
    'http.request.method': method,
    'url.path': (req.url ?? '/').split('?', 1)[0]!,
  });
}

/** End the request's span (nothing when none is recorded) with what the client was answered. */
export function endGatewayTrace(
  scope: TraceScope,
  status: number,
  at: {
    method: string;
    route?: string;
    actor?: string;
    invocationId: string;
    errorCode?: string;
  },
): void {
  const span = scope.span;
  if (span === undefined) return;
  if (at.route !== undefined) span.updateName(`${at.method} ${at.route}`);
  endTrace(
    scope,
    status,
    {
      'weft.invocation_id': at.invocationId,
      ...(at.route === undefined ? {} : { 'http.route': at.route }),
      ...(at.actor === undefined ? {} : { 'weft.actor': at.actor }),
    },
    at.errorCode === undefined ? undefined : { code: at.errorCode, message: at.errorCode },
  );
}
