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
import { parentPort, workerData } from 'node:worker_threads';
import { ChannelClient } from './channel.ts';
import { callNames, type GuestThreadData, type GuestThreadMsg } from './protocol.ts';
import { guestImports, ProcExit, ThreadExit, threadCalls } from './thread-calls.ts';

const data = workerData as GuestThreadData;
const memory = data.memory;
const channel = new ChannelClient(data.channel);
/** The thread this worker runs now. */
const current = { tid: data.tid };

const names = callNames(data.module);
/** callNames always has proc_exit: how a thread tells the kernel the process ends. */
const exitIndex = names.indexOf('proc_exit');
const local = threadCalls({
  memory,
  tid: () => current.tid,
  blocking: 'sync',
  procExit: (code) => channel.call(exitIndex, [code]),
});

const imports = guestImports(data.module, memory, (name) => {
  const f = local[name];
  if (f !== undefined) return f;
  const index = names.indexOf(name);
  return (...args: (number | bigint)[]) => channel.call(index, args);
});

function post(msg: GuestThreadMsg): void {
  parentPort!.postMessage(msg);
}

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
