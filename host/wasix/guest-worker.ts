/**
 * One guest thread of a WASIX instance, as a worker thread: the instance's main thread (runs
 * `_start`) or a thread the guest spawned (runs `wasi_thread_start(tid, arg)`), each a new
 * instance of the module on the same shared memory.
 *
 * Calls that need no process state run here (clocks, random, futexes on the shared memory,
 * thread ids, sleeps); every other call goes to the kernel thread over this thread's channel,
 * and this thread sleeps in `Atomics.wait` until it answers, which is what lets a guest block in
 * accept or recv without spinning.
 */
import { randomFillSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { clockNow } from '../wasi/clocks.ts';
import { Errno } from '../wasi/constants.ts';
import { ChannelClient } from './channel.ts';
import { callNames, type GuestThreadData, type GuestThreadMsg, WASIX_MODULES } from './protocol.ts';

const data = workerData as GuestThreadData;
const memory = data.memory;
const channel = new ChannelClient(data.channel);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** The thread this worker runs now. */
const current = { tid: data.tid };

class ThreadExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}
class ProcExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

let u8 = new Uint8Array(memory.buffer);
let i32 = new Int32Array(memory.buffer);
let view = new DataView(memory.buffer);
function refresh(): void {
  if (u8.byteLength !== memory.buffer.byteLength) {
    u8 = new Uint8Array(memory.buffer);
    i32 = new Int32Array(memory.buffer);
    view = new DataView(memory.buffer);
  }
}
function fits(ptr: number, len: number): boolean {
  refresh();
  return ptr + len <= u8.byteLength;
}

type n = number;
type b = bigint;

/** Wake up to `count` waiters on the futex at `addr`; writes whether any woke. */
function futexWake(addr: number, ret: number, count: number): number {
  addr >>>= 0;
  ret >>>= 0;
  if ((addr & 3) !== 0) return Errno.inval;
  if (!fits(addr, 4) || !fits(ret, 1)) return Errno.fault;
  view.setUint8(ret, Atomics.notify(i32, addr >> 2, count) > 0 ? 1 : 0);
  return Errno.success;
}

const local: Record<string, (...args: never[]) => number> = {
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
    view.setUint32(ret, current.tid, true);
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
    const r = Atomics.wait(i32, addr >> 2, expected | 0, ms);
    refresh();
    view.setUint8(retWoken, r === 'timed-out' ? 0 : 1);
    return Errno.success;
  },
  futex_wake: (addr: n, ret: n) => futexWake(addr, ret, 1),
  futex_wake_all: (addr: n, ret: n) => futexWake(addr, ret, Infinity),
  thread_sleep(ns: b) {
    const ms = Number(ns) / 1e6;
    if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
    return Errno.success;
  },
  thread_exit(code: n): never {
    throw new ThreadExit(code);
  },
  proc_exit(code: n): never {
    channel.call(exitIndex, [code]);
    throw new ProcExit(code);
  },
  proc_exit2(code: n): never {
    channel.call(exitIndex, [code]);
    throw new ProcExit(code);
  },
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

const names = callNames(data.module);
const exitIndex =
  names.indexOf('proc_exit') >= 0 ? names.indexOf('proc_exit') : names.indexOf('proc_exit2');

function remote(index: number): (...args: (number | bigint)[]) => number {
  return (...args) => channel.call(index, args);
}

function buildImports(): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(data.module)) {
    const ns = (imports[imp.module] ??= {});
    if (imp.kind === 'memory') {
      ns[imp.name] = memory;
    } else if (imp.kind === 'function' && WASIX_MODULES.includes(imp.module)) {
      const f = local[imp.name];
      ns[imp.name] = (f ?? remote(names.indexOf(imp.name))) as WebAssembly.ImportValue;
    } else if (imp.kind === 'function') {
      ns[imp.name] = (() => Errno.nosys) as WebAssembly.ImportValue;
    }
  }
  return imports;
}

function post(msg: GuestThreadMsg): void {
  parentPort!.postMessage(msg);
}

const imports = buildImports();

/** Run one guest thread (or the main one) on this worker. */
function run(kind: 'main' | 'thread', tid: number, startArg: number): void {
  current.tid = tid;
  try {
    const instance = new WebAssembly.Instance(data.module, imports);
    if (kind === 'main') {
      const start = instance.exports['_start'];
      if (typeof start !== 'function') throw new Error('module has no _start export');
      (start as () => void)();
      post({ type: 'main-returned' });
    } else {
      const start = instance.exports['wasi_thread_start'];
      if (typeof start !== 'function') throw new Error('module has no wasi_thread_start export');
      (start as (tid: number, arg: number) => void)(tid, startArg);
      post({ type: 'thread-ended' });
    }
  } catch (err) {
    if (err instanceof ThreadExit) post({ type: 'thread-ended' });
    else if (err instanceof ProcExit) {
      // The kernel already has the code and is ending every thread.
    } else {
      post({
        type: 'trap',
        message: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
    }
  }
}

// A worker whose thread ended may be given the next thread to run: starting a worker costs far
// more than instantiating the module again.
parentPort!.on('message', (m: { type: 'run'; tid: number; startArg: number }) => {
  if (m.type === 'run') run('thread', m.tid, m.startArg);
});

run(data.kind, data.tid, data.startArg);
