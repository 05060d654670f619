/**
 * Growable capture buffers for stdout and stderr. Iovecs are copied straight from guest memory
 * into one buffer that starts small and doubles (capped at the limit), so a write costs no
 * per-call chunk objects and `bytes()` is a view, not a concatenation.
 */
import { IOVEC_SIZE } from './constants.ts';
import type { GuestMemory } from './memory.ts';

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
  bytes: Uint8Array = EMPTY;
  length = 0;
  /** Set when bytes were dropped because of the limit (stderr). */
  truncated = false;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /** Room left before the limit. */
  remaining(): number {
    return this.limitBytes - this.length;
  }

  /**
   * Append up to `maxBytes` of the `count` iovecs at `iovs` (already bounds-checked by the
   * caller). Returns the bytes appended.
   */
  append(m: GuestMemory, iovs: number, count: number, maxBytes: number): number {
    if (maxBytes <= 0) return 0;
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
    return appended;
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
