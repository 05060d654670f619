/**
 * `poll_oneoff`. Every fd here is reported ready at once (stdin is buffered or read with a
 * blocking call, stdout/stderr are memory or a synchronous sink, files are regular files), so a
 * call blocks only when all its subscriptions are clocks, and then just until the earliest one
 * fires; that is how libc's `sleep`/`nanosleep` work.
 *
 * Clock timeouts are measured on the clock they name (realtime or monotonic) and converted to a
 * monotonic deadline for the wait. A relative timeout of 0 or 1 ns fires at once (wasix-libc sends
 * 1 ns for `poll(…, 0)`). CPU-time clocks and unknown ids, bad fds and unknown event types don't
 * fail the call: they produce an event carrying the error, as the witx asks.
 */
import { clockNow, monotonicNow, sleepUntil } from './clocks.ts';
import {
  Clockid,
  Errno,
  EVENT_SIZE,
  EVENTRW_HANGUP,
  Eventtype,
  SUBCLOCK_ABSTIME,
  SUBSCRIPTION_SIZE,
} from './constants.ts';
import { FdKind, type WasiState } from './state.ts';
import { errnoOf } from './vfs.ts';

/**
 * For the clock subscription at `sub`: how many ns until it fires (≤ 0: it has fired), or
 * undefined for a clock that can't be waited on (CPU time, unknown). Relative timeouts count from `startNs`, the start of the call.
 */
function clockRemaining(view: DataView, sub: number, startNs: bigint): bigint | undefined {
  const id = view.getUint32(sub + 16, true);
  if (id !== Clockid.realtime && id !== Clockid.monotonic) return undefined;
  const timeout = view.getBigUint64(sub + 24, true);
  if ((view.getUint16(sub + 40, true) & SUBCLOCK_ABSTIME) === 0) {
    return timeout <= 1n ? 0n : startNs + timeout - monotonicNow();
  }
  return timeout - (clockNow(id) as bigint);
}

export function poll_oneoff(
  s: WasiState,
  inPtr: number,
  outPtr: number,
  nsubscriptions: number,
  retNevents: number,
): number {
  const m = s.mem;
  m.refresh();
  inPtr >>>= 0;
  outPtr >>>= 0;
  retNevents >>>= 0;
  const n = nsubscriptions >>> 0;
  if (n === 0) return Errno.inval;
  if (
    !m.ok(inPtr, n * SUBSCRIPTION_SIZE) ||
    !m.ok(outPtr, n * EVENT_SIZE) ||
    !m.ok(retNevents, 4)
  ) {
    return Errno.fault;
  }
  const view = m.view;
  const startNs = monotonicNow();
  // Wait until something is ready. Re-checked after each sleep rather than trusted, so a
  // realtime clock that moved differently from the monotonic one can't yield zero events.
  for (;;) {
    let waitNs: bigint | undefined;
    for (let i = 0; i < n; i++) {
      const sub = inPtr + i * SUBSCRIPTION_SIZE;
      if (view.getUint8(sub + 8) !== Eventtype.clock) {
        waitNs = 0n;
        break;
      }
      const remaining = clockRemaining(view, sub, startNs);
      if (remaining === undefined || remaining <= 0n) {
        waitNs = 0n;
        break;
      }
      if (waitNs === undefined || remaining < waitNs) waitNs = remaining;
    }
    if (waitNs === undefined || waitNs <= 0n) break;
    sleepUntil(monotonicNow() + waitNs);
  }

  // Second pass: one event per ready subscription.
  const u8 = m.u8;
  let nevents = 0;
  for (let i = 0; i < n; i++) {
    const sub = inPtr + i * SUBSCRIPTION_SIZE;
    const type = view.getUint8(sub + 8);
    let error: number = Errno.success;
    let nbytes = 0;
    let flags = 0;
    if (type === Eventtype.clock) {
      const remaining = clockRemaining(view, sub, startNs);
      if (remaining === undefined) error = Errno.inval;
      else if (remaining > 0n) continue;
    } else if (type === Eventtype.fdRead || type === Eventtype.fdWrite) {
      const e = s.fd(view.getUint32(sub + 16, true) | 0);
      if (e === undefined) {
        error = Errno.badf;
      } else if (type === Eventtype.fdRead) {
        if (e.kind === FdKind.stdin) {
          // A streamed stdin is reported ready with 0 bytes: whether a read would block can't
          // be known without reading, and the read then simply waits.
          if (s.stdinSource === undefined) {
            nbytes = s.stdin.length - s.stdinPosition;
            // All of stdin is given up front: the writer has hung up once it is consumed.
            if (nbytes === 0) flags = EVENTRW_HANGUP;
          }
        } else if (e.file !== undefined) {
          try {
            nbytes = Math.max(0, e.file.size() - e.position);
          } catch (err) {
            error = errnoOf(err);
          }
        }
      } else if (e.kind === FdKind.stdout) {
        nbytes = s.stdout.remaining();
      } else if (e.kind === FdKind.stderr) {
        nbytes = s.stderr.remaining();
      }
    } else {
      error = Errno.inval;
    }
    // Read userdata before writing: `out` may overlap `in` (the guest's problem, not a fault).
    const userdata = view.getBigUint64(sub, true);
    const ev = outPtr + nevents * EVENT_SIZE;
    u8.fill(0, ev, ev + EVENT_SIZE);
    view.setBigUint64(ev, userdata, true);
    view.setUint16(ev + 8, error, true);
    view.setUint8(ev + 10, type > Eventtype.fdWrite ? 0 : type);
    view.setBigUint64(ev + 16, BigInt(nbytes), true);
    view.setUint16(ev + 24, flags, true);
    nevents++;
  }
  view.setUint32(retNevents, nevents, true);
  return Errno.success;
}
