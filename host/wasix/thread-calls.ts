/**
 * The calls a guest thread answers itself, without the kernel: clocks, random, thread ids,
 * futexes on the shared memory, sleeps, and the exits. A thread on its own worker blocks in
 * `Atomics.wait`; the main thread of a guest that cannot spawn threads runs on the kernel thread
 * and blocks by returning a promise, which suspends it (JSPI) and leaves the kernel's event loop
 * free.
 */
import { randomFillSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { clockNow } from '../wasi/clocks.ts';
import { Errno } from '../wasi/constants.ts';
import { WASIX_MODULES } from './protocol.ts';

/** Thrown by `thread_exit` to unwind the guest thread. */
export class ThreadExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

/** Thrown by `proc_exit` once the kernel has the code, to unwind the guest thread. */
export class ProcExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

export interface ThreadCallsOptions {
  memory: WebAssembly.Memory;
  /** The thread now running (a worker may run several threads one after another). */
  tid(): number;
  /** `sync`: block the thread in `Atomics.wait`; `async`: return a promise instead (JSPI). */
  blocking: 'sync' | 'async';
  /** Tell the kernel the process ends with `code` (before `ProcExit` unwinds this thread). */
  procExit(code: number): void;
}

type n = number;
type b = bigint;
export type ThreadCall = (...args: never[]) => number | Promise<number>;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function threadCalls(o: ThreadCallsOptions): Record<string, ThreadCall> {
  const memory = o.memory;
  let u8 = new Uint8Array(memory.buffer);
  let i32 = new Int32Array(memory.buffer);
  let view = new DataView(memory.buffer);
  const fits = (ptr: number, len: number): boolean => {
    if (u8.byteLength !== memory.buffer.byteLength) {
      u8 = new Uint8Array(memory.buffer);
      i32 = new Int32Array(memory.buffer);
      view = new DataView(memory.buffer);
    }
    return ptr + len <= u8.byteLength;
  };

  /** Wake up to `count` waiters on the futex at `addr`; writes whether any woke. */
  const futexWake = (addr: number, ret: number, count: number): number => {
    addr >>>= 0;
    ret >>>= 0;
    if ((addr & 3) !== 0) return Errno.inval;
    if (!fits(addr, 4) || !fits(ret, 1)) return Errno.fault;
    view.setUint8(ret, Atomics.notify(i32, addr >> 2, count) > 0 ? 1 : 0);
    return Errno.success;
  };
  const woken = (ret: number, r: string): number => {
    fits(ret, 1);
    view.setUint8(ret, r === 'timed-out' ? 0 : 1);
    return Errno.success;
  };
  const exit = (code: n): never => {
    o.procExit(code);
    throw new ProcExit(code);
  };

  return {
    clock_time_get(id: n, _precision: b, ret: n) {
      ret >>>= 0;
      const t = clockNow(id);
      if (t === undefined) return Errno.inval;
      if (!fits(ret, 8)) return Errno.fault;
      view.setBigUint64(ret, t, true);
      return Errno.success;
    },
    clock_res_get(id: n, ret: n) {
      ret >>>= 0;
      if (id < 0 || id > 3) return Errno.inval;
      if (!fits(ret, 8)) return Errno.fault;
      view.setBigUint64(ret, 1000n, true);
      return Errno.success;
    },
    random_get(buf: n, len: n) {
      buf >>>= 0;
      len >>>= 0;
      if (!fits(buf, len)) return Errno.fault;
      const tmp = new Uint8Array(len);
      randomFillSync(tmp);
      u8.set(tmp, buf);
      return Errno.success;
    },
    sched_yield: () => Errno.success,
    thread_id(ret: n) {
      ret >>>= 0;
      if (!fits(ret, 4)) return Errno.fault;
      view.setUint32(ret, o.tid(), true);
      return Errno.success;
    },
    thread_parallelism(ret: n) {
      ret >>>= 0;
      if (!fits(ret, 4)) return Errno.fault;
      view.setUint32(ret, availableParallelism(), true);
      return Errno.success;
    },
    futex_wait(addr: n, expected: n, timeoutPtr: n, retWoken: n) {
      addr >>>= 0;
      timeoutPtr >>>= 0;
      retWoken >>>= 0;
      if ((addr & 3) !== 0) return Errno.inval;
      if (!fits(addr, 4) || !fits(retWoken, 1)) return Errno.fault;
      let ms = Infinity;
      if (timeoutPtr !== 0) {
        if (!fits(timeoutPtr, 16)) return Errno.fault;
        if (view.getUint8(timeoutPtr) === 1) {
          ms = Number(view.getBigUint64(timeoutPtr + 8, true)) / 1e6;
        }
      }
      if (o.blocking === 'sync')
        return woken(retWoken, Atomics.wait(i32, addr >> 2, expected | 0, ms));
      const w = Atomics.waitAsync(i32, addr >> 2, expected | 0, ms);
      return w.async ? w.value.then((r) => woken(retWoken, r)) : woken(retWoken, w.value);
    },
    futex_wake: (addr: n, ret: n) => futexWake(addr, ret, 1),
    futex_wake_all: (addr: n, ret: n) => futexWake(addr, ret, Infinity),
    thread_sleep(ns: b) {
      const ms = Number(ns) / 1e6;
      if (!(ms > 0)) return Errno.success;
      if (o.blocking === 'sync') {
        Atomics.wait(sleeper, 0, 0, ms);
        return Errno.success;
      }
      return new Promise<number>((r) => setTimeout(() => r(Errno.success), ms));
    },
    thread_exit(code: n): never {
      throw new ThreadExit(code);
    },
    proc_exit: exit,
    proc_exit2: exit,
    stack_checkpoint: () => Errno.nosys,
    stack_restore: () => Errno.nosys,
    proc_fork: () => Errno.notsup,
    proc_exec: () => Errno.notsup,
    proc_exec2: () => Errno.notsup,
    proc_exec3: () => Errno.notsup,
    proc_spawn: () => Errno.notsup,
    proc_spawn2: () => Errno.notsup,
    proc_join: () => Errno.notsup,
  };
}

/**
 * The import object of one guest thread: the shared memory, `call(name)` for each function of
 * the WASIX modules, and `nosys` for any other function import.
 */
export function guestImports(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  call: (name: string) => WebAssembly.ImportValue,
): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    const ns = (imports[imp.module] ??= {});
    if (imp.kind === 'memory') ns[imp.name] = memory;
    else if (imp.kind === 'function' && WASIX_MODULES.includes(imp.module))
      ns[imp.name] = call(imp.name);
    else if (imp.kind === 'function') ns[imp.name] = () => Errno.nosys;
  }
  return imports;
}
