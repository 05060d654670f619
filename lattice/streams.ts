/**
 * Bodies larger than the server's max_payload travel as a pull stream: the sender offers the bytes
 * on a private subject and answers one chunk per request; the receiver asks for chunks with a
 * bounded window. Pulling is the flow control: a slow receiver never has more than WINDOW chunks
 * in flight, and nothing is truncated. An offer expires after its TTL.
 *
 * A body still being produced (a proxy actor's streamed response) is offered *live*: its size
 * may be unknown, and each pull is answered with whatever has arrived since the last one (or as
 * soon as something does), framed with a flag: more to come, the end, or an error.
 */
import { nuid } from '@nats-io/transport-node';
import type { LatticeClient } from './client.ts';
import { ErrorCode, WeftError } from './errors.ts';

/** What the receiver needs to pull an offered body. */
export interface StreamRef {
  id: string;
  /** Bytes in all; for a live body, its declared length, or -1 when unknown. */
  size: number;
  chunkBytes: number;
  /** A live body: pull it with `pullLive`, one piece at a time. */
  live?: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A body over the receiver's limit: `code` is 413 for requests, 502 for responses. */
function tooLarge(code: ErrorCode, size: number, limitBytes: number): WeftError {
  return new WeftError(code, `body of ${size} bytes exceeds ${limitBytes} bytes`, {
    details: { size, limitBytes },
  });
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
      const i = Number(dec.decode(msg.data));
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
  if (ref.size > opts.maxBytes) throw tooLarge(opts.tooLarge, ref.size, opts.maxBytes);
  const out = new Uint8Array(ref.size);
  const count = Math.ceil(ref.size / ref.chunkBytes);
  const subject = client.subjects.stream(ref.id);
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

/** A body written by a producer while one consumer reads it (see `offerLive`). */
export class LiveBody {
  /** The declared length, if any. */
  readonly length: number | undefined;
  /** The consumer went away (cancelled, or stopped pulling): stop producing. */
  onAbandon: (() => void) | undefined = undefined;
  readonly #chunks: Uint8Array[] = [];
  #bytes = 0;
  #ended = false;
  #error: WeftError | undefined;
  #waiter: (() => void) | undefined;
  #paused = false;
  readonly #highWater: number;
  readonly #onFlow: ((paused: boolean) => void) | undefined;

  /**
   * `onFlow(true)` when `highWaterBytes` (default 1 MiB) are buffered and unread, `onFlow(false)`
   * once a quarter of that is left: the producer should pause and resume.
   */
  constructor(
    opts: { length?: number; highWaterBytes?: number; onFlow?(paused: boolean): void } = {},
  ) {
    this.length = opts.length;
    this.#highWater = opts.highWaterBytes ?? 1024 * 1024;
    this.#onFlow = opts.onFlow;
  }

  push(bytes: Uint8Array): void {
    if (this.#ended || this.#error !== undefined || bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#bytes += bytes.length;
    if (!this.#paused && this.#bytes >= this.#highWater) {
      this.#paused = true;
      this.#onFlow?.(true);
    }
    this.#wake();
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** End the body with an error, which the reader gets after the bytes already buffered. */
  fail(err: WeftError): void {
    if (this.#ended || this.#error !== undefined) return;
    this.#error = err;
    this.#wake();
  }

  abandon(): void {
    this.fail(new WeftError(ErrorCode.Stream, 'the receiver went away'));
    this.#chunks.length = 0;
    this.#bytes = 0;
    this.onAbandon?.();
  }

  /** Up to `max` bytes, waiting for some unless the body ended; `done` once all were read. */
  async read(max: number): Promise<{ bytes: Uint8Array; done: boolean }> {
    while (this.#bytes === 0 && !this.#ended && this.#error === undefined) {
      await new Promise<void>((r) => (this.#waiter = r));
    }
    if (this.#bytes === 0 && this.#error !== undefined) throw this.#error;
    const n = Math.min(max, this.#bytes);
    const out = new Uint8Array(n);
    let pos = 0;
    while (pos < n) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, n - pos);
      out.set(c.subarray(0, take), pos);
      pos += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#bytes -= n;
    if (this.#paused && this.#bytes <= this.#highWater / 4) {
      this.#paused = false;
      this.#onFlow?.(false);
    }
    return { bytes: out, done: this.#ended && this.#bytes === 0 };
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}

const LIVE_MORE = 0;
const LIVE_END = 1;
const LIVE_ERROR = 2;
const CANCEL = 'cancel';

function frame(flag: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + bytes.length);
  out[0] = flag;
  out.set(bytes, 1);
  return out;
}

function errorFrame(code: ErrorCode, message: string): Uint8Array {
  return frame(LIVE_ERROR, enc.encode(JSON.stringify({ code, message })));
}

/**
 * Serve a live body: pull `i` is answered with what arrived since pull `i - 1`, once something
 * has. The offer ends with the body, on the receiver's cancel, or when no pull came for `idleMs`
 * while nothing was pending (the body is then abandoned).
 */
export function offerLive(client: LatticeClient, body: LiveBody, idleMs: number): StreamRef {
  const chunkBytes = Math.max(1024, client.nc.info!.max_payload - 4096);
  const id = nuid.next();
  let next = 0;
  let finished = false;
  let idle: NodeJS.Timeout | undefined;
  const finish = (): void => {
    finished = true;
    clearTimeout(idle);
    sub.unsubscribe();
  };
  const watchIdle = (): void => {
    idle = setTimeout(() => {
      finish();
      body.abandon();
    }, idleMs);
    idle.unref();
  };
  const sub = client.nc.subscribe(client.subjects.stream(id), {
    callback: (err, msg) => {
      if (err || finished) return;
      const text = dec.decode(msg.data);
      if (text === CANCEL) {
        finish();
        body.abandon();
        return;
      }
      if (!msg.reply) return;
      if (Number(text) !== next) {
        msg.respond(errorFrame(ErrorCode.Stream, `expected a pull of piece ${next}`));
        return;
      }
      next++;
      clearTimeout(idle);
      body.read(chunkBytes).then(
        ({ bytes, done }) => {
          if (finished) return;
          msg.respond(frame(done ? LIVE_END : LIVE_MORE, bytes));
          if (done) finish();
          else watchIdle();
        },
        (e: unknown) => {
          if (finished) return;
          const w = e instanceof WeftError ? e : new WeftError(ErrorCode.Internal, String(e));
          msg.respond(errorFrame(w.code, w.message));
          finish();
        },
      );
    },
  });
  watchIdle();
  return { id, size: body.length ?? -1, chunkBytes, live: true };
}

/**
 * Read a live body piece by piece. Each pull may wait up to `timeoutMs` for the producer;
 * `maxBytes` bounds the whole (raising `tooLarge`). Leaving the loop early cancels the offer.
 */
export async function* pullLive(
  client: LatticeClient,
  ref: StreamRef,
  opts: { timeoutMs: number; maxBytes: number; tooLarge: ErrorCode },
): AsyncGenerator<Uint8Array> {
  if (ref.size > opts.maxBytes) throw tooLarge(opts.tooLarge, ref.size, opts.maxBytes);
  const subject = client.subjects.stream(ref.id);
  let total = 0;
  let finished = false;
  try {
    for (let i = 0; !finished; i++) {
      const msg = await client.requestRaw(subject, enc.encode(String(i)), {
        timeoutMs: opts.timeoutMs,
        noResponders: { code: ErrorCode.Stream, message: `body stream ${ref.id} is gone` },
      });
      const flag = msg.data[0];
      const bytes = msg.data.subarray(1);
      if (flag === LIVE_ERROR) {
        finished = true;
        const e = JSON.parse(dec.decode(bytes)) as {
          code: ErrorCode;
          message: string;
        };
        throw new WeftError(e.code, e.message);
      }
      if (flag !== LIVE_MORE && flag !== LIVE_END) {
        throw new WeftError(ErrorCode.Stream, `body stream ${ref.id}: a piece without its flag`);
      }
      finished = flag === LIVE_END;
      total += bytes.length;
      if (total > opts.maxBytes) throw tooLarge(opts.tooLarge, total, opts.maxBytes);
      if (bytes.length > 0) yield bytes;
    }
  } finally {
    if (!finished) client.nc.publish(subject, enc.encode(CANCEL));
  }
}
