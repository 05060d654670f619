/**
 * Prepares a module for the host, once per digest and memory cap, by rewriting its binary:
 *
 * - The memory maximum is capped at `limits.memoryMiB`, so the engine itself refuses
 *   `memory.grow` past it (the guest's malloc sees failure; the host is never at risk). A module
 *   whose initial memory is already over the cap is refused.
 * - A small defined memory becomes an import (`weft.memory`), so a worker can hand each fresh
 *   instance a recycled, zeroed memory instead of mapping a new one: creating and collecting a
 *   memory per request costs several times more than the whole hello actor. The instance still
 *   starts from exactly what a fresh memory holds: zeros, then its data segments, which
 *   instantiation writes again.
 */
import { ModuleInvalidError } from '../../lattice/index.ts';

const PAGE_BYTES = 64 * 1024;
const IMPORT_SECTION = 2;
const MEMORY_SECTION = 5;
const KIND_MEMORY = 0x02;
/** Memories up to this size at start are recycled; zeroing larger ones costs more than mapping. */
const RECYCLE_MAX_INITIAL_BYTES = 2 * 1024 * 1024;

/** Where a recycled memory is imported from. */
export const MEMORY_IMPORT = { module: 'weft', name: 'memory' } as const;

export interface PreparedModule {
  bytes: Uint8Array;
  /** Set when the memory is imported from MEMORY_IMPORT and may be recycled. */
  memory?: { initial: number; maximum: number };
}

function readLeb(bytes: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new ModuleInvalidError('truncated module: LEB128 runs past the end');
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7;
    if (shift > 35) throw new ModuleInvalidError('malformed module: LEB128 too long');
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

function name(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...leb(b.length), ...b];
}

interface Section {
  id: number;
  body: Uint8Array;
}

/** Rewrite `bytes` (a validated module) as described above. `source` names it in errors. */
export function prepareModule(
  bytes: Uint8Array,
  memoryMiB: number,
  source: string,
): PreparedModule {
  const capPages = Math.floor((memoryMiB * 1024 * 1024) / PAGE_BYTES);
  const sections: Section[] = [];
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const [size, start] = readLeb(bytes, pos + 1);
    sections.push({ id, body: bytes.subarray(start, start + size) });
    pos = start + size;
  }
  const memSection = sections.find((s) => s.id === MEMORY_SECTION);
  if (!memSection) return { bytes };

  let p = 0;
  const [count, afterCount] = readLeb(memSection.body, p);
  p = afterCount;
  const limits: { flags: number; min: number; max: number }[] = [];
  for (let i = 0; i < count; i++) {
    const flags = memSection.body[p++]!;
    if (flags & 0x04) throw new ModuleInvalidError(`${source}: 64-bit memories are not supported`);
    const [min, afterMin] = readLeb(memSection.body, p);
    p = afterMin;
    let max = 65536;
    if (flags & 0x01) [max, p] = readLeb(memSection.body, p);
    if (min > capPages) {
      throw new ModuleInvalidError(
        `${source} needs ${(min * PAGE_BYTES) / 1048576} MiB of memory at start, over its limit of ${memoryMiB} MiB (limits.memoryMiB)`,
        { details: { source, initialPages: min, limitPages: capPages } },
      );
    }
    limits.push({ flags, min, max: Math.min(max, capPages) });
  }

  const importSection = sections.find((s) => s.id === IMPORT_SECTION);
  const importsMemory = importSection !== undefined && hasMemoryImport(importSection.body);
  const only = limits[0];
  const recycle =
    count === 1 &&
    only !== undefined &&
    !importsMemory &&
    (only.flags & 0x02) === 0 && // not shared
    only.min * PAGE_BYTES <= RECYCLE_MAX_INITIAL_BYTES;

  const out: number[] = [...bytes.subarray(0, 8)];
  const emit = (id: number, body: ArrayLike<number>): void => {
    out.push(id, ...leb(body.length));
    for (let i = 0; i < body.length; i++) out.push(body[i]!);
  };
  const memoryImport = recycle
    ? [
        ...name(MEMORY_IMPORT.module),
        ...name(MEMORY_IMPORT.name),
        KIND_MEMORY,
        0x01,
        ...leb(only.min),
        ...leb(only.max),
      ]
    : [];
  let importEmitted = false;
  for (const s of sections) {
    // The import section (id 2) must precede the function section (id 3) and everything after.
    if (recycle && !importEmitted && s.id !== 0 && s.id > IMPORT_SECTION) {
      emit(IMPORT_SECTION, [...leb(1), ...memoryImport]);
      importEmitted = true;
    }
    if (s.id === IMPORT_SECTION && recycle) {
      const [n, rest] = readLeb(s.body, 0);
      emit(IMPORT_SECTION, [...leb(n + 1), ...s.body.subarray(rest), ...memoryImport]);
      importEmitted = true;
    } else if (s.id === MEMORY_SECTION) {
      if (!recycle) {
        const body: number[] = [...leb(count)];
        for (const l of limits) body.push(l.flags | 0x01, ...leb(l.min), ...leb(l.max));
        emit(MEMORY_SECTION, body);
      }
    } else {
      emit(s.id, s.body);
    }
  }
  return recycle
    ? { bytes: new Uint8Array(out), memory: { initial: only.min, maximum: only.max } }
    : { bytes: new Uint8Array(out) };
}

/** True when an import section imports a memory (then nothing is rewritten to import one). */
function hasMemoryImport(body: Uint8Array): boolean {
  let [n, p] = readLeb(body, 0);
  while (n-- > 0) {
    let len: number;
    [len, p] = readLeb(body, p);
    p += len;
    [len, p] = readLeb(body, p);
    p += len;
    const kind = body[p++]!;
    switch (kind) {
      case 0x00: // func: type index
        [, p] = readLeb(body, p);
        break;
      case 0x01: {
        // table: reftype + limits
        p++;
        const flags = body[p++]!;
        [, p] = readLeb(body, p);
        if (flags & 0x01) [, p] = readLeb(body, p);
        break;
      }
      case KIND_MEMORY:
        return true;
      case 0x03: // global: valtype + mut
        p += 2;
        break;
      case 0x04: // tag: attribute + type index
        p++;
        [, p] = readLeb(body, p);
        break;
      default:
        throw new ModuleInvalidError(`malformed import section: unknown import kind ${kind}`);
    }
  }
  return false;
}
