/**
 * JetStream calls that ride out a clustered lattice's hiccups: while a stream elects a new leader
 * (a nats-server died), while the cluster elects its first meta leader (just started), or while
 * the client reconnects, calls time out or find no responder. Those are retried with backoff
 * until a deadline; anything else fails at once.
 */
import { errors as natsErrors } from '@nats-io/transport-node';
import { ErrorCode, WeftError } from './errors.ts';
import { permissionDeniedIn } from './client.ts';

/** How long a store call keeps trying through a leader change (ms). */
export const JS_RETRY_MS = 30_000;

const TRANSIENT_RE =
  /timeout|timed out|no responders|temporarily unavailable|leader|not current|no suitable peers|insufficient resources|jetstream not enabled|connection (closed|draining)|disconnect|reconnect/i;

/** True for errors that a leader change or a reconnect explains. */
export function isTransient(err: unknown): boolean {
  if (err instanceof WeftError) return false;
  // A permission violation fails the same way every time (nats.js may wrap it in a RequestError).
  if (permissionDeniedIn(err) !== undefined) return false;
  if (err instanceof natsErrors.TimeoutError || err instanceof natsErrors.NoRespondersError) {
    return true;
  }
  if (err instanceof natsErrors.RequestError) return true;
  const e = err as { status?: unknown; code?: unknown; message?: unknown; name?: unknown };
  // JetStream API errors: 503 is "unavailable"; 10008 "JetStream system temporarily unavailable".
  if (e?.status === 503 || e?.code === 10008 || e?.code === 503 || e?.code === '503') return true;
  return TRANSIENT_RE.test(`${String(e?.name ?? '')} ${String(e?.message ?? '')}`);
}

/** Run `fn`, again on transient failures, until `timeoutMs`; then WEFT_ERR_LATTICE_UNAVAILABLE. */
export async function retryTransient<T>(
  what: string,
  fn: () => Promise<T>,
  timeoutMs = JS_RETRY_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 50; ; wait = Math.min(wait * 2, 1_000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw permissionDeniedIn(err) ?? err;
      if (Date.now() + wait > deadline) {
        throw new WeftError(
          ErrorCode.LatticeUnavailable,
          `${what}: JetStream did not answer within ${timeoutMs} ms (${(err as Error).message})`,
          { cause: err, details: { what, timeoutMs } },
        );
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
