/**
 * The scale-out part of `npm run bench` (bench/run.ts calls `scaleOut` last), in a nats-server and
 * lattice of its own so it cannot disturb the other rows:
 *   - throughput of the WCGI hello (`daemon: true`: one placement on every host) through one
 *     gateway with 1, 2 and 3 host processes, hosts added one at a time; WEFT_BENCH_SCALE_ROUNDS
 *     loads (default 3) per host count, the median kept;
 *   - failover: SIGKILL of the host running a one-instance actor, then the time until `appStatus`
 *     shows it running on another host and until the gateway first answers 200 on its route;
 *     WEFT_BENCH_FAILOVER_RUNS times (default 3), a replacement host started after each kill.
 * WEFT_BENCH_SCALE=0 skips it. It stops every process it started (by its PID) before it returns,
 * also on errors; an error is recorded in the results rather than thrown.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import {
  appStatus,
  connectLattice,
  deployApplication,
  parseManifest,
  schedulerLeader,
  type HostInventory,
  type LatticeClient,
} from '../lattice/index.ts';
import { startNatsServer, type NatsServerHandle } from '../bin/nats-server.ts';
import { Procs, log, sleep } from './procs.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WEFT = join(root, 'bin', 'weft.ts');
const HELLO_WASM = join(root, 'actors', 'dist', 'hello.wasm');
const ROUNDS = Number(process.env['WEFT_BENCH_SCALE_ROUNDS'] ?? 3);
const FAILOVER_RUNS = Number(process.env['WEFT_BENCH_FAILOVER_RUNS'] ?? 3);
const HOST_COUNTS = [1, 2, 3];
/** Every wait below (a host start, a placement, a failover) gives up after this long. */
const WAIT_MS = 30_000;
/** How often the failover loops look (ms). */
const POLL_MS = 20;
/** The inventory gather of each `appStatus` poll (ms): the resolution of the placement figure. */
const GATHER_MS = 100;
/** Failover probes of the route in flight at once (the gateway retries each while no host runs it). */
const PROBES = 16;

export interface ScaleRow {
  hosts: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** req/s of every load at this host count. */
  runs: number[];
  /** Distinct hosts that answered 30 requests after the loads (x-weft-host-id). */
  servedBy: number;
  note?: string;
}

export interface FailoverRun {
  killed: string;
  /** Whether the killed host held the scheduler lease (a new leader must take over first). */
  killedWasSchedulerLeader: boolean;
  /** SIGKILL → `appStatus` shows the actor running on another host (ms); null: not within 30 s. */
  runningElsewhereMs: number | null;
  /** SIGKILL → the gateway's first 200 on the actor's route (ms); null: not within 30 s. */
  first200Ms: number | null;
  /** The host that served that first 200. */
  servedBy?: string;
}

export type ScaleOutResult =
  | { skipped: string }
  | { error: string }
  | {
      cores: number;
      connections: number;
      seconds: number;
      rounds: number;
      throughput: ScaleRow[];
      failover: {
        heartbeatMs: number;
        deadAfterMs: number;
        runs: FailoverRun[];
        medianRunningElsewhereMs: number | null;
        medianFirst200Ms: number | null;
      };
      note: string;
    };

const median = (xs: number[]): number | null =>
  xs.length === 0 ? null : xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Poll `check` every POLL_MS until it returns a value, for at most WAIT_MS; throw on timeout. */
async function until<T>(name: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(POLL_MS);
  }
  throw new Error(
    `${name}: not within ${WAIT_MS} ms${last ? ` (${(last as Error).message})` : ''}`,
  );
}

/** The hosts on which `actor` of `app` is placed and running, from `appStatus`. */
async function runningOn(client: LatticeClient, app: string, actor: string): Promise<string[]> {
  const st = await appStatus(client, app, { gatherMs: GATHER_MS });
  const a = st.actors.find((x) => x.actor === actor);
  return (a?.hosts ?? []).filter((h) => h.placed > 0 && h.running > 0).map((h) => h.hostId);
}

async function deploy(client: LatticeClient, dir: string, name: string, actor: string) {
  const file = join(dir, `${name}.yaml`);
  const yaml = `apiVersion: weft/v1
kind: Application
metadata: { name: ${name}, version: 1.0.0 }
spec:
  actors:
    - ${actor.trim().replace(/\n/g, '\n      ')}
`;
  await writeFile(file, yaml);
  await deployApplication(client, parseManifest(yaml, file), file);
}

/** SIGKILL the host running `solo`, and time its move; then start a replacement host. */
async function failoverRun(
  client: LatticeClient,
  gatewayUrl: string,
  hosts: Map<string, ChildProcess>,
  startHost: () => Promise<void>,
): Promise<FailoverRun> {
  const url = `${gatewayUrl}/solo?name=bench`;
  const [victim] = await until('solo running on one host', async () => {
    const on = await runningOn(client, 'bench-solo', 'solo');
    if (on.length !== 1 || !hosts.has(on[0]!)) return undefined;
    const res = await fetch(url);
    await res.arrayBuffer();
    return res.status === 200 ? on : undefined;
  });
  const killed = victim!;
  const leader = await schedulerLeader(client);
  const child = hosts.get(killed)!;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const t0 = performance.now();
  child.kill('SIGKILL');
  hosts.delete(killed);
  const since = () => Math.round(performance.now() - t0);
  const deadline = Date.now() + WAIT_MS;

  // (a) the placement: appStatus shows it running on a host other than the killed one.
  const placed = (async (): Promise<number | null> => {
    while (Date.now() < deadline) {
      const on = await runningOn(client, 'bench-solo', 'solo').catch(() => []);
      if (on.some((h) => h !== killed)) return since();
      await sleep(POLL_MS);
    }
    return null;
  })();

  // (b) the route: probes started every POLL_MS, at most PROBES in flight (the gateway holds each
  // one while no host runs the actor, retrying), the first 200 to arrive wins.
  const stop = new AbortController();
  const won: { first?: { ms: number; host: string } } = {};
  let inFlight = 0;
  const probes: Promise<void>[] = [];
  const probe = async () => {
    inFlight++;
    try {
      const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(WAIT_MS)]);
      const res = await fetch(url, { signal });
      await res.arrayBuffer();
      if (res.status === 200 && won.first === undefined) {
        won.first = { ms: since(), host: res.headers.get('x-weft-host-id') ?? '?' };
      }
    } catch {
      // aborted, or the gateway gave up on this one: the next probe asks again.
    } finally {
      inFlight--;
    }
  };
  while (won.first === undefined && Date.now() < deadline) {
    if (inFlight < PROBES) probes.push(probe());
    await sleep(POLL_MS);
  }
  stop.abort();
  await Promise.all(probes);
  const runningElsewhereMs = await placed;
  await exited;

  await startHost();
  return {
    killed,
    killedWasSchedulerLeader: leader === killed,
    runningElsewhereMs,
    first200Ms: won.first?.ms ?? null,
    ...(won.first ? { servedBy: won.first.host } : {}),
  };
}

/** Run the scale-out part; `json` goes into latest.json as `scaleOut`, `lines` are printed. */
export async function scaleOut(opts: {
  connections: number;
  seconds: number;
}): Promise<{ json: ScaleOutResult; lines: string[] }> {
  if (process.env['WEFT_BENCH_SCALE'] === '0') {
    log('scale-out: skipped (WEFT_BENCH_SCALE=0)');
    return {
      json: { skipped: 'WEFT_BENCH_SCALE=0' },
      lines: ['scale-out              skipped (WEFT_BENCH_SCALE=0)'],
    };
  }
  const { connections, seconds } = opts;
  const cores = availableParallelism();
  const procs = new Procs();
  let nats: NatsServerHandle | undefined;
  let client: LatticeClient | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'weft-bench-scale-'));
  try {
    nats = await startNatsServer();
    const lattice = `scale${Date.now().toString(36)}`;
    const common = ['--nats', nats.url, '--lattice', lattice];
    // Info level for the ready lines ("host started", the gateway's url); neither role logs
    // anything per request at that level.
    const hosts = new Map<string, ChildProcess>();
    let nextId = 1;
    const startHost = async () => {
      const id = `scale-${nextId++}`;
      const { child } = await procs.start(
        process.execPath,
        [WEFT, 'host', ...common, '--host-id', id, '--log-level', 'info'],
        /"host started"/,
        WAIT_MS,
      );
      hosts.set(id, child);
    };
    const gm = await procs.start(
      process.execPath,
      [WEFT, 'gateway', ...common, '--log-level', 'info', '--listen', '127.0.0.1:0'],
      /"url":"(http:\/\/[^"]+)"/,
      WAIT_MS,
    );
    const gatewayUrl = gm.m[1]!;
    client = await connectLattice({ servers: nats.url, lattice });
    const c = client;

    // Throughput: hosts added one at a time under the one daemon actor.
    log(`scale-out: throughput with ${HOST_COUNTS.join(', ')} hosts, ${ROUNDS} loads each`);
    await startHost();
    await deploy(
      c,
      dir,
      'bench-scale',
      `name: hello
module: ${HELLO_WASM}
daemon: true
routes: [{ path: /hello }]`,
    );
    const url = `${gatewayUrl}/hello?name=bench`;
    const throughput: ScaleRow[] = [];
    for (const n of HOST_COUNTS) {
      while (hosts.size < n) await startHost();
      await until(`hello running on ${n} hosts`, async () =>
        (await runningOn(c, 'bench-scale', 'hello')).length === n ? true : undefined,
      );
      await until('the gateway routes /hello', async () => {
        const res = await fetch(url);
        await res.arrayBuffer();
        return res.status === 200 ? true : undefined;
      });
      await autocannon({ url, connections, duration: 1 }); // warm up the new host
      const runs: { rps: number; p50Ms: number; p99Ms: number; bad: number; total: number }[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const r = await autocannon({ url, connections, duration: seconds });
        runs.push({
          rps: Math.round(r.requests.average),
          p50Ms: r.latency.p50,
          p99Ms: r.latency.p99,
          bad: r.non2xx + r.errors + r.timeouts,
          total: r.requests.total,
        });
        const x = runs.at(-1)!;
        log(`  ${n} host(s): ${x.rps} req/s, p50 ${x.p50Ms} ms, p99 ${x.p99Ms} ms`);
      }
      const served = new Set<string>();
      for (let i = 0; i < 30; i++) {
        const res = await fetch(url);
        await res.arrayBuffer();
        served.add(res.headers.get('x-weft-host-id') ?? '?');
      }
      const mid = runs.toSorted((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!;
      const bad = runs.reduce((s, r) => s + r.bad, 0);
      const total = runs.reduce((s, r) => s + r.total, 0);
      throughput.push({
        hosts: n,
        rps: mid.rps,
        p50Ms: mid.p50Ms,
        p99Ms: mid.p99Ms,
        runs: runs.map((r) => r.rps),
        servedBy: served.size,
        ...(bad > 0 ? { note: `${bad} non-2xx/errors/timeouts of ${total}` } : {}),
      });
    }

    // Failover: a one-instance actor of its own, its host killed, a replacement started after.
    const inv = await c.gather<HostInventory>(c.subjects.hostPing(), {}, 300);
    const heartbeatMs = inv[0]?.heartbeatMs ?? NaN;
    log(`scale-out: failover, ${FAILOVER_RUNS} SIGKILLs (heartbeat ${heartbeatMs} ms)`);
    await deploy(
      c,
      dir,
      'bench-solo',
      `name: solo
module: ${HELLO_WASM}
instances: 1
routes: [{ path: /solo }]`,
    );
    const runs: FailoverRun[] = [];
    for (let i = 0; i < FAILOVER_RUNS; i++) {
      const r = await failoverRun(c, gatewayUrl, hosts, startHost);
      log(`  ${JSON.stringify(r)}`);
      runs.push(r);
    }
    const ok = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);

    const note =
      cores <= 2
        ? `this machine has ${cores} cores, shared by every host process, the gateway, nats-server ` +
          'and the load generator: more hosts add overhead here, not capacity, so the rows show ' +
          'the cost of spreading requests over host processes, not the gain of scaling out (any ' +
          "rise is one host process's own bottleneck relieved, not new cores)"
        : `this machine has ${cores} cores, shared by every host process, the gateway, nats-server ` +
          'and the load generator: the rows show spreading over host processes on one machine, ' +
          'not hosts on machines of their own';
    const json: ScaleOutResult = {
      cores,
      connections,
      seconds,
      rounds: ROUNDS,
      throughput,
      failover: {
        heartbeatMs,
        deadAfterMs: 3 * heartbeatMs,
        runs,
        medianRunningElsewhereMs: median(ok(runs.map((r) => r.runningElsewhereMs))),
        medianFirst200Ms: median(ok(runs.map((r) => r.first200Ms))),
      },
      note,
    };
    return { json, lines: format(json) };
  } catch (err) {
    const msg = (err as Error).message.slice(0, 500);
    log(`scale-out failed: ${msg}`);
    return { json: { error: msg }, lines: [`scale-out              failed: ${msg}`] };
  } finally {
    await client?.close().catch(() => undefined);
    await procs.stopAll();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function format(r: ScaleOutResult): string[] {
  if (!('throughput' in r)) return [];
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  const f = r.failover;
  const ms = (x: number | null) => (x === null ? 'none in 30 s' : `${x}`);
  const all = (xs: (number | null)[]) => xs.map((x) => x ?? '-').join(', ');
  return [
    `scale-out: WCGI /hello, daemon (one placement per host), one gateway; median of ${r.rounds}`,
    `${pad('hosts', 24)}${pad('req/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}note`,
    ...r.throughput.map(
      (t) =>
        `${pad(t.hosts, 24)}${pad(t.rps, 10)}${pad(t.p50Ms, 9)}${pad(t.p99Ms, 9)}` +
        `runs ${t.runs.join(', ')}; served by ${t.servedBy} host(s)${t.note ? `; ${t.note}` : ''}`,
    ),
    `note: ${r.note}.`,
    `failover: SIGKILL of the host running a one-instance actor (/solo), ${f.runs.length} runs;`,
    `  heartbeat ${f.heartbeatMs} ms (the CLI default), a host is dead after 3 missed = ${f.deadAfterMs} ms`,
    `  kill -> running elsewhere  ${ms(f.medianRunningElsewhereMs)} ms median   (${all(f.runs.map((x) => x.runningElsewhereMs))}; appStatus, ${GATHER_MS} ms gather per look)`,
    `  kill -> first 200          ${ms(f.medianFirst200Ms)} ms median   (${all(f.runs.map((x) => x.first200Ms))})`,
    `  killed hosts that held the scheduler lease: ${f.runs.filter((x) => x.killedWasSchedulerLeader).length} of ${f.runs.length}`,
  ];
}
