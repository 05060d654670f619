/**
 * The invocation protocol: what a gateway (or `weft call`) sends to `rpc.<actor>` and what the
 * host answers. Small bodies travel inline; larger ones as a chunk stream (streams.ts).
 */
import type { LatticeClient } from './client.ts';
import { Header } from './client.ts';
import { ErrorCode } from './errors.ts';
import type { HttpRequestHead, HttpResponseHead } from './http.ts';
import { fetchBytes, inlineLimitBytes, offerBytes, pullLive, type StreamRef } from './streams.ts';

export interface InvokeRequest {
  /** Ties the request across gateway, host and logs. */
  invocationId: string;
  actor: string;
  head: HttpRequestHead;
  body?: Uint8Array;
  bodyStream?: StreamRef;
}

export interface InvokeReply {
  head: HttpResponseHead;
  body?: Uint8Array;
  bodyStream?: StreamRef;
  hostId: string;
  /** Time the host spent, microseconds: instance start and guest run. */
  timing: { startUs: number; runUs: number };
}

/** Attach a body inline or as an offered stream; the offer lives for `ttlMs`. */
export function attachBody(
  client: LatticeClient,
  body: Uint8Array,
  ttlMs: number,
): { body?: Uint8Array; bodyStream?: StreamRef } {
  if (body.length === 0) return {};
  if (body.length <= inlineLimitBytes(client)) return { body };
  return { bodyStream: offerBytes(client, body, ttlMs) };
}

/** The body of a request or reply, pulling it if it was streamed. */
export async function receiveBody(
  client: LatticeClient,
  m: { body?: Uint8Array; bodyStream?: StreamRef },
  opts: { timeoutMs: number; maxBytes: number; tooLarge: ErrorCode },
): Promise<Uint8Array> {
  if (m.bodyStream) return fetchBytes(client, m.bodyStream, opts);
  return m.body ?? new Uint8Array(0);
}

export interface InvokeOptions {
  timeoutMs: number;
  traceparent?: string;
  maxResponseBytes: number;
  /** The caller may send it again: fail it when it may have been lost (see RequestOpts). */
  retryable?: boolean;
}

/** A reply with its body: received whole, or (a live body) to be read as it arrives. */
export type InvokeResult =
  | { reply: InvokeReply; body: Uint8Array; stream?: undefined }
  | { reply: InvokeReply; body?: undefined; stream: AsyncGenerator<Uint8Array> };

/**
 * Send an invocation to the actor's queue subject, so NATS picks one of the hosts running it, and
 * return the reply with its body received, or to be read when it is live. No host →
 * WEFT_ERR_NO_HOST.
 */
export async function invoke(
  client: LatticeClient,
  req: InvokeRequest,
  body: Uint8Array,
  opts: InvokeOptions,
): Promise<InvokeResult> {
  const headers: Record<string, string> = {
    [Header.Deadline]: String(Date.now() + opts.timeoutMs),
    [Header.InvocationId]: req.invocationId,
  };
  if (opts.traceparent) headers[Header.TraceParent] = opts.traceparent;
  const msg: InvokeRequest = { ...req, ...attachBody(client, body, opts.timeoutMs + 5_000) };
  const reply = await client.request<InvokeReply>(client.subjects.rpc(req.actor), msg, {
    // The host enforces the actor's own timeout; the margin lets its 504 arrive first.
    timeoutMs: opts.timeoutMs + 2_000,
    headers,
    retryable: opts.retryable === true,
    noResponders: {
      code: ErrorCode.NoHost,
      message: `no host is running actor '${req.actor}'`,
    },
  });
  if (reply.bodyStream?.live === true) {
    // Each piece may wait for the actor; the host ends the body by the invocation's timeout.
    const stream = pullLive(client, reply.bodyStream, {
      timeoutMs: opts.timeoutMs + 2_000,
      maxBytes: opts.maxResponseBytes,
      tooLarge: ErrorCode.ResponseTooLarge,
    });
    return { reply, stream };
  }
  const out = await receiveBody(client, reply, {
    timeoutMs: 30_000,
    maxBytes: opts.maxResponseBytes,
    tooLarge: ErrorCode.ResponseTooLarge,
  });
  return { reply, body: out };
}
