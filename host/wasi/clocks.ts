/**
 * Clocks and sleeping. Times are u64 nanoseconds as BigInt.
 *
 * - monotonic: `process.hrtime.bigint()`.
 * - realtime: the monotonic clock plus an anchor taken from `Date.now()`, for sub-millisecond
 *   resolution; re-anchored whenever it strays more than 1 ms from `Date.now()`, so NTP steps and
 *   drift in a long-lived host still show.
 * - process/thread CPU time: `process.cpuUsage()` / `process.threadCpuUsage()` (µs resolution);
 *   inside a worker, the thread clock is the worker's own.
 *
 * Sleeping blocks the thread with `Atomics.wait` on a private cell nobody notifies: no busy loop,
 * works in worker threads, and `worker.terminate()` still interrupts it.
 */
import { Clockid, Errno } from './constants.ts';
import type { WasiState } from './state.ts';

const hrtime = process.hrtime.bigint;
const NS_PER_MS = 1_000_000n;
const NS_PER_US = 1_000n;

let realtimeAnchorNs = BigInt(Date.now()) * NS_PER_MS - hrtime();

function realtimeNs(): bigint {
  const mono = hrtime();
  const wallNs = BigInt(Date.now()) * NS_PER_MS;
  let t = realtimeAnchorNs + mono;
  const drift = t - wallNs;
  // Date.now() truncates to the millisecond, so 0 ≤ drift < 1 ms when in step.
  if (drift > NS_PER_MS || drift < -NS_PER_MS) {
    realtimeAnchorNs = wallNs - mono;
    t = wallNs;
  }
  return t;
}

function cpuNs(usage: NodeJS.CpuUsage): bigint {
  return BigInt(usage.user + usage.system) * NS_PER_US;
}

/** Current time of clock `id` in ns, or undefined for an unknown clock. */
export function clockNow(id: number): bigint | undefined {
  switch (id) {
    case Clockid.realtime:
      return realtimeNs();
    case Clockid.monotonic:
      return hrtime();
    case Clockid.processCputime:
      return cpuNs(process.cpuUsage());
    case Clockid.threadCputime:
      return cpuNs(
        typeof process.threadCpuUsage === 'function'
          ? process.threadCpuUsage()
          : process.cpuUsage(),
      );
    default:
      return undefined;
  }
}

/** Resolution in ns, as `clock_res_get` reports it (never zero). */
function clockResolution(id: number): bigint | undefined {
  switch (id) {
    case Clockid.realtime:
      return NS_PER_US;
    case Clockid.monotonic:
      return 1n;
    case Clockid.processCputime:
    case Clockid.threadCputime:
      return NS_PER_US;
    default:
      return undefined;
  }
}

export function monotonicNow(): bigint {
  return hrtime();
}

let waitCell: Int32Array | undefined;

/** Block the thread until the monotonic clock reaches `deadlineNs`. */
export function sleepUntil(deadlineNs: bigint): void {
  waitCell ??= new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const remainingNs = deadlineNs - hrtime();
    if (remainingNs <= 0n) return;
    // Loop: the wait may end a little early (timer granularity); never return before the deadline.
    Atomics.wait(waitCell, 0, 0, Number(remainingNs) / 1e6);
  }
}

export function clock_res_get(s: WasiState, id: number, retResolution: number): number {
  const res = clockResolution(id);
  if (res === undefined) return Errno.inval;
  const m = s.mem;
  m.refresh();
  retResolution >>>= 0;
  if (!m.ok(retResolution, 8)) return Errno.fault;
  m.view.setBigUint64(retResolution, res, true);
  return Errno.success;
}

/** `precision` is a hint; every clock is read at its best precision. */
export function clock_time_get(
  s: WasiState,
  id: number,
  _precision: bigint,
  retTime: number,
): number {
  const m = s.mem;
  m.refresh();
  retTime >>>= 0;
  if (clockResolution(id) === undefined) return Errno.inval;
  if (!m.ok(retTime, 8)) return Errno.fault;
  m.view.setBigUint64(retTime, clockNow(id) as bigint, true);
  return Errno.success;
}
