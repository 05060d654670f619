/**
 * Checks that bytes are a WebAssembly module weft can run, before anything is stored, so a bad
 * push or deploy fails with a message naming the file and the problem and leaves nothing behind.
 */
import { ModuleInvalidError } from './errors.ts';

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
/** Import modules a WCGI actor may use. */
export const WASI_MODULES: readonly string[] = ['wasi_snapshot_preview1', 'wasi_unstable'];
/** Import modules a proxy actor may use besides WASI's: WASIX, and wasi-threads' `thread-spawn`. */
export const WASIX_MODULES: readonly string[] = ['wasix_32v1', 'wasi'];
/** The outbound HTTP capability's import module and its functions (actors/include/weft_http.h). */
export const WEFT_HTTP_MODULE = 'weft_http';
export const WEFT_HTTP_FUNCTIONS: readonly string[] = [
  'request',
  'header',
  'write',
  'send',
  'headers',
  'read',
  'close',
  'error',
];

export interface ModuleSummary {
  exports: string[];
  imports: string[];
  /** The module imports WASIX calls (or wasi-threads): it needs the proxy runtime. */
  wasix: boolean;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Validate `bytes` as a WASI command module: magic and version, a full validation by the engine,
 * a `_start` export, and no imports outside WASI. `source` names the file in errors.
 */
export async function checkModule(bytes: Uint8Array, source: string): Promise<ModuleSummary> {
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new ModuleInvalidError(
      `${source} is not a WebAssembly module: it starts with bytes ${hex(bytes) || '(empty file)'}, expected 00 61 73 6d`,
      { details: { source } },
    );
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new ModuleInvalidError(
      `${source} is a WebAssembly component or an unknown binary version; weft runs core modules (version 1)`,
      { details: { source } },
    );
  }
  let mod: WebAssembly.Module;
  try {
    mod = await WebAssembly.compile(bytes);
  } catch (err) {
    throw new ModuleInvalidError(
      `${source} is not a valid WebAssembly module: ${(err as Error).message}`,
      {
        cause: err,
        details: { source },
      },
    );
  }
  const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
  const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`);
  if (!exports.includes('_start')) {
    throw new ModuleInvalidError(
      `${source} has no _start export (it exports: ${exports.join(', ') || 'nothing'}); weft runs WASI command modules`,
      { details: { source, exports } },
    );
  }
  // A memory may come from anywhere (wasix-libc imports `env.memory`): the host creates it.
  const unknown = WebAssembly.Module.imports(mod)
    .filter(
      (i) =>
        i.kind !== 'memory' &&
        !WASI_MODULES.includes(i.module) &&
        !WASIX_MODULES.includes(i.module) &&
        !(i.module === WEFT_HTTP_MODULE && WEFT_HTTP_FUNCTIONS.includes(i.name)),
    )
    .map((i) => `${i.module}.${i.name}`);
  if (unknown.length > 0) {
    throw new ModuleInvalidError(
      `${source} imports functions weft does not provide: ${unknown.join(', ')}`,
      { details: { source, imports: unknown } },
    );
  }
  const wasix = WebAssembly.Module.imports(mod).some(
    (i) => WASIX_MODULES.includes(i.module) || i.kind === 'memory',
  );
  return { exports, imports, wasix };
}

/** `n` (≥ 0) as unsigned LEB128, the integer encoding of the Wasm binary format. */
export function uleb128(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** One section of a module: its id, where it lies, its content; custom sections' names. */
export interface WasmSection {
  id: number;
  /** Start of the section (its id byte) and end (exclusive), in the module. */
  start: number;
  end: number;
  /** The content after the id and size: a view of the module's bytes. */
  body: Uint8Array;
  /** Custom sections (id 0): the name, and where the content after the name starts. */
  name?: string;
  contentStart?: number;
}

/** The unsigned LEB128 (at most 5 bytes, a u32) at `pos`, and where it ends. */
export function readUleb128(
  bytes: Uint8Array,
  pos: number,
  source = 'module',
): [value: number, next: number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new ModuleInvalidError(`${source}: truncated module (in a LEB128)`);
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7;
    if (shift > 28) throw new ModuleInvalidError(`${source}: malformed module (LEB128 too long)`);
  }
}

const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/**
 * The sections of a core module, in order. Throws ModuleInvalidError when the bytes are not a
 * version 1 module or a section runs past the end.
 */
export function wasmSections(bytes: Uint8Array, source = 'module'): WasmSection[] {
  if (bytes.length < WASM_HEADER.length || WASM_HEADER.some((b, i) => bytes[i] !== b)) {
    throw new ModuleInvalidError(`${source} is not a WebAssembly core module (version 1)`, {
      details: { source },
    });
  }
  const out: WasmSection[] = [];
  let pos = WASM_HEADER.length;
  while (pos < bytes.length) {
    const start = pos;
    const id = bytes[pos++]!;
    const [size, at] = readUleb128(bytes, pos, source);
    const end = at + size;
    if (end > bytes.length) {
      throw new ModuleInvalidError(
        `${source}: truncated module (section ${id} at byte ${start} runs past the end)`,
        { details: { source } },
      );
    }
    const s: WasmSection = { id, start, end, body: bytes.subarray(at, end) };
    if (id === 0) {
      const [len, nameAt] = readUleb128(bytes, at, source);
      if (nameAt + len > end) {
        throw new ModuleInvalidError(`${source}: malformed custom section at byte ${start}`, {
          details: { source },
        });
      }
      s.name = new TextDecoder().decode(bytes.subarray(nameAt, nameAt + len));
      s.contentStart = nameAt + len;
    }
    out.push(s);
    pos = end;
  }
  return out;
}
