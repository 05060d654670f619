/**
 * iovec arrays in guest memory: checking them, and copying between them and byte arrays. The
 * copy helpers expect arrays that `iovecTotal` has checked, and write no result of their own.
 */
import { IOVEC_SIZE } from './constants.ts';
import type { GuestMemory } from './memory.ts';

/** Linux's IOV_MAX: iovecs processed per call; more give a short count, as Linux does. */
export const MAX_IOVECS = 1024;
const U32_MAX = 0xffff_ffff;

/** Sum of the first `count` iovec lengths (capped at u32), or -1 if any lies outside memory. */
export function iovecTotal(m: GuestMemory, iovs: number, count: number): number {
  // With no iovecs the array pointer is never read, so it can't fault (writev(fd, junk, 0) is 0).
  if (count > 0 && !m.ok(iovs, count * IOVEC_SIZE)) return -1;
  const view = m.view;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
    const len = view.getUint32(iovs + i * IOVEC_SIZE + 4, true);
    if (!m.ok(ptr, len)) return -1;
    total += len;
  }
  return Math.min(total, U32_MAX);
}

/** iovec pointers and lengths, read before anything is copied into guest memory. */
const iovecScratch = new Uint32Array(MAX_IOVECS * 2);

/**
 * Copy `src[pos..]` into the iovecs; returns the bytes copied. The whole iovec array is read
 * first, as readv does: a guest whose buffers overlap its own iovec array would otherwise rewrite
 * the entries still to come with the bytes being copied, and steer the copy to addresses no one
 * checked.
 */
export function scatter(
  m: GuestMemory,
  iovs: number,
  count: number,
  src: Uint8Array,
  pos: number,
): number {
  const view = m.view;
  const u8 = m.u8;
  const n0 = Math.min(count, MAX_IOVECS);
  for (let i = 0; i < n0; i++) {
    iovecScratch[2 * i] = view.getUint32(iovs + i * IOVEC_SIZE, true);
    iovecScratch[2 * i + 1] = view.getUint32(iovs + i * IOVEC_SIZE + 4, true);
  }
  let copied = 0;
  for (let i = 0; i < n0 && pos < src.length; i++) {
    const ptr = iovecScratch[2 * i]!;
    const len = iovecScratch[2 * i + 1]!;
    const n = Math.min(len, src.length - pos, U32_MAX - copied);
    if (n > 0) u8.set(src.subarray(pos, pos + n), ptr);
    pos += n;
    copied += n;
  }
  return copied;
}

/** Copy the iovecs (at most `total` bytes) into `dst` from `pos` on, which must have room. */
export function gather(
  m: GuestMemory,
  iovs: number,
  count: number,
  total: number,
  dst: Uint8Array,
  pos: number,
): void {
  const view = m.view;
  const u8 = m.u8;
  let left = total;
  for (let i = 0; i < count && left > 0; i++) {
    const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
    const len = Math.min(view.getUint32(iovs + i * IOVEC_SIZE + 4, true), left);
    if (len > 0) dst.set(u8.subarray(ptr, ptr + len), pos);
    pos += len;
    left -= len;
  }
}

/** The non-empty iovecs, `maxBytes` at most, as views of guest memory (for readv/writev). */
export function iovecViews(
  m: GuestMemory,
  iovs: number,
  count: number,
  maxBytes: number,
): Uint8Array[] {
  const view = m.view;
  const u8 = m.u8;
  const out: Uint8Array[] = [];
  let left = maxBytes;
  for (let i = 0; i < count && left > 0; i++) {
    const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
    const len = Math.min(view.getUint32(iovs + i * IOVEC_SIZE + 4, true), left);
    if (len > 0) out.push(u8.subarray(ptr, ptr + len));
    left -= len;
  }
  return out;
}
