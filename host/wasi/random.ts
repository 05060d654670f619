/**
 * `random_get` from the host CSPRNG. Filled in 64 KiB chunks: the limit Web Crypto imposes per
 * call, and small enough that one huge request doesn't hold a single native call for long.
 */
import { randomFillSync } from 'node:crypto';
import { Errno } from './constants.ts';
import type { WasiState } from './state.ts';

const RANDOM_CHUNK_BYTES = 65_536;

export function random_get(s: WasiState, buf: number, bufLen: number): number {
  const m = s.mem;
  m.refresh();
  buf >>>= 0;
  bufLen >>>= 0;
  if (!m.ok(buf, bufLen)) return Errno.fault;
  const u8 = m.u8;
  for (let at = buf, end = buf + bufLen; at < end; at += RANDOM_CHUNK_BYTES) {
    randomFillSync(u8, at, Math.min(RANDOM_CHUNK_BYTES, end - at));
  }
  return Errno.success;
}
