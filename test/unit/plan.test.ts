import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  planActors,
  type ActorPlan,
  type ActorWant,
  type HostView,
  type Placement,
  type SpreadWant,
} from '../../scheduler/plan.ts';

const host = (hostId: string, labels: Record<string, string> = {}): HostView => ({
  hostId,
  labels,
});
const east = (hostId: string): HostView => host(hostId, { zone: 'east' });
const west = (hostId: string): HostView => host(hostId, { zone: 'west' });

function want(over: Partial<ActorWant> = {}): ActorWant {
  return { app: 'app', actor: 'echo', mode: 'proxy', instances: 1, daemon: false, ...over };
}

const zoned = (name: string, weight?: number): SpreadWant =>
  weight === undefined
    ? { name, requirements: { zone: name } }
    : { name, requirements: { zone: name }, weight };

const NONE = new Map<string, Placement[]>();

function planOne(w: ActorWant, hosts: HostView[], current = NONE): ActorPlan {
  const [plan] = planActors([w], hosts, current);
  if (plan === undefined) throw new Error('no plan');
  return plan;
}

/** "h1:2 h2:1" */
const shown = (plan: ActorPlan): string =>
  plan.placements.map((p) => `${p.hostId}:${p.count}`).join(' ');

const asCurrent = (plans: readonly ActorPlan[]): Map<string, Placement[]> =>
  new Map(plans.map((p) => [p.actor, p.placements]));

// ---------------------------------------------------------------------------------------------

describe('planActors: examples', () => {
  const hosts = [east('e1'), east('e2'), west('w1'), west('w2')];
  const weighted = [zoned('east', 2), zoned('west', 1)];

  it('splits by weight over labelled hosts (proxy)', () => {
    const three = planOne(want({ instances: 3, spread: weighted }), hosts);
    expect(three).toEqual({
      app: 'app',
      actor: 'echo',
      wanted: 3,
      placements: [
        { hostId: 'e1', count: 1 },
        { hostId: 'e2', count: 1 },
        { hostId: 'w1', count: 1 },
      ],
    });
    expect(shown(planOne(want({ instances: 6, spread: weighted }), hosts))).toBe(
      'e1:2 e2:2 w1:1 w2:1',
    );
  });

  it('splits by weight over labelled hosts (wcgi)', () => {
    const plan = planOne(want({ mode: 'wcgi', instances: 3, spread: weighted }), hosts);
    expect(shown(plan)).toBe('e1:1 e2:1 w1:1');
    expect(plan.waiting).toBeUndefined();
  });

  it('gives leftovers to the largest remainders, ties in spread order', () => {
    const one = [east('e1'), west('w1')];
    expect(
      shown(planOne(want({ instances: 5, spread: [zoned('east'), zoned('west')] }), one)),
    ).toBe('e1:3 w1:2');
    // 4 * 1/3 = 1 r 1, 4 * 2/3 = 2 r 2: the leftover goes to west
    expect(
      shown(planOne(want({ instances: 4, spread: [zoned('east', 1), zoned('west', 2)] }), one)),
    ).toBe('e1:1 w1:3');
    const three = [host('a'), host('b'), host('c')];
    const spreads = ['a', 'b', 'c'].map((n) => ({ name: n, requirements: {} }));
    // shares 2, 2, 1; all spreads match all hosts, so each host ends with 5/3 rounded
    expect(shown(planOne(want({ instances: 5, spread: spreads }), three))).toBe('a:2 b:2 c:1');
  });

  it('spreads a proxy share evenly over the hosts of its spread', () => {
    const plan = planOne(want({ instances: 5 }), [host('a'), host('b')]);
    expect(shown(plan)).toBe('a:3 b:2');
    expect(shown(planOne(want({ instances: 7 }), [host('a'), host('b'), host('c')]))).toBe(
      'a:3 b:2 c:2',
    );
  });

  it('leaves the share of a spread matching no host unplaced, and says why', () => {
    const plan = planOne(want({ instances: 4, spread: [zoned('east'), zoned('west')] }), [
      east('e1'),
      east('e2'),
    ]);
    expect(shown(plan)).toBe('e1:1 e2:1');
    expect(plan.wanted).toBe(4);
    expect(plan.waiting).toBe("spread 'west' (zone=west): no host matches");
  });

  it('places a wcgi actor at most once per host', () => {
    const plan = planOne(want({ mode: 'wcgi', instances: 3 }), [host('h2'), host('h1')]);
    expect(shown(plan)).toBe('h1:1 h2:1');
    expect(plan.waiting).toBe(
      "spread 'default': wants 3 hosts, 2 match (a wcgi actor runs at most once per host)",
    );
    const any = planOne(
      want({ mode: 'wcgi', instances: 3, spread: [{ name: 'any', requirements: {} }] }),
      [host('h1'), host('h2')],
    );
    expect(any.waiting).toBe(
      "spread 'any': wants 3 hosts, 2 match (a wcgi actor runs at most once per host)",
    );
  });

  it('does not move a wcgi shortfall to another spread', () => {
    const plan = planOne(
      want({ mode: 'wcgi', instances: 4, spread: [zoned('east'), zoned('west')] }),
      [east('e1'), west('w1'), west('w2'), west('w3')],
    );
    expect(shown(plan)).toBe('e1:1 w1:1 w2:1');
    expect(plan.waiting).toBe(
      "spread 'east' (zone=east): wants 2 hosts, 1 matches (a wcgi actor runs at most once per host)",
    );
  });

  it('seats overlapping wcgi spreads on distinct hosts', () => {
    const spread = [{ name: 'any', requirements: {} }, zoned('east')];
    // By hostId 'any' would take e1 and leave 'east' nothing; e1 is re-seated on 'east'.
    const plan = planOne(want({ mode: 'wcgi', instances: 2, spread }), [east('e1'), west('w1')]);
    expect(shown(plan)).toBe('e1:1 w1:1');
    expect(plan.waiting).toBeUndefined();

    const both = [
      { name: 'a', requirements: {} },
      { name: 'b', requirements: {} },
    ];
    const short = planOne(want({ mode: 'wcgi', instances: 4, spread: both }), [
      host('h1'),
      host('h2'),
      host('h3'),
    ]);
    expect(shown(short)).toBe('h1:1 h2:1 h3:1');
    expect(short.waiting).toBe(
      "spread 'b': wants 2 hosts, 3 match, 2 of them used by other spreads (a wcgi actor runs at most once per host)",
    );
  });

  it('names the same short spread whichever hosts were current', () => {
    // Shares 1/1/1 on two hosts: one spread is short, and which one must not depend on the
    // order the hosts were seated in, or feeding the plan back would change `waiting`.
    const spread = [
      { name: 's0', requirements: {} },
      { name: 's1', requirements: { zone: 'east' } },
      { name: 's2', requirements: {} },
    ];
    const w = want({ actor: 'a0', mode: 'wcgi', instances: 3, spread });
    const hosts2 = [east('h3'), host('h0')];
    const reason =
      "spread 's2': wants 1 host, 2 match, 2 of them used by other spreads (a wcgi actor runs at most once per host)";
    for (const current of [[], ['h3'], ['h0'], ['h0', 'h3']]) {
      const placements = current.map((hostId) => ({ hostId, count: 1 }));
      const plan = planOne(w, hosts2, new Map([['a0', placements]]));
      expect(shown(plan)).toBe('h0:1 h3:1');
      expect(plan.waiting).toBe(reason);
    }
    const one = planOne(want({ mode: 'wcgi', instances: 2 }), [host('h1')]);
    expect(one.waiting).toBe(
      "spread 'default': wants 2 hosts, 1 matches (a wcgi actor runs at most once per host)",
    );
  });

  it('runs a daemon once on every matching host, instances ignored', () => {
    const all = [east('e1'), west('w1'), east('e2')];
    const plan = planOne(want({ daemon: true, instances: 0, spread: [zoned('east')] }), all);
    expect(plan).toEqual({
      app: 'app',
      actor: 'echo',
      wanted: 2,
      placements: [
        { hostId: 'e1', count: 1 },
        { hostId: 'e2', count: 1 },
      ],
    });
    expect(shown(planOne(want({ daemon: true, mode: 'wcgi' }), all))).toBe('e1:1 e2:1 w1:1');
    const none = planOne(want({ daemon: true, spread: [zoned('north')] }), all);
    expect(none).toMatchObject({ wanted: 0, placements: [] });
    expect(none.waiting).toBe("spread 'north' (zone=north): no host matches");
  });

  it('never places on a weight-0 spread', () => {
    const two = [east('e1'), west('w1')];
    const plan = planOne(want({ instances: 3, spread: [zoned('east', 0), zoned('west')] }), two);
    expect(shown(plan)).toBe('w1:3');
    expect(plan.waiting).toBeUndefined();
    // A weight-0 spread with no host is not short of anything.
    const idle = planOne(want({ instances: 1, spread: [zoned('north', 0), zoned('west')] }), two);
    expect(idle.waiting).toBeUndefined();
    const zero = planOne(want({ instances: 3, spread: [zoned('east', 0), zoned('west', 0)] }), two);
    expect(zero).toEqual({
      app: 'app',
      actor: 'echo',
      wanted: 3,
      placements: [],
      waiting: 'every spread has weight 0',
    });
  });

  it('refuses invalid weights and instances without throwing', () => {
    const two = [east('e1'), west('w1')];
    for (const weight of [-1, 1.5, Number.NaN, Infinity]) {
      const plan = planOne(
        want({ instances: 2, spread: [zoned('west'), zoned('east', weight)] }),
        two,
      );
      expect(plan).toEqual({
        app: 'app',
        actor: 'echo',
        wanted: 2,
        placements: [],
        waiting: "spread 'east': weight must be an integer >= 0",
      });
    }
    for (const instances of [0, -1, 2.5, Number.NaN, Infinity]) {
      expect(planOne(want({ instances }), two)).toEqual({
        app: 'app',
        actor: 'echo',
        wanted: 0,
        placements: [],
        waiting: 'instances must be an integer >= 1',
      });
    }
    const junk = [
      null,
      { app: 'x', actor: 'y', mode: 'grpc', instances: 1, daemon: false },
      { app: 'x', actor: 'z', mode: 'proxy', instances: 1, daemon: false, spread: [null, {}] },
    ] as unknown as ActorWant[];
    const badHosts = [
      null,
      { hostId: 'h' },
      { hostId: 'i', labels: { zone: 1 } },
    ] as unknown as HostView[];
    const plans = planActors(junk, badHosts, undefined as unknown as Map<string, Placement[]>);
    expect(plans.map((p) => p.waiting)).toEqual([
      'not an actor want',
      "mode must be 'wcgi' or 'proxy'",
      undefined,
    ]);
    expect(shown(plans[2]!)).toBe('h:1');
  });

  it('spreads several actors over hosts by the instances already assigned', () => {
    const hosts3 = [host('h1'), host('h2'), host('h3')];
    const wants = ['a', 'b', 'c'].map((actor) => want({ actor, mode: 'wcgi' }));
    expect(planActors(wants, hosts3, NONE).map(shown)).toEqual(['h1:1', 'h2:1', 'h3:1']);
    const proxies = [want({ actor: 'a', instances: 4 }), want({ actor: 'b', instances: 2 })];
    expect(planActors(proxies, hosts3, NONE).map(shown)).toEqual(['h1:2 h2:1 h3:1', 'h2:1 h3:1']);
  });

  it('keeps current placements', () => {
    const hosts3 = [host('h1'), host('h2'), host('h3')];
    const current = (placements: Placement[]): Map<string, Placement[]> =>
      new Map([['echo', placements]]);
    // scale down 3 → 2: h1 goes, not h3
    const wcgi = planOne(
      want({ mode: 'wcgi', instances: 2 }),
      hosts3,
      current([
        { hostId: 'h3', count: 1 },
        { hostId: 'h2', count: 1 },
        { hostId: 'gone', count: 1 },
      ]),
    );
    expect(shown(wcgi)).toBe('h2:1 h3:1');
    const counts = [
      { hostId: 'h1', count: 1 },
      { hostId: 'h2', count: 2 },
      { hostId: 'h3', count: 2 },
    ];
    expect(shown(planOne(want({ instances: 5 }), hosts3, current(counts)))).toBe('h1:1 h2:2 h3:2');
    expect(shown(planOne(want({ instances: 5 }), hosts3))).toBe('h1:2 h2:2 h3:1');
  });

  it('moves one proxy instance when a new host must share an even split', () => {
    const current = new Map([
      [
        'echo',
        [
          { hostId: 'a', count: 2 },
          { hostId: 'b', count: 2 },
        ],
      ],
    ]);
    const plan = planOne(want({ instances: 4 }), [host('a'), host('b'), host('c')], current);
    expect(shown(plan)).toBe('a:2 b:1 c:1');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties. Oracles below are written independently of the planner.

const HOST_IDS = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'];
const labelsArb = fc.record(
  { zone: fc.constantFrom('east', 'west'), tier: fc.constantFrom('a', 'b') },
  { requiredKeys: [] },
) as fc.Arbitrary<Record<string, string>>;
const hostsArb = fc.uniqueArray(
  fc.record({ hostId: fc.constantFrom(...HOST_IDS), labels: labelsArb }),
  { selector: (h) => h.hostId, maxLength: HOST_IDS.length },
);
const spreadsArb = fc
  .array(
    fc.record(
      { requirements: labelsArb, weight: fc.integer({ min: 0, max: 3 }) },
      { requiredKeys: ['requirements'] },
    ),
    { maxLength: 3 },
  )
  .map((ss) => ss.map((s, i): SpreadWant => ({ name: `s${i}`, ...s })));
const wantsArb = fc
  .array(
    fc.record(
      {
        mode: fc.constantFrom('wcgi', 'proxy'),
        instances: fc.integer({ min: 1, max: 7 }),
        daemon: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, fc.constant(true)),
        spread: spreadsArb,
      },
      { requiredKeys: ['mode', 'instances', 'daemon'] },
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((ws) => ws.map((w, i): ActorWant => ({ app: 'app', actor: `a${i}`, ...w })));
const currentArb = fc
  .array(
    fc.tuple(
      fc.constantFrom('a0', 'a1', 'a2', 'a3'),
      fc.array(
        fc.record({
          hostId: fc.constantFrom(...HOST_IDS, 'gone'),
          count: fc.integer({ min: 1, max: 3 }),
        }),
        { maxLength: 5 },
      ),
    ),
    { maxLength: 4 },
  )
  .map((entries) => new Map(entries));
const sceneArb = fc.record({ wants: wantsArb, hosts: hostsArb, current: currentArb });

/** Fisher–Yates driven by a small LCG, so a seed gives one order. */
function shuffle<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i -= 1) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const matches = (h: HostView, requirements: Record<string, string>): boolean =>
  Object.entries(requirements).every(([k, v]) => h.labels[k] === v);

const spreadsOf = (w: ActorWant): SpreadWant[] =>
  w.spread !== undefined && w.spread.length > 0
    ? w.spread
    : [{ name: 'default', requirements: {} }];

/** Largest remainder, by the book. */
function sharesOf(w: ActorWant): number[] {
  const weights = spreadsOf(w).map((s) => s.weight ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) return weights.map(() => 0);
  const out = weights.map((x) => Math.floor((w.instances * x) / total));
  const order = weights
    .map((x, i) => ({ i, x, rem: (w.instances * x) % total }))
    .filter((e) => e.x > 0)
    .sort((a, b) => b.rem - a.rem || a.i - b.i);
  let left = w.instances - out.reduce((a, b) => a + b, 0);
  for (const { i } of order) if (left-- > 0) out[i]! += 1;
  return out;
}

/**
 * Most hosts a wcgi actor can use: spreads (capacity = share) matched to hosts (one each). By
 * max-flow/min-cut, min over sets T of spreads of (shares outside T + hosts matching T).
 */
function wcgiCapacity(shares: readonly number[], hostSets: readonly Set<string>[]): number {
  let best = Infinity;
  for (let mask = 0; mask < 1 << shares.length; mask += 1) {
    const reached = new Set<string>();
    let outside = 0;
    shares.forEach((c, i) => {
      if (mask & (1 << i)) for (const h of hostSets[i]!) reached.add(h);
      else outside += c;
    });
    best = Math.min(best, outside + reached.size);
  }
  return best;
}

const countsOf = (plan: ActorPlan): Map<string, number> =>
  new Map(plan.placements.map((p) => [p.hostId, p.count]));
const total = (plan: ActorPlan): number => plan.placements.reduce((a, p) => a + p.count, 0);

/** Property 5: totals, modes, matching and `waiting`, checked against the oracles. */
function checkPlans(wants: ActorWant[], hosts: HostView[], plans: ActorPlan[]): void {
  expect(plans).toHaveLength(wants.length);
  const live = new Set(hosts.map((h) => h.hostId));
  wants.forEach((w, k) => {
    const plan = plans[k]!;
    expect([plan.app, plan.actor]).toEqual([w.app, w.actor]);
    const ids = plan.placements.map((p) => p.hostId);
    expect(ids).toEqual([...new Set(ids)].sort());
    for (const p of plan.placements) {
      expect(live.has(p.hostId)).toBe(true);
      expect(Number.isInteger(p.count) && p.count >= 1).toBe(true);
    }
    expect(total(plan)).toBeLessThanOrEqual(plan.wanted);
    const spreads = spreadsOf(w);
    const hostSets = spreads.map(
      (s) => new Set(hosts.filter((h) => matches(h, s.requirements)).map((h) => h.hostId)),
    );
    const counts = countsOf(plan);

    if (w.daemon) {
      const anyMatch = hosts.filter((h) => hostSets.some((set) => set.has(h.hostId)));
      expect(plan.wanted).toBe(anyMatch.length);
      expect(plan.placements).toEqual(
        anyMatch
          .map((h) => ({ hostId: h.hostId, count: 1 }))
          .sort((a, b) => (a.hostId < b.hostId ? -1 : 1)),
      );
      expect(plan.waiting !== undefined).toBe(anyMatch.length === 0);
      return;
    }
    expect(plan.wanted).toBe(w.instances);
    const shares = sharesOf(w);
    if (shares.every((c) => c === 0)) {
      expect(plan.placements).toEqual([]);
      expect(plan.waiting).toBe('every spread has weight 0');
      return;
    }
    // A host only for a spread it matches.
    for (const id of counts.keys()) {
      expect(shares.some((c, i) => c > 0 && hostSets[i]!.has(id))).toBe(true);
    }
    let capacity: number;
    if (w.mode === 'wcgi') {
      for (const c of counts.values()) expect(c).toBe(1);
      const placed = new Set(counts.keys());
      // The placed hosts can be matched to spreads within their shares…
      const within = hostSets.map((set) => new Set([...set].filter((h) => placed.has(h))));
      expect(wcgiCapacity(shares, within)).toBe(placed.size);
      capacity = wcgiCapacity(shares, hostSets);
    } else {
      // Even split: a host's count lies between the floors and the ceilings of its spreads.
      for (const h of hosts) {
        let lo = 0;
        let hi = 0;
        shares.forEach((c, i) => {
          const n = hostSets[i]!.size;
          if (c === 0 || !hostSets[i]!.has(h.hostId)) return;
          lo += Math.floor(c / n);
          hi += Math.ceil(c / n);
        });
        const c = counts.get(h.hostId) ?? 0;
        expect(c).toBeGreaterThanOrEqual(lo);
        expect(c).toBeLessThanOrEqual(hi);
      }
      capacity = shares.reduce((a, c, i) => a + (hostSets[i]!.size > 0 ? c : 0), 0);
    }
    // …and as many as capacity allows.
    expect(total(plan)).toBe(capacity);
    expect(plan.waiting !== undefined).toBe(total(plan) < plan.wanted);
  });
}

describe('planActors: properties', () => {
  it('meets the totals, matches spreads, and sets waiting exactly when short', () => {
    fc.assert(
      fc.property(sceneArb, ({ wants, hosts, current }) => {
        const plans = planActors(wants, hosts, current);
        expect(plans.map((p) => p.actor)).toEqual(wants.map((w) => w.actor));
        checkPlans(wants, hosts, plans);
      }),
    );
  });

  it('is deterministic, whatever the order of hosts and current', () => {
    fc.assert(
      fc.property(sceneArb, fc.integer(), ({ wants, hosts, current }, seed) => {
        const plan = planActors(wants, hosts, current);
        expect(planActors(wants, hosts, current)).toEqual(plan);
        const reordered = new Map(
          shuffle([...current], seed).map(([actor, ps]) => [actor, shuffle(ps, seed + 1)]),
        );
        expect(planActors(wants, shuffle(hosts, seed), reordered)).toEqual(plan);
      }),
    );
  });

  it('is a fixed point: a plan fed back as current comes back unchanged', () => {
    fc.assert(
      fc.property(sceneArb, fc.integer(), ({ wants, hosts, current }, seed) => {
        const plan = planActors(wants, hosts, current);
        expect(planActors(wants, hosts, asCurrent(plan))).toEqual(plan);
        expect(planActors(wants, shuffle(hosts, seed), asCurrent(plan))).toEqual(plan);
      }),
    );
  });

  it('does not move a fully placed actor when a matching host joins', () => {
    const joinerArb = fc.record({
      hostId: fc.constantFrom('a-new', 'h2x', 'zz'),
      labels: labelsArb,
    });
    fc.assert(
      fc.property(sceneArb, joinerArb, ({ wants, hosts, current }, joiner) => {
        const before = planActors(wants, hosts, current);
        const after = planActors(wants, [...hosts, joiner], asCurrent(before));
        checkPlans(wants, [...hosts, joiner], after);
        wants.forEach((w, k) => {
          const was = before[k]!;
          const now = after[k]!;
          if (was.waiting !== undefined) return;
          const spreads = spreadsOf(w);
          if (w.daemon) {
            const joins = spreads.some((s) => matches(joiner, s.requirements));
            const added = joins ? [{ hostId: joiner.hostId, count: 1 }] : [];
            expect(now.placements).toEqual(
              [...was.placements, ...added].sort((a, b) => (a.hostId < b.hostId ? -1 : 1)),
            );
            return;
          }
          // A proxy spread with more instances than hosts must rebalance onto the joiner (the
          // even split); otherwise nothing moves.
          const shares = sharesOf(w);
          const forced =
            w.mode === 'proxy' &&
            spreads.some(
              (s, i) =>
                matches(joiner, s.requirements) &&
                shares[i]! > hosts.filter((h) => matches(h, s.requirements)).length,
            );
          if (!forced) expect(now.placements).toEqual(was.placements);
        });
      }),
    );
  });

  it('moves only the instances of a host that leaves', () => {
    fc.assert(
      fc.property(sceneArb, fc.nat(), ({ wants, hosts, current }, pick) => {
        fc.pre(hosts.length > 0);
        const gone = hosts[pick % hosts.length]!.hostId;
        const rest = hosts.filter((h) => h.hostId !== gone);
        const before = planActors(wants, hosts, current);
        const after = planActors(wants, rest, asCurrent(before));
        wants.forEach((_, k) => {
          const was = countsOf(before[k]!);
          const now = countsOf(after[k]!);
          expect(now.has(gone)).toBe(false);
          let moved = 0;
          for (const h of rest) {
            const a = was.get(h.hostId) ?? 0;
            const b = now.get(h.hostId) ?? 0;
            expect(b).toBeGreaterThanOrEqual(a);
            moved += b - a;
          }
          expect(moved).toBeLessThanOrEqual(was.get(gone) ?? 0);
        });
      }),
    );
  });

  it('neither duplicates nor oscillates with overlapping spreads', () => {
    // Every spread overlaps: the empty requirement, a zone, a tier, both.
    const overlapping = fc
      .array(
        fc.record({
          requirements: fc.constantFrom<Record<string, string>>(
            {},
            { zone: 'east' },
            { tier: 'a' },
            { zone: 'east', tier: 'a' },
          ),
          weight: fc.integer({ min: 1, max: 3 }),
        }),
        { minLength: 2, maxLength: 3 },
      )
      .map((ss) => ss.map((s, i): SpreadWant => ({ name: `s${i}`, ...s })));
    const scene = fc.record({
      wants: fc
        .array(
          fc.record({
            mode: fc.constantFrom('wcgi', 'proxy'),
            instances: fc.integer({ min: 1, max: 8 }),
            spread: overlapping,
          }),
          { minLength: 1, maxLength: 3 },
        )
        .map((ws) =>
          ws.map((w, i): ActorWant => ({ app: 'app', actor: `a${i}`, daemon: false, ...w })),
        ),
      hosts: hostsArb,
      current: currentArb,
    });
    fc.assert(
      fc.property(scene, ({ wants, hosts, current }) => {
        let plan = planActors(wants, hosts, current);
        checkPlans(wants, hosts, plan);
        const first = plan;
        for (let round = 0; round < 3; round += 1) {
          plan = planActors(wants, hosts, asCurrent(plan));
          expect(plan).toEqual(first);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on malformed numbers', () => {
    const odd = fc.oneof(
      fc.integer({ min: -3, max: 6 }),
      fc.double(),
      fc.constantFrom(Number.NaN, Infinity, -Infinity, 2 ** 60),
    );
    const scene = fc.record({
      wants: fc
        .array(
          fc.record({
            mode: fc.constantFrom('wcgi', 'proxy'),
            instances: odd,
            daemon: fc.boolean(),
            spread: fc.array(fc.record({ requirements: labelsArb, weight: odd }), { maxLength: 3 }),
          }),
          { maxLength: 3 },
        )
        .map((ws) =>
          ws.map((w, i): ActorWant => ({
            app: 'app',
            actor: `a${i}`,
            ...w,
            spread: w.spread.map((s, j) => ({ name: `s${j}`, ...s })),
          })),
        ),
      hosts: hostsArb,
      current: currentArb,
    });
    fc.assert(
      fc.property(scene, ({ wants, hosts, current }) => {
        const plans = planActors(wants, hosts, current);
        wants.forEach((w, k) => {
          const plan = plans[k]!;
          const badWeight = (w.spread ?? []).some(
            (s) => !Number.isSafeInteger(s.weight) || (s.weight ?? 0) < 0,
          );
          const badInstances =
            !w.daemon && !(Number.isSafeInteger(w.instances) && w.instances >= 1);
          if (badInstances) expect(plan.waiting).toBe('instances must be an integer >= 1');
          else if (badWeight)
            expect(plan.waiting).toMatch(/^spread 's\d': weight must be an integer >= 0$/);
          if (badInstances || badWeight) expect(plan.placements).toEqual([]);
          expect(total(plan)).toBeLessThanOrEqual(plan.wanted);
        });
        expect(planActors(wants, hosts, asCurrent(plans))).toEqual(plans);
      }),
    );
  });
});
