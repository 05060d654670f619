/**
 * `args_*` and `environ_*`. The strings are UTF-8 encoded on the first call, not when the context
 * is built: a WCGI request builds a context per request and many guests never read environ.
 * `*_sizes_get` counts one NUL per string; `*_get` writes `count` absolute pointers and the
 * strings back to back, with no trailing NULL pointer (libc allocates count + 1 itself).
 */
import { Errno } from './constants.ts';
import type { StringBlock, WasiState } from './state.ts';

const encoder = new TextEncoder();
const EMPTY_BLOCK: StringBlock = { bytes: new Uint8Array(0), offsets: [] };

function encodeBlock(strings: readonly string[]): StringBlock {
  if (strings.length === 0) return EMPTY_BLOCK;
  // One encode of the joined strings; the NULs (absent from the strings, checked when the
  // context was built) then mark where each one ends.
  const bytes = encoder.encode(strings.join('\0') + '\0');
  const offsets: number[] = [0];
  for (let i = 0; i < bytes.length - 1; i++) if (bytes[i] === 0) offsets.push(i + 1);
  return { bytes, offsets };
}

function argsBlock(s: WasiState): StringBlock {
  return (s.argsBlock ??= encodeBlock(s.args));
}

function envBlock(s: WasiState): StringBlock {
  if (s.envBlock === undefined) {
    const env = s.env;
    if (env instanceof Uint8Array) {
      const offsets: number[] = env.length > 0 ? [0] : [];
      for (let i = 0; i < env.length - 1; i++) if (env[i] === 0) offsets.push(i + 1);
      s.envBlock = { bytes: env, offsets };
    } else {
      s.envBlock = encodeBlock(Object.keys(env).map((k) => `${k}=${env[k] as string}`));
    }
  }
  return s.envBlock;
}

/**
 * The environment as the guest receives it: `KEY=VALUE\0` for each entry, UTF-8. A context given
 * these bytes (from another thread, say) skips encoding them again. Throws TypeError like
 * `WasiContext` for names or values the guest could not receive intact.
 */
export function encodeEnviron(env: Readonly<Record<string, string>>): Uint8Array {
  validateArgsEnv([], env);
  const keys = Object.keys(env);
  if (keys.length === 0) return new Uint8Array(0);
  return encoder.encode(keys.map((k) => `${k}=${env[k] as string}\0`).join(''));
}

function sizesGet(s: WasiState, block: StringBlock, retCount: number, retSize: number): number {
  const m = s.mem;
  m.refresh();
  retCount >>>= 0;
  retSize >>>= 0;
  if (!m.ok(retCount, 4) || !m.ok(retSize, 4)) return Errno.fault;
  m.view.setUint32(retCount, block.offsets.length, true);
  m.view.setUint32(retSize, block.bytes.length, true);
  return Errno.success;
}

function blockGet(s: WasiState, block: StringBlock, ptrs: number, buf: number): number {
  const m = s.mem;
  m.refresh();
  ptrs >>>= 0;
  buf >>>= 0;
  const offsets = block.offsets;
  if (!m.ok(ptrs, offsets.length * 4) || !m.ok(buf, block.bytes.length)) return Errno.fault;
  // Pointers are u32 guest addresses; `buf + offset` can only wrap if the guest lied about
  // where the buffer is, and then it's the guest's memory to corrupt.
  for (let i = 0; i < offsets.length; i++) {
    m.view.setUint32(ptrs + i * 4, (buf + (offsets[i] as number)) >>> 0, true);
  }
  m.u8.set(block.bytes, buf);
  return Errno.success;
}

export function args_sizes_get(s: WasiState, retArgc: number, retBufSize: number): number {
  return sizesGet(s, argsBlock(s), retArgc, retBufSize);
}

export function args_get(s: WasiState, argv: number, argvBuf: number): number {
  return blockGet(s, argsBlock(s), argv, argvBuf);
}

export function environ_sizes_get(s: WasiState, retCount: number, retBufSize: number): number {
  return sizesGet(s, envBlock(s), retCount, retBufSize);
}

export function environ_get(s: WasiState, environ: number, environBuf: number): number {
  return blockGet(s, envBlock(s), environ, environBuf);
}

/** Throws TypeError for strings the guest could not receive intact (NUL, or `=` in a key). */
export function validateArgsEnv(
  args: readonly string[],
  env: Readonly<Record<string, string>> | Uint8Array,
): void {
  for (const a of args) {
    if (a.includes('\0')) throw new TypeError('WASI args must not contain NUL characters');
  }
  if (env instanceof Uint8Array) {
    if (env.length > 0 && env[env.length - 1] !== 0) {
      throw new TypeError('encoded WASI environ must end with a NUL (see encodeEnviron)');
    }
    return;
  }
  for (const k of Object.keys(env)) {
    if (k === '' || k.includes('=') || k.includes('\0')) {
      throw new TypeError(`WASI env name '${k}' is empty or contains '=' or NUL`);
    }
    const v = env[k];
    if (typeof v !== 'string' || v.includes('\0')) {
      throw new TypeError(`WASI env value of '${k}' is not a string or contains NUL`);
    }
  }
}
