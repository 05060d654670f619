/**
 * stdout and stderr: captured in memory, or streamed to a sink; and the source type for a
 * streamed stdin.
 *
 * Captured: iovecs are copied straight from guest memory into one buffer that starts small and
 * doubles (capped at the limit), so a write costs no per-call chunk objects and `view()` is a
 * view, not a concatenation.
 *
 * Streamed: each guest write becomes one `sink.write()` call, so output appears as the guest
 * flushes it. A write of a single iovec hands the sink a view of guest memory (no copy); several
 * are gathered into a scratch buffer first. Either way the bytes are only valid during the call.
 */
import { IOVEC_SIZE } from './constants.ts';
import { gather } from './iovec.ts';
import type { GuestMemory } from './memory.ts';

/** Where a streamed stdout or stderr goes, e.g. `{ write: (b) => writeAllSync(1, b) }`. */
export interface OutputSink {
  /**
   * Take all of `bytes` before returning (write them out in full, or copy them): they are a
   * view of guest memory or of a scratch buffer, reused once the call returns. Synchronous. A
   * Node.js system error thrown here (`err.code` EPIPE, EAGAIN…) fails the guest's write with
   * the matching errno; anything else propagates out of the guest.
   */
  write(bytes: Uint8Array): void;
}

/** Where a streamed stdin comes from, e.g. `{ read: (buf) => fs.readSync(0, buf) }`. */
export interface StdinSource {
  /**
   * Place up to `buf.length` bytes at the start of `buf` (a view of guest memory, valid during
   * the call) and return how many; 0 means end of input. May block. Called once per guest read.
   * System errors map to errnos as for `OutputSink`; a result that isn't an integer in
   * 0..`buf.length` throws a TypeError out of the guest.
   */
  read(buf: Uint8Array): number;
}

/** The limit of a streamed output given no `*LimitBytes`: none, in practice. */
export const UNLIMITED_BYTES = Number.MAX_SAFE_INTEGER;

const EMPTY = new Uint8Array(0);
const INITIAL_CAPACITY_BYTES = 4096;
/** Below this many bytes a byte loop beats creating a subarray for `set()`. */
const SMALL_COPY_BYTES = 32;

/** stdout went over its limit. Thrown from `fd_write`, so it unwinds the guest at that write. */
export class OutputLimitError extends Error {
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super(`guest stdout exceeded its limit of ${limitBytes} bytes`);
    this.name = 'OutputLimitError';
    this.limitBytes = limitBytes;
  }
}

export class OutputBuffer {
  readonly limitBytes: number;
  /** Set for a streamed output; the buffer then stays empty. */
  readonly sink: OutputSink | undefined;
  bytes: Uint8Array = EMPTY;
  /** Bytes held in `bytes`. */
  length = 0;
  /** Bytes taken so far, held or streamed: what the limit counts. */
  written = 0;
  /** Set when bytes were dropped because of the limit (stderr). */
  truncated = false;
  #scratch: Uint8Array = EMPTY;

  constructor(limitBytes: number, sink?: OutputSink) {
    this.limitBytes = limitBytes;
    this.sink = sink;
  }

  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /** Room left before the limit. */
  remaining(): number {
    return this.limitBytes - this.written;
  }

  /**
   * Take up to `maxBytes` of the `count` iovecs at `iovs` (already bounds-checked by the
   * caller). Returns the bytes taken. A sink's exceptions propagate, with nothing counted.
   */
  append(m: GuestMemory, iovs: number, count: number, maxBytes: number): number {
    if (maxBytes <= 0) return 0;
    if (this.sink !== undefined) {
      this.sink.write(this.collect(m, iovs, count, maxBytes));
      this.written += maxBytes;
      return maxBytes;
    }
    this.reserve(maxBytes);
    const dst = this.bytes;
    const src = m.u8;
    const view = m.view;
    let at = this.length;
    const end = at + maxBytes;
    for (let i = 0; i < count && at < end; i++) {
      const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
      const len = Math.min(view.getUint32(iovs + i * IOVEC_SIZE + 4, true), end - at);
      if (len <= SMALL_COPY_BYTES) {
        for (let j = 0; j < len; j++) dst[at + j] = src[ptr + j] as number;
      } else {
        dst.set(src.subarray(ptr, ptr + len), at);
      }
      at += len;
    }
    const appended = at - this.length;
    this.length = at;
    this.written += appended;
    return appended;
  }

  /** The first `maxBytes` of the iovecs as one array: a view if one iovec holds them all. */
  private collect(m: GuestMemory, iovs: number, count: number, maxBytes: number): Uint8Array {
    const view = m.view;
    for (let i = 0; i < count; i++) {
      const len = view.getUint32(iovs + i * IOVEC_SIZE + 4, true);
      if (len === 0) continue;
      if (len < maxBytes) break;
      const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
      return m.u8.subarray(ptr, ptr + maxBytes);
    }
    if (this.#scratch.length < maxBytes) {
      this.#scratch = new Uint8Array(Math.max(maxBytes, INITIAL_CAPACITY_BYTES));
    }
    gather(m, iovs, count, maxBytes, this.#scratch, 0);
    return this.#scratch.subarray(0, maxBytes);
  }

  private reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.bytes.length) return;
    let capacity = Math.max(this.bytes.length * 2, INITIAL_CAPACITY_BYTES);
    while (capacity < need) capacity *= 2;
    capacity = Math.min(capacity, Math.max(need, this.limitBytes));
    const next = new Uint8Array(capacity);
    next.set(this.view());
    this.bytes = next;
  }
}
