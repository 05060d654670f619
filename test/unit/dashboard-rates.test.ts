/**
 * The dashboard's rates: counters' growth between heartbeats spread over fixed buckets, summed
 * over hosts, and a counter that went down (a restart) counted from zero.
 */
import { describe, expect, it } from 'vitest';
import { RateRing, growth } from '../../providers/http-gateway/dashboard/index.ts';

const T0 = 1_700_000_000_000; // a multiple of 5 s

describe('RateRing', () => {
  it('spreads an interval over the buckets it overlaps, as per-second rates', () => {
    const r = new RateRing(5_000, 12);
    // 30 requests and 3 errors from T0+2.5 s to T0+7.5 s: half in each of two buckets.
    r.add(T0 + 2_500, T0 + 7_500, { invocations: 30, errors: 3 });
    const s = r.series(T0 + 10_000, 3);
    expect(s.req).toEqual([0, 3, 3]);
    expect(s.err).toEqual([0, 0.3, 0.3]);
    expect(r.rate(T0 + 10_000, 2)).toEqual({ req: 3, err: 0.3 });
  });

  it('sums what several hosts report for the same time', () => {
    const r = new RateRing(5_000, 12);
    r.add(T0, T0 + 5_000, { invocations: 10, errors: 0 });
    r.add(T0 + 1_000, T0 + 3_000, { invocations: 15, errors: 5 });
    expect(r.series(T0 + 5_000, 1)).toEqual({ req: [5], err: [1] });
  });

  it('keeps the window only: older buckets read as zero, their slots reused', () => {
    const r = new RateRing(5_000, 4);
    r.add(T0, T0 + 5_000, { invocations: 50, errors: 0 });
    expect(r.series(T0 + 5_000, 4).req).toEqual([0, 0, 0, 10]);
    // Four buckets later the first one's slot holds a new bucket.
    r.add(T0 + 20_000, T0 + 25_000, { invocations: 5, errors: 0 });
    expect(r.series(T0 + 25_000, 4).req).toEqual([0, 0, 0, 1]);
    // A late report for a bucket already out of the window changes nothing.
    r.add(T0, T0 + 5_000, { invocations: 50, errors: 0 });
    expect(r.series(T0 + 25_000, 4).req).toEqual([0, 0, 0, 1]);
  });

  it('keeps only the share of a long interval that falls inside the window', () => {
    const r = new RateRing(5_000, 2);
    // 100 over 50 s: 10 in each 5 s bucket, of which the window holds the last two.
    r.add(T0, T0 + 50_000, { invocations: 100, errors: 0 });
    expect(r.series(T0 + 50_000, 2).req).toEqual([2, 2]);
  });
});

describe('growth', () => {
  it('is the difference of two reports, or all of a counter that went down', () => {
    expect(growth({ invocations: 5, errors: 1 }, { invocations: 8, errors: 1 })).toEqual({
      invocations: 3,
      errors: 0,
    });
    expect(growth({ invocations: 50, errors: 2 }, { invocations: 4, errors: 0 })).toEqual({
      invocations: 4,
      errors: 0,
    });
    expect(growth(undefined, { invocations: 4, errors: 1 })).toEqual({ invocations: 4, errors: 1 });
  });
});
