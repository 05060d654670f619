/**
 * Placement planner: which hosts run how many instances of each actor.
 *
 * Pure and deterministic (no I/O, clock or randomness; hostIds compare by code unit, never by
 * locale). The scheduler re-plans on every heartbeat and manifest change, so the plan must not
 * churn: fed back as `current`, a plan comes back unchanged, and a change of hosts moves only
 * what it must.
 *
 * Per actor, in the order of `wants`:
 * 1. Shares: `instances` split over the spreads by weight, floor first, then one each to the
 *    largest remainders (ties: spread order).
 * 2. wcgi (one instance per host): hosts are taken in order of preference while the set taken can
 *    still be matched to spreads, each host to one spread it matches, no spread above its share
 *    (an augmenting path may re-seat an earlier host on another spread; its placement does not
 *    change). That greedy on a matroid keeps every current host it can and places as many
 *    instances as any assignment could.
 * 3. proxy: each spread's share goes evenly over its matching hosts (floor on every host); which
 *    hosts get the one extra is a max flow that keeps as much of `current` as the even split
 *    allows, then preference for the extras still free.
 * 4. Preference: hosts running the actor now, then the fewest instances assigned so far in this
 *    run (all actors), then hostId.
 */

/** A live host as heartbeats report it. */
export interface HostView {
  hostId: string;
  labels: Record<string, string>;
}

/**
 * Part of an actor's instances on the hosts whose labels hold every `requirements` key/value.
 * `weight` is an integer >= 0, default 1; shares are proportional to it.
 */
export interface SpreadWant {
  name: string;
  requirements: Record<string, string>;
  weight?: number;
}

/** What a manifest asks for one actor. */
export interface ActorWant {
  app: string;
  /** Unique in the lattice; keys `current`. */
  actor: string;
  /** wcgi runs at most one instance per host; proxy any number. */
  mode: 'wcgi' | 'proxy';
  /** Integer >= 1; ignored for a daemon. */
  instances: number;
  /** One instance on every host matching at least one spread (weights ignored). */
  daemon: boolean;
  /** Absent or empty: one spread named {@link DEFAULT_SPREAD_NAME} with no requirements. */
  spread?: SpreadWant[];
}

/** `count` (>= 1) instances of an actor on one host. */
export interface Placement {
  hostId: string;
  count: number;
}

/** Where one actor should run. */
export interface ActorPlan {
  app: string;
  actor: string;
  /** Instances wanted: `instances`, the number of matching hosts for a daemon, 0 if invalid. */
  wanted: number;
  /** Sorted by hostId; the counts sum to at most `wanted`. */
  placements: Placement[];
  /**
   * Set iff fewer instances are placed than wanted (a daemon: no host matches) or the want is
   * invalid: why, naming the spreads short, e.g. "spread 'east' (zone=east): no host matches".
   */
  waiting?: string;
}

/** Name of the implicit spread of a want that lists none. */
export const DEFAULT_SPREAD_NAME = 'default';

/**
 * Plans every actor of `wants` on `hosts`, one {@link ActorPlan} per want in their order.
 * `current` maps an actor name to its placements as last planned; hosts absent from `hosts` are
 * ignored. Never throws: an invalid want (instances not an integer >= 1, a weight not an
 * integer >= 0) gets no placements and a `waiting` reason.
 */
export function planActors(
  wants: readonly ActorWant[],
  hosts: readonly HostView[],
  current: ReadonlyMap<string, readonly Placement[]>,
): ActorPlan[] {
  const live = liveHosts(hosts);
  const load: Counts = new Map(live.map((h) => [h.hostId, 0]));
  const plans: ActorPlan[] = [];
  for (const want of Array.isArray(wants) ? wants : []) {
    if (typeof want !== 'object' || want === null) {
      plans.push({ app: '', actor: '', wanted: 0, placements: [], waiting: 'not an actor want' });
      continue;
    }
    plans.push(planActor(want, live, load, currentOf(current, want.actor, load)));
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------

/** hostId → instances. */
type Counts = Map<string, number>;

interface LiveHost {
  hostId: string;
  labels: Map<string, string>;
}

interface Spread {
  /** "spread 'east' (zone=east)", for `waiting`. */
  label: string;
  weight: number;
  /** Matching live hosts, by hostId. */
  hosts: string[];
}

/** What a mode placed; `load` is already updated. */
interface Placed {
  counts: Counts;
  short: string[];
}

const WCGI_ONCE = '(a wcgi actor runs at most once per host)';

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** Current hosts first, then the least loaded, then hostId. */
const preferring =
  (current: Counts, load: Counts) =>
  (a: string, b: string): number =>
    Number(current.has(b)) - Number(current.has(a)) ||
    (load.get(a) ?? 0) - (load.get(b) ?? 0) ||
    byId(a, b);

function liveHosts(hosts: readonly HostView[]): LiveHost[] {
  const byHost = new Map<string, { host: LiveHost; key: string }>();
  for (const h of Array.isArray(hosts) ? hosts : []) {
    if (!isRecord(h) || typeof h.hostId !== 'string') continue;
    const labels = new Map<string, string>();
    if (isRecord(h.labels)) {
      for (const [k, v] of Object.entries(h.labels)) if (typeof v === 'string') labels.set(k, v);
    }
    const key = JSON.stringify([...labels].sort(([a], [b]) => byId(a, b)));
    const seen = byHost.get(h.hostId);
    // Two views of one hostId: keep the same one whatever the order they come in.
    if (seen === undefined || key < seen.key) {
      byHost.set(h.hostId, { host: { hostId: h.hostId, labels }, key });
    }
  }
  return [...byHost.values()].map((e) => e.host).sort((a, b) => byId(a.hostId, b.hostId));
}

/** The actor's current instances on hosts that `live` has (duplicate entries add up). */
function currentOf(
  current: ReadonlyMap<string, readonly Placement[]>,
  actor: string,
  live: ReadonlyMap<string, unknown>,
): Counts {
  const out: Counts = new Map();
  const list: unknown = current instanceof Map ? current.get(actor) : undefined;
  if (!Array.isArray(list)) return out;
  for (const p of list as unknown[]) {
    if (!isRecord(p)) continue;
    const { hostId, count } = p;
    if (typeof hostId !== 'string' || !live.has(hostId)) continue;
    if (typeof count !== 'number' || !(count >= 1)) continue;
    out.set(hostId, Math.min(Number.MAX_SAFE_INTEGER, (out.get(hostId) ?? 0) + Math.floor(count)));
  }
  return out;
}

function parseSpreads(
  raw: unknown,
  hosts: readonly LiveHost[],
): { spreads: Spread[]; invalid?: string } {
  const list: unknown[] =
    Array.isArray(raw) && raw.length > 0 ? raw : [{ name: DEFAULT_SPREAD_NAME, requirements: {} }];
  const spreads: Spread[] = [];
  let invalid: string | undefined;
  for (const s of list) {
    const rec = isRecord(s) ? s : {};
    const name = typeof rec['name'] === 'string' ? rec['name'] : '';
    const reqs = isRecord(rec['requirements']) ? Object.entries(rec['requirements']) : [];
    const shown = reqs.map(([k, v]) => `${k}=${typeof v === 'string' ? v : '?'}`).join(', ');
    const weight = rec['weight'] === undefined ? 1 : rec['weight'];
    const valid = typeof weight === 'number' && Number.isSafeInteger(weight) && weight >= 0;
    if (!valid) invalid ??= `spread '${name}': weight must be an integer >= 0`;
    spreads.push({
      label: `spread '${name}'${shown === '' ? '' : ` (${shown})`}`,
      weight: valid ? weight : 0,
      hosts: hosts
        .filter((h) => reqs.every(([k, v]) => typeof v === 'string' && h.labels.get(k) === v))
        .map((h) => h.hostId),
    });
  }
  return invalid === undefined ? { spreads } : { spreads, invalid };
}

/** Largest-remainder split of `instances` by weight; undefined when every weight is 0. */
function shares(instances: number, spreads: readonly Spread[]): number[] | undefined {
  const total = spreads.reduce((t, s) => t + BigInt(s.weight), 0n);
  if (total === 0n) return undefined;
  // BigInt: instances * weight may pass 2^53.
  const scaled = spreads.map((s) => BigInt(instances) * BigInt(s.weight));
  const out = scaled.map((x) => Number(x / total));
  const rem = scaled.map((x) => x % total);
  let left = instances - sum(out);
  const byRemainder = spreads
    .map((_, i) => i)
    .filter((i) => spreads[i]!.weight > 0)
    .sort((a, b) => (rem[b]! > rem[a]! ? 1 : rem[b]! < rem[a]! ? -1 : a - b));
  for (const i of byRemainder) {
    if (left === 0) break;
    out[i]! += 1;
    left -= 1;
  }
  return out;
}

function planActor(
  want: ActorWant,
  hosts: readonly LiveHost[],
  load: Counts,
  current: Counts,
): ActorPlan {
  const { spreads, invalid } = parseSpreads(want.spread, hosts);
  const daemon = want.daemon === true;
  const instances = want.instances;
  const countable = Number.isSafeInteger(instances) && instances >= 1;
  const matched = new Set(spreads.flatMap((s) => s.hosts));
  const matching = daemon ? hosts.map((h) => h.hostId).filter((h) => matched.has(h)) : [];
  const head = { app: want.app, actor: want.actor };
  const wanted = daemon ? matching.length : countable ? instances : 0;
  const refused =
    !daemon && !countable
      ? 'instances must be an integer >= 1'
      : want.mode !== 'wcgi' && want.mode !== 'proxy'
        ? "mode must be 'wcgi' or 'proxy'"
        : invalid;
  if (refused !== undefined) return { ...head, wanted, placements: [], waiting: refused };

  let placed: Placed;
  if (daemon) {
    placed = { counts: new Map(matching.map((h) => [h, 1])), short: [] };
    for (const h of matching) load.set(h, (load.get(h) ?? 0) + 1);
    if (matching.length === 0) placed.short = spreads.map((s) => `${s.label}: no host matches`);
  } else {
    const share = shares(instances, spreads);
    if (share === undefined) {
      return { ...head, wanted, placements: [], waiting: 'every spread has weight 0' };
    }
    placed =
      want.mode === 'wcgi'
        ? placeWcgi(spreads, share, load, current)
        : placeProxy(spreads, share, load, current);
  }
  const placements = [...placed.counts]
    .filter(([, count]) => count > 0)
    .map(([hostId, count]) => ({ hostId, count }))
    .sort((a, b) => byId(a.hostId, b.hostId));
  const plan: ActorPlan = { ...head, wanted, placements };
  if (placed.short.length > 0) plan.waiting = placed.short.join('; ');
  return plan;
}

function placeWcgi(
  spreads: readonly Spread[],
  share: readonly number[],
  load: Counts,
  current: Counts,
): Placed {
  const total = sum(share);
  // host → the spreads with a share that it matches, in spread order
  const options = new Map<string, number[]>();
  spreads.forEach((s, i) => {
    if (share[i]! > 0) for (const h of s.hosts) options.set(h, [...(options.get(h) ?? []), i]);
  });

  // Greedy in order of preference, keeping a matching host → spread of the hosts taken.
  const seat = new Map<string, number>();
  const held = spreads.map(() => new Set<string>());
  const move = (h: string, i: number): void => {
    const from = seat.get(h);
    if (from !== undefined) held[from]!.delete(h);
    seat.set(h, i);
    held[i]!.add(h);
  };
  const place = (h: string, seen: Set<number>): boolean => {
    const mine = options.get(h) ?? [];
    for (const i of mine) {
      if (held[i]!.size < share[i]!) {
        move(h, i);
        return true;
      }
    }
    // Every spread of h is full: re-seat one of their hosts on another spread (augmenting path).
    for (const i of mine) {
      if (seen.has(i)) continue;
      seen.add(i);
      for (const other of held[i]!) {
        if (place(other, seen)) {
          move(h, i);
          return true;
        }
      }
    }
    return false;
  };
  for (const h of [...options.keys()].sort(preferring(current, load))) {
    if (seat.size === total) break;
    place(h, new Set());
  }

  const chosen = new Set(seat.keys());
  const counts: Counts = new Map();
  for (const h of chosen) {
    counts.set(h, 1);
    load.set(h, (load.get(h) ?? 0) + 1);
  }
  if (chosen.size === total) return { counts, short: [] };

  // Which spread is short depends on the matching; recompute it from the chosen set alone
  // (earlier spreads filled first) so that the same hosts always give the same `waiting`.
  const owner = new Map<string, number>();
  const got = spreads.map(() => 0);
  const mine = spreads.map((s) => s.hosts.filter((h) => chosen.has(h)));
  const cursor = spreads.map(() => 0);
  const claim = (i: number, seen: Set<string>): boolean => {
    const list = mine[i]!;
    // A host once owned stays owned, so the search for a free one resumes where it stopped.
    while (cursor[i]! < list.length && owner.has(list[cursor[i]!]!)) cursor[i]! += 1;
    const free = list[cursor[i]!];
    if (free !== undefined) {
      owner.set(free, i);
      got[i]! += 1;
      return true;
    }
    for (const h of list) {
      const j = owner.get(h)!;
      if (j === i || seen.has(h)) continue;
      seen.add(h);
      if (claim(j, seen)) {
        owner.set(h, i);
        got[j]! -= 1;
        got[i]! += 1;
        return true;
      }
    }
    return false;
  };
  const short: string[] = [];
  spreads.forEach((s, i) => {
    const want = share[i]!;
    // Each claim gives spread i one more host or fails for good (Kuhn's algorithm).
    while (got[i]! < want && claim(i, new Set())) continue;
    const have = got[i]!;
    if (have >= want) return;
    const match = s.hosts.length;
    if (match === 0) {
      short.push(`${s.label}: no host matches`);
      return;
    }
    // The set is maximal, so every host of a short spread is taken: by it or by another spread.
    const others = match - have;
    const hosts = `${want} host${want === 1 ? '' : 's'}, ${match} match${match === 1 ? 'es' : ''}`;
    const used = others > 0 ? `, ${others} of them used by other spreads` : '';
    short.push(`${s.label}: wants ${hosts}${used} ${WCGI_ONCE}`);
  });

  return { counts, short };
}

function placeProxy(
  spreads: readonly Spread[],
  share: readonly number[],
  load: Counts,
  current: Counts,
): Placed {
  const counts: Counts = new Map();
  const add = (h: string, n: number): void => {
    counts.set(h, (counts.get(h) ?? 0) + n);
    load.set(h, (load.get(h) ?? 0) + n);
  };
  const short: string[] = [];
  const extras: Extra[] = [];
  spreads.forEach((s, i) => {
    const c = share[i]!;
    if (c === 0) return;
    // The share is not moved to another spread: that spread's hosts were not asked for.
    if (s.hosts.length === 0) {
      short.push(`${s.label}: no host matches`);
      return;
    }
    const n = BigInt(s.hosts.length);
    const even = Number(BigInt(c) / n);
    if (even > 0) for (const h of s.hosts) add(h, even);
    const rest = Number(BigInt(c) % n);
    if (rest > 0) extras.push({ n: rest, hosts: s.hosts });
  });

  // A host keeps up to what it runs now beyond the even floor; the rest goes by preference.
  const room = (h: string): number => Math.max(0, (current.get(h) ?? 0) - (counts.get(h) ?? 0));
  const kept = keepCurrent(extras, room, load);
  for (const hosts of kept) for (const h of hosts) add(h, 1);
  const none: Counts = new Map();
  extras.forEach((e, k) => {
    const taken = kept[k]!;
    let left = e.n - taken.size;
    for (const h of e.hosts.filter((x) => !taken.has(x)).sort(preferring(none, load))) {
      if (left === 0) break;
      add(h, 1);
      left -= 1;
    }
  });
  return { counts, short };
}

/** `n` instances of one spread, at most one per host of `hosts`, beyond the even floor. */
interface Extra {
  n: number;
  hosts: string[];
}

interface Edge {
  to: number;
  cap: number;
  /** Index of the reverse edge in `graph[to]`. */
  rev: number;
}

/**
 * Max flow source → extra k (capacity n) → host (1 per extra and host) → sink (room(host)):
 * places as many extras as possible where they run now. Returns the hosts used per extra.
 */
function keepCurrent(
  extras: readonly Extra[],
  room: (h: string) => number,
  load: Counts,
): Set<string>[] {
  const kept = extras.map(() => new Set<string>());
  const hostIds = [...new Set(extras.flatMap((e) => e.hosts))].filter((h) => room(h) > 0);
  if (hostIds.length === 0) return kept;
  hostIds.sort(preferring(new Map(), load));
  const hostNode = new Map(hostIds.map((h, k) => [h, 1 + extras.length + k]));
  const sink = 1 + extras.length + hostIds.length;
  const graph: Edge[][] = Array.from({ length: sink + 1 }, () => []);
  const link = (from: number, to: number, cap: number): void => {
    graph[from]!.push({ to, cap, rev: graph[to]!.length });
    graph[to]!.push({ to: from, cap: 0, rev: graph[from]!.length - 1 });
  };
  extras.forEach((e, k) => {
    link(0, 1 + k, e.n);
    const mine = new Set(e.hosts);
    for (const h of hostIds) if (mine.has(h)) link(1 + k, hostNode.get(h)!, 1);
  });
  const toSink = new Map<number, number>();
  for (const h of hostIds) {
    const node = hostNode.get(h)!;
    toSink.set(node, graph[node]!.length);
    link(node, sink, room(h));
  }
  const push = (node: number, index: number): void => {
    const edge = graph[node]![index]!;
    edge.cap -= 1;
    graph[edge.to]![edge.rev]!.cap += 1;
  };

  // Direct paths first: most extras stay where they run, and each BFS below walks the graph.
  extras.forEach((_, k) => {
    const source = graph[0]![k]!;
    graph[1 + k]!.forEach((edge, index) => {
      if (source.cap === 0 || edge.to === 0 || edge.cap === 0) return;
      const out = toSink.get(edge.to)!;
      if (graph[edge.to]![out]!.cap === 0) return;
      push(0, k);
      push(1 + k, index);
      push(edge.to, out);
    });
  });

  // Then Edmonds–Karp; every path crosses a unit edge, so each augments by 1.
  for (;;) {
    const via: ({ node: number; edge: number } | undefined)[] = Array.from({ length: sink + 1 });
    const queue = [0];
    for (let q = 0; q < queue.length && via[sink] === undefined; q += 1) {
      const node = queue[q]!;
      graph[node]!.forEach((edge, index) => {
        if (edge.cap > 0 && edge.to !== 0 && via[edge.to] === undefined) {
          via[edge.to] = { node, edge: index };
          queue.push(edge.to);
        }
      });
    }
    if (via[sink] === undefined) break;
    for (let node = sink; node !== 0;) {
      const step = via[node]!;
      push(step.node, step.edge);
      node = step.node;
    }
  }
  extras.forEach((_, k) => {
    for (const edge of graph[1 + k]!) {
      const h = hostIds[edge.to - 1 - extras.length];
      if (h !== undefined && edge.to !== 0 && edge.cap === 0) kept[k]!.add(h);
    }
  });
  return kept;
}
