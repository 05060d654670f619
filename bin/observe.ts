/**
 * `weft logs` and `weft spy`: what hosts say about the actors they run (host/observe.ts), read over
 * NATS from every host of the lattice.
 *
 * - `weft logs APP [--actor A] [--tail N] [--follow] [--json]`: the output lines every host keeps
 *   of the app (the last 1 000 per host), oldest first; `--follow` then prints lines as hosts
 *   publish them, until Ctrl-C. A line seen both ways is printed once (host id and sequence).
 * - `weft spy ACTOR | APP/ACTOR [--count N] [--json]`: one line per invocation as hosts finish
 *   them, until Ctrl-C (or N lines). Hosts publish these only while a spy renews its interest.
 */
import type { Msg } from '@nats-io/transport-node';
import {
  AppStore,
  ErrorCode,
  LOG_HISTORY_MAX_RECORDS,
  SPY_RENEW_MS,
  SPY_TTL_MS,
  WeftError,
  assertName,
  connectLattice,
  decode,
  type DeployedApp,
  type LatticeClient,
  type LogBatch,
  type LogHistoryReply,
  type LogRecord,
  type NatsAuth,
  type SpyAck,
  type SpyEvent,
} from '../lattice/index.ts';

/** How long history requests and spy announcements wait for hosts' answers (ms). */
const GATHER_MS = 500;
/** Lines `weft logs` prints from history unless `--tail` says otherwise. */
const DEFAULT_TAIL = 100;

export interface ObserveTarget {
  nats: string[];
  lattice: string;
  auth: NatsAuth;
}

/** A usage mistake: the CLI prints it with exit code 2. */
export class ObserveUsageError extends Error {}

function write(line: string): void {
  process.stdout.write(`${line}\n`);
}

function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function connect(t: ObserveTarget): Promise<LatticeClient> {
  return connectLattice({ servers: t.nats, lattice: t.lattice, name: 'weft-cli', auth: t.auth });
}

/** Resolves on the first Ctrl-C or SIGTERM. */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

function names(app: DeployedApp): string {
  return app.actors.map((a) => a.name).join(', ');
}

/** One record as a person reads it: time, host, actor[instance], invocation, line. */
export function formatRecord(r: LogRecord): string {
  const instance = r.instance === undefined ? '' : `[${r.instance}]`;
  const stream = r.stream === 'stderr' ? '' : `(${r.stream}) `;
  return `${new Date(r.time).toISOString()} ${r.hostId} ${r.actor}${instance} ${r.invocationId ?? '-'} ${stream}${r.line}`;
}

/** One invocation as a person reads it: time, host, method, path, status, ms, invocation, trace. */
export function formatSpyEvent(e: SpyEvent): string {
  const target = e.query === '' ? e.path : `${e.path}?${e.query}`;
  const status = e.code === undefined ? String(e.status) : `${e.status} ${e.code}`;
  return `${new Date(e.time).toISOString()} ${e.hostId} ${e.method} ${target} ${status} ${e.durationMs.toFixed(1)}ms ${e.invocationId} trace=${e.traceId}`;
}

function byTime(a: LogRecord, b: LogRecord): number {
  return a.time - b.time || a.hostId.localeCompare(b.hostId) || a.seq - b.seq;
}

/** `weft logs APP`. Returns the exit code. */
export async function cmdLogs(
  t: ObserveTarget,
  positionals: string[],
  values: Record<string, unknown>,
): Promise<number> {
  const app = positionals[0];
  if (app === undefined || positionals.length > 1) {
    throw new ObserveUsageError('weft logs: expected APP (weft logs APP [--actor A] [--follow])');
  }
  assertName('app', app);
  const actor = values['actor'] === undefined ? undefined : String(values['actor']);
  if (actor !== undefined) assertName('actor', actor);
  const tail = values['tail'] === undefined ? DEFAULT_TAIL : Number(values['tail']);
  if (!Number.isInteger(tail) || tail < 0 || tail > LOG_HISTORY_MAX_RECORDS) {
    throw new ObserveUsageError(
      `weft logs: --tail expects a whole number from 0 to ${LOG_HISTORY_MAX_RECORDS}, got '${String(values['tail'])}'`,
    );
  }
  const follow = values['follow'] === true;
  const json = values['json'] === true;
  const print = (r: LogRecord): void => write(json ? JSON.stringify(r) : formatRecord(r));

  const client = await connect(t);
  try {
    const s = client.subjects;
    const deployed = await (await AppStore.open(client)).get(app);
    if (deployed !== undefined && actor !== undefined) {
      if (!deployed.actors.some((a) => a.name === actor)) {
        throw new WeftError(
          ErrorCode.ActorNotFound,
          `application '${app}' has no actor '${actor}' (its actors: ${names(deployed)})`,
        );
      }
    }
    // Subscribed before asking for the history, so that no line falls between the two.
    const seen = new Set<string>();
    const live: LogRecord[] = [];
    let historyDone = false;
    const onBatch = (msg: Msg): void => {
      let batch: LogBatch;
      try {
        batch = decode<LogBatch>(msg.data);
      } catch {
        return;
      }
      for (const r of batch.records ?? []) {
        if (historyDone) {
          if (!seen.has(`${r.hostId}:${r.seq}`)) print(r);
        } else live.push(r);
      }
    };
    const sub = follow
      ? client.nc.subscribe(s.logs(app, actor ?? '*'), {
          callback: (err, m) => {
            if (!err) onBatch(m);
          },
        })
      : undefined;
    const answers = await client.gather<LogHistoryReply>(
      s.logHistory(app),
      { ...(actor === undefined ? {} : { actor }), limit: tail },
      GATHER_MS,
    );
    const history = answers.flatMap((a) => a.records ?? []).sort(byTime);
    const shown = history.slice(Math.max(0, history.length - tail));
    if (deployed === undefined && history.length === 0) {
      sub?.unsubscribe();
      throw new WeftError(
        ErrorCode.AppNotFound,
        `no application named '${app}' is deployed, and no host keeps output of one (weft get apps lists them)`,
      );
    }
    for (const r of history) seen.add(`${r.hostId}:${r.seq}`);
    for (const r of shown) print(r);
    historyDone = true;
    for (const r of live.splice(0).sort(byTime)) {
      if (!seen.has(`${r.hostId}:${r.seq}`)) print(r);
    }
    if (!follow) {
      if (shown.length === 0) {
        note(
          `weft logs: no output of ${actor === undefined ? app : `${app}/${actor}`} kept by the ${answers.length} host(s) that answered`,
        );
      }
      return 0;
    }
    note(
      `following ${actor === undefined ? app : `${app}/${actor}`} on every host; Ctrl-C to stop`,
    );
    await interrupted();
    sub?.unsubscribe();
    return 0;
  } finally {
    await client.close();
  }
}

/** `weft spy ACTOR` / `weft spy APP/ACTOR`. Returns the exit code. */
export async function cmdSpy(
  t: ObserveTarget,
  positionals: string[],
  values: Record<string, unknown>,
): Promise<number> {
  const target = positionals[0];
  if (target === undefined || positionals.length > 1) {
    throw new ObserveUsageError('weft spy: expected ACTOR or APP/ACTOR');
  }
  const slash = target.indexOf('/');
  const appName = slash < 0 ? undefined : assertName('app', target.slice(0, slash));
  const actor = assertName('actor', slash < 0 ? target : target.slice(slash + 1));
  const count = values['count'] === undefined ? Infinity : Number(values['count']);
  if (count !== Infinity && (!Number.isInteger(count) || count < 1)) {
    throw new ObserveUsageError(
      `weft spy: --count expects a whole number of at least 1, got '${String(values['count'])}'`,
    );
  }
  const json = values['json'] === true;

  const client = await connect(t);
  let renew: NodeJS.Timeout | undefined;
  try {
    const s = client.subjects;
    const apps = await (await AppStore.open(client)).list();
    const owner = apps.find((a) => a.actors.some((x) => x.name === actor));
    if (appName !== undefined && owner?.name !== appName) {
      const app = apps.find((a) => a.name === appName);
      throw new WeftError(
        app === undefined ? ErrorCode.AppNotFound : ErrorCode.ActorNotFound,
        app === undefined
          ? `no application named '${appName}' is deployed (weft get apps lists them)`
          : `application '${appName}' has no actor '${actor}' (its actors: ${names(app)})`,
      );
    }
    if (owner === undefined) {
      throw new WeftError(
        ErrorCode.ActorNotFound,
        `no deployed application has an actor named '${actor}' (weft get actors lists them)`,
      );
    }
    let shown = 0;
    let finish: (() => void) | undefined;
    const enough = new Promise<void>((resolve) => (finish = resolve));
    const sub = client.nc.subscribe(s.spy(actor), {
      callback: (err, msg) => {
        if (err || shown >= count) return;
        let e: SpyEvent;
        try {
          e = decode<SpyEvent>(msg.data);
        } catch {
          return;
        }
        write(json ? JSON.stringify(e) : formatSpyEvent(e));
        if (++shown >= count) finish?.();
      },
    });
    const interest = { actor, ttlMs: SPY_TTL_MS };
    // A gather, the first time: every host has taken the interest once it answers.
    const acks = await client.gather<SpyAck>(s.spyInterest(), interest, GATHER_MS);
    renew = setInterval(() => client.publish(s.spyInterest(), interest), SPY_RENEW_MS);
    const running = acks.filter((a) => a.running).map((a) => a.hostId);
    note(
      running.length === 0
        ? `spying on ${owner.name}/${actor}: no host runs it now; waiting (Ctrl-C to stop)`
        : `spying on ${owner.name}/${actor} on ${running.length} host(s): ${running.sort().join(', ')} (Ctrl-C to stop)`,
    );
    await Promise.race([enough, interrupted()]);
    sub.unsubscribe();
    return 0;
  } finally {
    clearInterval(renew);
    await client.close();
  }
}
