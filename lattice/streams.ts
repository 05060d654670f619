/**
 * Bodies larger than the server's max_payload travel as a pull stream: the sender offers the bytes
 * on a private subject and answers one chunk per request; the receiver asks for chunks with a
 * bounded window. Pulling is the flow control: a slow receiver never has more than WINDOW chunks
 * in flight, and nothing is truncated. An offer expires after its TTL.
 */
import { nuid } from '@nats-io/transport-node';
import type { LatticeClient } from './client.ts';
import { ErrorCode, WeftError } from './errors.ts';

/** What the receiver needs to pull an offered body. */
export interface StreamRef {
  id: string;
  size: number;
  chunkBytes: number;
}

/** Chunks requested at once by a receiver. */
const WINDOW = 4;
/** Room left in a message for the envelope and the request head. */
const HEAD_ROOM_BYTES = 64 * 1024;

/** Largest body that may travel inline in an invocation message on this connection. */
export function inlineLimitBytes(client: LatticeClient): number {
  return Math.max(1024, client.nc.info!.max_payload - HEAD_ROOM_BYTES);
}

/** Serve `bytes` as a chunk stream until every chunk was pulled or `ttlMs` passed. */
export function offerBytes(client: LatticeClient, bytes: Uint8Array, ttlMs: number): StreamRef {
  const chunkBytes = Math.max(1024, client.nc.info!.max_payload - 4096);
  const count = Math.ceil(bytes.length / chunkBytes);
  const id = nuid.next();
  const served = new Set<number>();
  const sub = client.nc.subscribe(client.subjects.stream(id), {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      const i = Number(new TextDecoder().decode(msg.data));
      if (!Number.isInteger(i) || i < 0 || i >= count) {
        msg.respond(new Uint8Array(0));
        return;
      }
      msg.respond(bytes.subarray(i * chunkBytes, Math.min(bytes.length, (i + 1) * chunkBytes)));
      served.add(i);
      if (served.size === count) done();
    },
  });
  const timer = setTimeout(() => done(), ttlMs);
  timer.unref();
  function done(): void {
    clearTimeout(timer);
    sub.unsubscribe();
  }
  return { id, size: bytes.length, chunkBytes };
}

/**
 * Pull an offered body. `maxBytes` is checked against the announced size before anything is
 * fetched, raising `tooLarge` (413 for requests, 502 for responses).
 */
export async function fetchBytes(
  client: LatticeClient,
  ref: StreamRef,
  opts: { timeoutMs: number; maxBytes: number; tooLarge: ErrorCode },
): Promise<Uint8Array> {
  if (ref.size > opts.maxBytes) {
    throw new WeftError(opts.tooLarge, `body of ${ref.size} bytes exceeds ${opts.maxBytes} bytes`, {
      details: { size: ref.size, limitBytes: opts.maxBytes },
    });
  }
  const out = new Uint8Array(ref.size);
  const count = Math.ceil(ref.size / ref.chunkBytes);
  const subject = client.subjects.stream(ref.id);
  const enc = new TextEncoder();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const expected = Math.min(ref.chunkBytes, ref.size - i * ref.chunkBytes);
      const msg = await client.requestRaw(subject, enc.encode(String(i)), {
        timeoutMs: opts.timeoutMs,
        noResponders: { code: ErrorCode.Stream, message: `body stream ${ref.id} is gone` },
      });
      if (msg.data.length !== expected) {
        throw new WeftError(
          ErrorCode.Stream,
          `body stream ${ref.id}: chunk ${i} has ${msg.data.length} bytes, expected ${expected}`,
        );
      }
      out.set(msg.data, i * ref.chunkBytes);
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, count) }, worker));
  return out;
}
