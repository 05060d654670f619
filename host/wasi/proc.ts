/**
 * `proc_exit`, `proc_raise`, `sched_yield`.
 *
 * `proc_exit` must not return, and a JS import can't stop a Wasm caller any other way: it throws
 * a private `ProcExit` that unwinds through the guest's frames to `WasiContext.start()`. It is not
 * an Error, so throwing it captures no stack trace.
 */
import { Errno } from './constants.ts';
import type { WasiState } from './state.ts';

export class ProcExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

/** `rval` is kept as the guest passed it (an i32; wasi-libc passes `exit()`'s int). */
export function proc_exit(s: WasiState, rval: number): never {
  s.exitCode ??= rval | 0;
  throw new ProcExit(s.exitCode);
}

/**
 * Signals don't exist in preview1 hosts: wasi-libc implements `raise()` itself (its
 * `_WASI_EMULATED_SIGNAL` library runs handlers and exits on default actions), so this import is
 * only reached by other toolchains. `nosys`, as wasmtime and wazero answer.
 */
export function proc_raise(_s: WasiState, _sig: number): number {
  return Errno.nosys;
}

/** One thread per context: there is nobody to yield to. */
export function sched_yield(_s: WasiState): number {
  return Errno.success;
}
