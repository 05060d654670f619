/**
 * Request and error rates over time, from the counters hosts report in their heartbeats. A host's
 * `invocations` and `errors` only grow (until it restarts), so the growth between two heartbeats
 * of one host is what it served in that interval. The interval is measured on this process's
 * clock (when each heartbeat arrived), so hosts' clocks do not matter. Each growth is spread
 * evenly over the fixed time buckets its interval overlaps, and a bucket's sum over every host is
 * the lattice's count for that bucket.
 */

/** Count and error totals of one actor on one host, as a heartbeat reports them. */
export interface Counters {
  invocations: number;
  errors: number;
}

/** Counts per fixed time bucket over a sliding window (a ring: old buckets are reused). */
export class RateRing {
  readonly stepMs: number;
  readonly size: number;
  /** Which bucket (time / stepMs) each slot holds now; a slot holding another is empty. */
  readonly #bucket: Float64Array;
  readonly #invocations: Float64Array;
  readonly #errors: Float64Array;
  /** The end of the newest interval added (ms). */
  lastAddedMs = 0;

  constructor(stepMs: number, size: number) {
    this.stepMs = stepMs;
    this.size = size;
    this.#bucket = new Float64Array(size).fill(-1);
    this.#invocations = new Float64Array(size);
    this.#errors = new Float64Array(size);
  }

  /**
   * Add what was counted during [fromMs, toMs), spread evenly over that time. Only the part
   * inside the window ending at `toMs` is kept.
   */
  add(fromMs: number, toMs: number, counts: Counters): void {
    this.lastAddedMs = Math.max(this.lastAddedMs, toMs);
    if (counts.invocations === 0 && counts.errors === 0) return;
    if (!(toMs > fromMs)) {
      this.#addTo(Math.floor(toMs / this.stepMs), counts.invocations, counts.errors);
      return;
    }
    const duration = toMs - fromMs;
    const last = Math.ceil(toMs / this.stepMs) - 1;
    const first = Math.max(Math.floor(fromMs / this.stepMs), last - this.size + 1);
    for (let b = first; b <= last; b++) {
      const overlap = Math.min(toMs, (b + 1) * this.stepMs) - Math.max(fromMs, b * this.stepMs);
      if (overlap <= 0) continue;
      const share = overlap / duration;
      this.#addTo(b, counts.invocations * share, counts.errors * share);
    }
  }

  #addTo(bucket: number, invocations: number, errors: number): void {
    const slot = bucket % this.size;
    if (this.#bucket[slot] !== bucket) {
      // The slot held a bucket older than the window (or none): start it afresh.
      if ((this.#bucket[slot] ?? -1) > bucket) return;
      this.#bucket[slot] = bucket;
      this.#invocations[slot] = 0;
      this.#errors[slot] = 0;
    }
    this.#invocations[slot] = (this.#invocations[slot] ?? 0) + invocations;
    this.#errors[slot] = (this.#errors[slot] ?? 0) + errors;
  }

  /**
   * Per-second rates of the `points` buckets that end at `endMs` (a multiple of stepMs), oldest
   * first; buckets with nothing counted are 0.
   */
  series(endMs: number, points = this.size): { req: number[]; err: number[] } {
    const lastBucket = Math.floor(endMs / this.stepMs) - 1;
    const req: number[] = [];
    const err: number[] = [];
    const perSecond = 1_000 / this.stepMs;
    for (let b = lastBucket - points + 1; b <= lastBucket; b++) {
      const slot = ((b % this.size) + this.size) % this.size;
      const held = this.#bucket[slot] === b;
      req.push(held ? round((this.#invocations[slot] ?? 0) * perSecond) : 0);
      err.push(held ? round((this.#errors[slot] ?? 0) * perSecond) : 0);
    }
    return { req, err };
  }

  /** Mean per-second rates over the `buckets` buckets that end at `endMs`. */
  rate(endMs: number, buckets: number): { req: number; err: number } {
    const s = this.series(endMs, buckets);
    const mean = (xs: number[]) => round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length));
    return { req: mean(s.req), err: mean(s.err) };
  }
}

/** Two decimals: enough for a chart, and a smaller page update. */
function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * The growth of a counter between two reports. A counter lower than before was reset (the host
 * or the actor restarted): everything it counts now is new.
 */
export function growth(before: Counters | undefined, now: Counters): Counters {
  if (before === undefined) return now;
  const reset = now.invocations < before.invocations || now.errors < before.errors;
  return reset
    ? now
    : {
        invocations: now.invocations - before.invocations,
        errors: now.errors - before.errors,
      };
}
