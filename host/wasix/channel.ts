/**
 * The system-call channel between one guest thread and its instance's kernel thread: a small
 * SharedArrayBuffer per guest thread. The guest thread writes a call (function index and
 * arguments), bumps the request sequence, wakes the kernel and sleeps in `Atomics.wait` until
 * the response sequence catches up; the kernel, which never runs guest code, waits for requests
 * with `Atomics.waitAsync` so that its event loop stays free for the network while calls block.
 *
 * Guest memory is shared, so pointers travel as they are: the kernel reads and writes the
 * guest's buffers itself. Arguments are i32 (as doubles) or i64 (as BigInt, flagged in a mask).
 */

const REQ = 0;
const RESP = 1;
const FN = 2;
const RESULT = 3;
const ARGC = 4;
const BIGMASK = 5;
const MAX_ARGS = 12;
const F64_OFFSET = 64;
const B64_OFFSET = F64_OFFSET + MAX_ARGS * 8;
export const CHANNEL_BYTES = B64_OFFSET + MAX_ARGS * 8;

export function newChannel(): SharedArrayBuffer {
  return new SharedArrayBuffer(CHANNEL_BYTES);
}

/** The guest thread's side. */
export class ChannelClient {
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #b64: BigInt64Array;

  constructor(sab: SharedArrayBuffer) {
    this.#i32 = new Int32Array(sab, 0, F64_OFFSET / 4);
    this.#f64 = new Float64Array(sab, F64_OFFSET, MAX_ARGS);
    this.#b64 = new BigInt64Array(sab, B64_OFFSET, MAX_ARGS);
  }

  /** Run call `fn` in the kernel and return its result; blocks this thread until then. */
  call(fn: number, args: ArrayLike<number | bigint>): number {
    const i32 = this.#i32;
    const n = Math.min(args.length, MAX_ARGS);
    let mask = 0;
    for (let i = 0; i < n; i++) {
      const a = args[i]!;
      if (typeof a === 'bigint') {
        this.#b64[i] = a;
        mask |= 1 << i;
      } else {
        this.#f64[i] = a;
      }
    }
    i32[FN] = fn;
    i32[ARGC] = n;
    i32[BIGMASK] = mask;
    const seq = (i32[REQ]! + 1) | 0;
    Atomics.store(i32, REQ, seq);
    Atomics.notify(i32, REQ);
    for (;;) {
      const resp = Atomics.load(i32, RESP);
      if (resp === seq) break;
      Atomics.wait(i32, RESP, resp);
    }
    return i32[RESULT]!;
  }
}

export type CallHandler = (
  fn: number,
  args: (number | bigint)[],
) => number | Promise<number> | undefined;

/**
 * The kernel's side: serve calls from one guest thread until `stop()`. A handler returning a
 * promise leaves the guest thread asleep until it settles.
 */
export class ChannelServer {
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #b64: BigInt64Array;
  readonly #handle: CallHandler;
  #stopped = false;

  constructor(sab: SharedArrayBuffer, handle: CallHandler) {
    this.#i32 = new Int32Array(sab, 0, F64_OFFSET / 4);
    this.#f64 = new Float64Array(sab, F64_OFFSET, MAX_ARGS);
    this.#b64 = new BigInt64Array(sab, B64_OFFSET, MAX_ARGS);
    this.#handle = handle;
    void this.#loop();
  }

  stop(): void {
    this.#stopped = true;
    // Wake our own waitAsync so the loop sees `stopped`.
    Atomics.notify(this.#i32, REQ);
  }

  async #loop(): Promise<void> {
    const i32 = this.#i32;
    let seen = Atomics.load(i32, REQ);
    while (!this.#stopped) {
      const w = Atomics.waitAsync(i32, REQ, seen);
      if (w.async) await w.value;
      if (this.#stopped) return;
      const seq = Atomics.load(i32, REQ);
      if (seq === seen) continue;
      seen = seq;
      const n = i32[ARGC]!;
      const mask = i32[BIGMASK]!;
      const args: (number | bigint)[] = new Array<number | bigint>(n);
      for (let i = 0; i < n; i++) args[i] = (mask & (1 << i)) !== 0 ? this.#b64[i]! : this.#f64[i]!;
      let result: number | Promise<number> | undefined;
      try {
        result = this.#handle(i32[FN]!, args);
      } catch {
        result = 29; // io: a kernel bug must not leave the guest asleep forever
      }
      if (result instanceof Promise) {
        try {
          result = await result;
        } catch {
          result = 29;
        }
        if (this.#stopped) return;
      }
      i32[RESULT] = typeof result === 'number' ? result : 0;
      Atomics.store(i32, RESP, seq);
      Atomics.notify(i32, RESP);
    }
  }
}
