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
 * - When nothing else can carry state from one run to the next, every mutable global is
 *   exported (`__weft_global_<index>`), so that a worker may run the next request on the same
 *   instance after putting back its memory and globals as instantiation left them: a second
 *   run then starts from exactly the state a fresh instance would, at a fraction of the cost.
 *   Reuse is off for modules with passive data segments (a run may drop them), non-numeric
 *   mutable globals, or more than one memory.
 */
import {
  ModuleInvalidError,
  readUleb128,
  uleb128,
  wasmSections,
  type WasmSection,
} from '../../lattice/index.ts';

const PAGE_BYTES = 64 * 1024;
const IMPORT_SECTION = 2;
const MEMORY_SECTION = 5;
const KIND_MEMORY = 0x02;
const EXPORT_SECTION = 7;
/** Memories up to this size at start are recycled; zeroing larger ones costs more than mapping. */
const RECYCLE_MAX_INITIAL_BYTES = 2 * 1024 * 1024;

/** Where a recycled memory is imported from. */
export const MEMORY_IMPORT = { module: 'weft', name: 'memory' } as const;

export interface PreparedModule {
  bytes: Uint8Array;
  /** Set when the memory is imported from MEMORY_IMPORT and may be recycled. */
  memory?: { initial: number; maximum: number };
  /** Set when instances may be reset and reused: the exports holding its mutable globals. */
  reuse?: { globals: string[] };
}

/** Export name prefix of the mutable globals of a reusable module. */
export const GLOBAL_EXPORT_PREFIX = '__weft_global_';
const GLOBAL_SECTION = 6;
const DATA_SECTION = 11;
const KIND_GLOBAL = 0x03;
/** Value types a global may have for its value to be saved and put back from JavaScript. */
const NUMERIC_TYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c]);

function name(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...uleb128(b.length), ...b];
}

/** Append section `id` with `body` to a module being written. */
function emitSection(out: number[], id: number, body: ArrayLike<number>): void {
  out.push(id, ...uleb128(body.length));
  for (let i = 0; i < body.length; i++) out.push(body[i]!);
}

/** Memory limits at `p`: flags, min and max (65536 pages when absent), and where they end. */
function readLimits(
  body: Uint8Array,
  p: number,
): { flags: number; min: number; max: number; end: number } {
  const flags = body[p++]!;
  let min: number;
  let max = 65536;
  [min, p] = readUleb128(body, p);
  if (flags & 0x01) [max, p] = readUleb128(body, p);
  return { flags, min, max, end: p };
}

/** How a memory cap applies to one module; `capped` throws if its memory can't fit. */
function memoryCap(memoryMiB: number, source: string, limitName: string) {
  const pages = Math.floor((memoryMiB * 1024 * 1024) / PAGE_BYTES);
  return {
    pages,
    /** The maximum to give a memory with these limits. */
    capped(l: { flags: number; min: number; max: number }): number {
      if (l.flags & 0x04) {
        throw new ModuleInvalidError(`${source}: 64-bit memories are not supported`);
      }
      if (l.min > pages) {
        throw new ModuleInvalidError(
          `${source} needs ${(l.min * PAGE_BYTES) / 1048576} MiB of memory at start, over its limit of ${memoryMiB} MiB (${limitName})`,
          { details: { source, initialPages: l.min, limitPages: pages } },
        );
      }
      return Math.min(l.max, pages);
    },
  };
}

/** Rewrite `bytes` (a validated module) as described above. `source` names it in errors. */
export function prepareModule(
  bytes: Uint8Array,
  memoryMiB: number,
  source: string,
  /** How the user sets the limit, for the error message. */
  limitName = 'limits.memoryMiB',
): PreparedModule {
  const cap = memoryCap(memoryMiB, source, limitName);
  const sections = wasmSections(bytes);
  const memSection = sections.find((s) => s.id === MEMORY_SECTION);
  if (!memSection) return { bytes };

  let [count, p] = readUleb128(memSection.body, 0);
  const limits: { flags: number; min: number; max: number }[] = [];
  for (let i = 0; i < count; i++) {
    const l = readLimits(memSection.body, p);
    p = l.end;
    limits.push({ flags: l.flags, min: l.min, max: cap.capped(l) });
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

  const globals = recycle ? reusableGlobals(sections) : undefined;
  const globalExports = (globals ?? []).map((g) => ({
    name: `${GLOBAL_EXPORT_PREFIX}${g}`,
    index: g,
  }));

  const out: number[] = [...bytes.subarray(0, 8)];
  const emit = (id: number, body: ArrayLike<number>): void => emitSection(out, id, body);
  const memoryImport = recycle
    ? [
        ...name(MEMORY_IMPORT.module),
        ...name(MEMORY_IMPORT.name),
        KIND_MEMORY,
        0x01,
        ...uleb128(only.min),
        ...uleb128(only.max),
      ]
    : [];
  let importEmitted = false;
  for (const s of sections) {
    // The import section (id 2) must precede the function section (id 3) and everything after.
    if (recycle && !importEmitted && s.id !== 0 && s.id > IMPORT_SECTION) {
      emit(IMPORT_SECTION, [...uleb128(1), ...memoryImport]);
      importEmitted = true;
    }
    if (s.id === IMPORT_SECTION && recycle) {
      const [n, rest] = readUleb128(s.body, 0);
      emit(IMPORT_SECTION, [...uleb128(n + 1), ...s.body.subarray(rest), ...memoryImport]);
      importEmitted = true;
    } else if (s.id === EXPORT_SECTION && globals) {
      const [n, rest] = readUleb128(s.body, 0);
      const added = globalExports.flatMap((g) => [
        ...name(g.name),
        KIND_GLOBAL,
        ...uleb128(g.index),
      ]);
      emit(EXPORT_SECTION, [
        ...uleb128(n + globalExports.length),
        ...s.body.subarray(rest),
        ...added,
      ]);
    } else if (s.id === MEMORY_SECTION) {
      if (!recycle) {
        const body: number[] = [...uleb128(count)];
        for (const l of limits) body.push(l.flags | 0x01, ...uleb128(l.min), ...uleb128(l.max));
        emit(MEMORY_SECTION, body);
      }
    } else {
      emit(s.id, s.body);
    }
  }
  if (!recycle) return { bytes: new Uint8Array(out) };
  const prepared: PreparedModule = {
    bytes: new Uint8Array(out),
    memory: { initial: only.min, maximum: only.max },
  };
  // Without an export section the globals could not be reached: no reuse (WASI commands always
  // export _start and memory, so this does not happen in practice).
  if (globals && sections.some((s) => s.id === EXPORT_SECTION)) {
    prepared.reuse = { globals: globalExports.map((g) => g.name) };
  }
  return prepared;
}

/** True when an import section imports a memory (then nothing is rewritten to import one). */
function hasMemoryImport(body: Uint8Array): boolean {
  let found = false;
  forEachImport(body, (kind) => {
    if (kind === KIND_MEMORY) found = true;
  });
  return found;
}

/** Call `fn` with the kind, start and end of each import in an import section. */
function forEachImport(
  body: Uint8Array,
  fn: (kind: number, start: number, end: number) => void,
): void {
  let [n, p] = readUleb128(body, 0);
  while (n-- > 0) {
    const start = p;
    let len: number;
    [len, p] = readUleb128(body, p);
    p += len;
    [len, p] = readUleb128(body, p);
    p += len;
    const kind = body[p++]!;
    switch (kind) {
      case 0x00: // func: type index
        [, p] = readUleb128(body, p);
        break;
      case 0x01: {
        // table: reftype + limits
        p++;
        const flags = body[p++]!;
        [, p] = readUleb128(body, p);
        if (flags & 0x01) [, p] = readUleb128(body, p);
        break;
      }
      case KIND_MEMORY: {
        const flags = body[p++]!;
        [, p] = readUleb128(body, p);
        if (flags & 0x01) [, p] = readUleb128(body, p);
        break;
      }
      case KIND_GLOBAL: // valtype + mut
        p += 2;
        break;
      case 0x04: // tag: attribute + type index
        p++;
        [, p] = readUleb128(body, p);
        break;
      default:
        throw new ModuleInvalidError(`malformed import section: unknown import kind ${kind}`);
    }
    fn(kind, start, p);
  }
}

/**
 * Indexes of the module's mutable globals when an instance can be reset and reused, else
 * undefined. Any construct this does not understand turns reuse off rather than risk carrying
 * state from one request to the next.
 */
function reusableGlobals(sections: WasmSection[]): number[] | undefined {
  try {
    const data = sections.find((s) => s.id === DATA_SECTION);
    if (data && hasPassiveData(data.body)) return undefined;
    const imports = sections.find((s) => s.id === IMPORT_SECTION);
    let index = imports ? importedGlobals(imports.body) : 0;
    const section = sections.find((s) => s.id === GLOBAL_SECTION);
    if (!section) return [];
    const body = section.body;
    let [n, p] = readUleb128(body, 0);
    const mutable: number[] = [];
    while (n-- > 0) {
      const type = body[p++]!;
      const mut = body[p++]!;
      if (mut === 1) {
        if (!NUMERIC_TYPES.has(type)) return undefined;
        mutable.push(index);
      }
      p = skipConstExpr(body, p);
      index++;
    }
    return mutable;
  } catch {
    return undefined;
  }
}

/** Position after a constant expression's `end`; throws on anything but the constant opcodes. */
function skipConstExpr(b: Uint8Array, p: number): number {
  for (;;) {
    const op = b[p++];
    switch (op) {
      case 0x0b:
        return p;
      case 0x41: // i32.const
      case 0x42: // i64.const
      case 0x23: // global.get
      case 0xd2: // ref.func
        [, p] = readUleb128(b, p);
        break;
      case 0x43: // f32.const
        p += 4;
        break;
      case 0x44: // f64.const
        p += 8;
        break;
      case 0xd0: // ref.null heaptype
        p += 1;
        break;
      case 0x6a: // i32.add, sub, mul (extended constant expressions)
      case 0x6b:
      case 0x6c:
      case 0x7c: // i64.add, sub, mul
      case 0x7d:
      case 0x7e:
        break;
      default:
        throw new Error(`opcode ${String(op)} in a constant expression`);
    }
  }
}

function hasPassiveData(body: Uint8Array): boolean {
  let [n, p] = readUleb128(body, 0);
  while (n-- > 0) {
    let flags: number;
    [flags, p] = readUleb128(body, p);
    if (flags === 1) return true;
    if (flags === 2) [, p] = readUleb128(body, p); // memory index
    if (flags !== 0 && flags !== 2) throw new Error(`data segment flags ${flags}`);
    p = skipConstExpr(body, p);
    let len: number;
    [len, p] = readUleb128(body, p);
    p += len;
  }
  return false;
}

function importedGlobals(body: Uint8Array): number {
  let count = 0;
  forEachImport(body, (kind) => {
    if (kind === KIND_GLOBAL) count++;
  });
  return count;
}

/** A module made ready for the WASIX runtime: its memory imported, shared, capped. */
export interface SharedMemoryModule {
  bytes: Uint8Array;
  /** Pages of the shared memory to create for its memory import. */
  memory: { initial: number; maximum: number };
}

/**
 * Rewrite `bytes` so that its one memory is an imported shared memory capped at `memoryMiB`:
 * guest threads and the kernel thread of a WASIX instance all work on that one memory. A module
 * that already imports its memory (wasix-libc's `env.memory`) keeps its import, made shared if it
 * was not; a module that defines its memory gets the import `weft.memory` in its place
 * (instructions work the same on a shared memory). Refused: several memories, 64-bit memories,
 * an initial size over the cap.
 */
export function prepareSharedMemoryModule(
  bytes: Uint8Array,
  memoryMiB: number,
  source: string,
  limitName = 'limits.memoryMiB',
): SharedMemoryModule {
  const cap = memoryCap(memoryMiB, source, limitName);
  const sections = wasmSections(bytes);
  const shared = (min: number, max: number): number[] => [0x03, ...uleb128(min), ...uleb128(max)];
  let memory: { initial: number; maximum: number } | undefined;
  let memories = 0;

  // A defined memory: replaced by an import.
  const memSection = sections.find((s) => s.id === MEMORY_SECTION);
  let defined = false;
  if (memSection) {
    const [count, p] = readUleb128(memSection.body, 0);
    memories += count;
    if (count === 1) {
      const l = readLimits(memSection.body, p);
      memory = { initial: l.min, maximum: cap.capped(l) };
      defined = true;
    }
  }
  // Imports: an imported memory gets shared, capped limits; everything else stays as it is.
  const importSection = sections.find((s) => s.id === IMPORT_SECTION);
  let importCount = 0;
  const entries: number[] = [];
  if (importSection) {
    const body = importSection.body;
    [importCount] = readUleb128(body, 0);
    forEachImport(body, (kind, start, end) => {
      if (kind !== KIND_MEMORY) {
        entries.push(...body.subarray(start, end));
        return;
      }
      memories++;
      // The limits are the entry's tail, after the two names and the kind byte.
      let p = start;
      let len: number;
      [len, p] = readUleb128(body, p);
      [len, p] = readUleb128(body, p + len);
      p += len + 1;
      const l = readLimits(body, p);
      memory = { initial: l.min, maximum: cap.capped(l) };
      entries.push(...body.subarray(start, p), ...shared(memory.initial, memory.maximum));
    });
  }
  if (memories !== 1 || memory === undefined) {
    throw new ModuleInvalidError(
      `${source}: a WASIX module needs exactly one memory, it has ${memories}`,
    );
  }
  if (defined) {
    importCount++;
    entries.push(
      ...name(MEMORY_IMPORT.module),
      ...name(MEMORY_IMPORT.name),
      KIND_MEMORY,
      ...shared(memory.initial, memory.maximum),
    );
  }
  const out: number[] = [...bytes.subarray(0, 8)];
  let importEmitted = false;
  for (const s of sections) {
    // The import section (id 2) must precede the function section (id 3) and everything after.
    if (!importEmitted && (s.id === IMPORT_SECTION || (s.id !== 0 && s.id > IMPORT_SECTION))) {
      emitSection(out, IMPORT_SECTION, [...uleb128(importCount), ...entries]);
      importEmitted = true;
    }
    if (s.id !== IMPORT_SECTION && s.id !== MEMORY_SECTION) emitSection(out, s.id, s.body);
  }
  return { bytes: new Uint8Array(out), memory };
}
