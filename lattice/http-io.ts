/**
 * HTTP plumbing shared by every HTTP surface (the gateway, `weft run --serve`): reading a body
 * under a limit, and answering an error as
 * `{ statusCode, code, error, message, invocationId, traceId }`.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { ErrorCode, HTTP_STATUS_BY_CODE, WeftError } from './errors.ts';
import type { HeaderPair, HttpRequestHead, HttpResponseHead } from './http.ts';

/** Read the whole body, failing with 413 as soon as it passes `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(declared, limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge(size, limit));
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function tooLarge(size: number, limit: number): WeftError {
  return new WeftError(
    ErrorCode.RequestTooLarge,
    `request body of ${size}+ bytes is over this route's limit of ${limit} bytes (limits.maxRequestBytes)`,
    { details: { limitBytes: limit } },
  );
}

/**
 * Answer `err` as JSON with the status its code maps to, and the request's trace id (also in the
 * header `x-weft-trace-id`) when given; returns the WeftError it answered (unknown errors become
 * WEFT_ERR_INTERNAL with a generic message) so the caller can log it.
 */
export function replyError(
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  invocationId: string,
  traceId?: string,
): { error: WeftError; statusCode: number; invocationId: string } {
  const e =
    err instanceof WeftError
      ? err
      : new WeftError(ErrorCode.Internal, 'internal error', { cause: err });
  const statusCode = HTTP_STATUS_BY_CODE[e.code];
  const id = (e.details?.['invocationId'] as string | undefined) ?? invocationId;
  if (res.headersSent) {
    res.destroy();
    return { error: e, statusCode, invocationId: id };
  }
  const body = JSON.stringify({
    statusCode,
    code: e.code,
    error: STATUS_CODES[statusCode] ?? 'Error',
    message: e.message,
    invocationId: id,
    ...(traceId === undefined ? {} : { traceId }),
  });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-weft-invocation-id': id,
  };
  if (traceId !== undefined) headers['x-weft-trace-id'] = traceId;
  // An unread oversized body is not drained: close the connection instead.
  if (e.code === ErrorCode.RequestTooLarge) headers['connection'] = 'close';
  res.writeHead(statusCode, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  return { error: e, statusCode, invocationId: id };
}

/** The first value of a request header. */
export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Headers the gateway sets itself: a client's own values are dropped, never trusted. */
const GATEWAY_HEADERS = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'traceparent',
]);

/**
 * The lattice form of a request: its headers in arrival order plus X-Forwarded-For/Proto/Host
 * and `traceparent`; the peer and server addresses from the socket.
 */
export function requestHead(
  req: IncomingMessage,
  at: { path: string; query: string; routePrefix: string; traceparent: string },
): HttpRequestHead {
  const headers: HeaderPair[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!GATEWAY_HEADERS.has(raw[i]!.toLowerCase())) headers.push([raw[i]!, raw[i + 1]!]);
  }
  const prior = headerValue(req, 'x-forwarded-for');
  const peer = req.socket.remoteAddress ?? '';
  headers.push(['X-Forwarded-For', prior ? `${prior}, ${peer}` : peer]);
  headers.push(['X-Forwarded-Proto', 'http']);
  const host = headerValue(req, 'host');
  if (host) headers.push(['X-Forwarded-Host', host]);
  headers.push(['traceparent', at.traceparent]);
  const serverName = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  return {
    method: req.method ?? 'GET',
    path: at.path,
    query: at.query,
    headers,
    routePrefix: at.routePrefix,
    remoteAddr: peer,
    remotePort: req.socket.remotePort ?? 0,
    scheme: 'http',
    serverName: serverName || (req.socket.localAddress ?? ''),
    serverPort: req.socket.localPort ?? 0,
    protocol: `HTTP/${req.httpVersion}`,
  };
}

/**
 * Write an actor's response: its re-serialized headers, `extra` headers of our own, and a
 * Content-Length of the actual body; no body for HEAD.
 */
export function writeResponse(
  req: IncomingMessage,
  res: ServerResponse,
  head: HttpResponseHead,
  body: Uint8Array,
  extra: HeaderPair[],
): void {
  res.writeHead(head.status, rawHeaders(head, extra, body.length));
  res.end(req.method === 'HEAD' ? undefined : body);
}

function rawHeaders(head: HttpResponseHead, extra: HeaderPair[], length: number): string[] {
  const raw: string[] = [];
  for (const [k, v] of head.headers) raw.push(k, v);
  for (const [k, v] of extra) raw.push(k, v);
  if (length >= 0) raw.push('content-length', String(length));
  return raw;
}

/**
 * Write an actor's streamed response as its pieces arrive: with its Content-Length when it
 * declared one (`length` ≥ 0), chunked otherwise, waiting for the client to drain. A failure
 * once the head is out can only cut the connection, which tells the client the body is
 * incomplete; the error is rethrown for the log. Stops pulling when the client goes away.
 */
export async function writeStreamedResponse(
  res: ServerResponse,
  head: HttpResponseHead,
  stream: AsyncGenerator<Uint8Array>,
  length: number,
  extra: HeaderPair[],
): Promise<void> {
  res.writeHead(head.status, rawHeaders(head, extra, length));
  res.flushHeaders();
  let gone = false;
  const onClose = (): void => {
    gone = true;
  };
  res.on('close', onClose);
  try {
    for await (const piece of stream) {
      if (gone) break;
      if (!res.write(piece)) {
        await new Promise<void>((resolve) => {
          const go = (): void => {
            res.off('drain', go);
            res.off('close', go);
            resolve();
          };
          res.on('drain', go);
          res.on('close', go);
        });
      }
    }
    if (!gone) res.end();
  } catch (err) {
    res.destroy();
    throw err;
  } finally {
    res.off('close', onClose);
  }
}
