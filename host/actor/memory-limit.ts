/**
 * Caps a module's linear memory by rewriting the maximum of its memory section, so the engine
 * itself refuses `memory.grow` past the cap (the guest's malloc sees failure; the host is never at
 * risk). A module whose initial memory is already over the cap is refused at load.
 */
import { ModuleInvalidError } from '../../lattice/index.ts';

const PAGE_BYTES = 64 * 1024;
const MEMORY_SECTION = 5;

function readLeb(bytes: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new Error('truncated LEB128');
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7;
    if (shift > 35) throw new Error('LEB128 too long');
  }
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/**
 * Return `bytes` with every defined 32-bit memory's maximum set to at most `memoryMiB`.
 * `source` names the module in errors.
 */
export function capMemory(bytes: Uint8Array, memoryMiB: number, source: string): Uint8Array {
  const capPages = Math.floor((memoryMiB * 1024 * 1024) / PAGE_BYTES);
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const [size, payloadStart] = readLeb(bytes, pos + 1);
    const end = payloadStart + size;
    if (id !== MEMORY_SECTION) {
      pos = end;
      continue;
    }
    let p = payloadStart;
    const [count, afterCount] = readLeb(bytes, p);
    p = afterCount;
    const out: number[] = [...leb(count)];
    for (let i = 0; i < count; i++) {
      const flags = bytes[p++]!;
      if (flags & 0x04)
        throw new ModuleInvalidError(`${source}: 64-bit memories are not supported`);
      const [min, afterMin] = readLeb(bytes, p);
      p = afterMin;
      let max = Infinity;
      if (flags & 0x01) {
        const [m, afterMax] = readLeb(bytes, p);
        max = m;
        p = afterMax;
      }
      if (min > capPages) {
        throw new ModuleInvalidError(
          `${source} needs ${(min * PAGE_BYTES) / 1048576} MiB of memory at start, over its limit of ${memoryMiB} MiB (limits.memoryMiB)`,
          { details: { source, initialPages: min, limitPages: capPages } },
        );
      }
      out.push(flags | 0x01, ...leb(min), ...leb(Math.min(max, capPages)));
    }
    const payload = [...out, ...bytes.subarray(p, end)];
    const section = [MEMORY_SECTION, ...leb(payload.length), ...payload];
    const result = new Uint8Array(bytes.length - (end - pos) + section.length);
    result.set(bytes.subarray(0, pos), 0);
    result.set(section, pos);
    result.set(bytes.subarray(end), pos + section.length);
    return result;
  }
  return bytes;
}
