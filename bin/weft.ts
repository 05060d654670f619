/**
 * The weft CLI and composition root: flags and WEFT_* environment → options → host, gateway, or a
 * command that talks to the lattice over NATS.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { nuid } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import { Host, runCommand, serveModule } from '../host/index.ts';
import {
  AppStore,
  ArtifactStore,
  ErrorCode,
  RouteStore,
  WeftError,
  connectLattice,
  deployApplication,
  invoke,
  parseManifest,
  manifestWarnings,
  type Manifest,
  pushModuleFile,
  undeployApplication,
  rollbackApplication,
  type HostInventory,
  appStatus,
  type AppStatus,
  type LatticeClient,
  type HeaderPair,
  type NatsAuth,
  redactServers,
  assertIssuerKey,
  parseAllowEntry,
} from '../lattice/index.ts';
import { Gateway } from '../providers/http-gateway/index.ts';
import {
  portIsFree,
  startNatsCluster,
  startNatsServer,
  type NatsClusterHandle,
  type NatsServerHandle,
} from './nats-server.ts';
import { inspectFile, keysNew, signFile } from './sign.ts';
import {
  loadSecretsSeed,
  localSecretsKey,
  publishLocalSecretsKey,
  secretCommand,
  secretUsage,
} from './secrets.ts';
import { serveUi } from './ui.ts';
import {
  commandHelp,
  findCommand,
  globalParseOptions,
  mainHelp,
  optionsOf,
  wantsHelp,
} from './commands.ts';
import { SHELLS, completionScript, type Shell } from './completion.ts';
import { ObserveUsageError, cmdLogs, cmdSpy } from './observe.ts';
import { setupTracing } from './tracing.ts';
import { nextStep, unknownCommand, usageHint } from './hints.ts';
import { Progress, type ProgressUnit } from './progress.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const DEFAULT_NATS = 'nats://127.0.0.1:4222';

// The commands, their options and help are in bin/commands.ts: add a new command's entry there.
const HELP = mainHelp();

type Opts = ParseArgsConfig['options'];
const GLOBAL: NonNullable<Opts> = globalParseOptions();

function parse(args: string[], options: NonNullable<Opts>) {
  return parseArgs({
    args,
    options: { ...GLOBAL, ...options },
    allowPositionals: true,
    strict: true,
  });
}

interface Common {
  nats: string[];
  lattice: string;
  log: Logger;
  /** NATS credentials and TLS from the flags and WEFT_* variables; never logged. */
  auth: NatsAuth;
}

/** `--flag`, else `WEFT_FLAG` (empty means unset). */
function flagOrEnv(values: Record<string, unknown>, flag: string): string | undefined {
  const v = values[flag] ?? env[`WEFT_${flag.toUpperCase().replaceAll('-', '_')}`];
  return v === undefined || v === '' ? undefined : String(v);
}

function natsAuth(values: Record<string, unknown>): NatsAuth {
  const get = (flag: string) => flagOrEnv(values, flag);
  const [user, pass, token, creds, nkeySeed] = ['user', 'password', 'token', 'creds', 'nkey'].map(
    get,
  );
  const [ca, cert, key] = ['tls-ca', 'tls-cert', 'tls-key'].map(get);
  if ((user === undefined) !== (pass === undefined)) {
    throw new UsageError('--user and --password go together (env WEFT_USER, WEFT_PASSWORD)');
  }
  return {
    ...(user === undefined ? {} : { user }),
    ...(pass === undefined ? {} : { pass }),
    ...(token === undefined ? {} : { token }),
    ...(creds === undefined ? {} : { creds }),
    ...(nkeySeed === undefined ? {} : { nkeySeed }),
    ...((ca ?? cert ?? key)
      ? {
          tls: {
            ...(ca === undefined ? {} : { ca }),
            ...(cert === undefined ? {} : { cert }),
            ...(key === undefined ? {} : { key }),
          },
        }
      : {}),
  };
}

function common(values: Record<string, unknown>, service: boolean): Common {
  const nats = String(values['nats'] ?? (env['WEFT_NATS_URL'] || DEFAULT_NATS))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const lattice = String(values['lattice'] ?? env['WEFT_LATTICE'] ?? 'default');
  const level = String(values['log-level'] ?? env['WEFT_LOG_LEVEL'] ?? (service ? 'info' : 'warn'));
  const log = service ? pino({ level }) : pino({ level }, pino.destination(2));
  return { nats, lattice, log, auth: natsAuth(values) };
}

async function withClient<T>(c: Common, fn: (client: LatticeClient) => Promise<T>): Promise<T> {
  const client = await connectLattice({
    servers: c.nats,
    lattice: c.lattice,
    name: 'weft-cli',
    auth: c.auth,
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

function table(rows: Record<string, string | number>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const widths = columns.map((c) =>
    Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((s, i) => s.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    line(columns.map((c) => c.toUpperCase())),
    ...rows.map((r) => line(columns.map((c) => String(r[c] ?? '')))),
  ].join('\n');
}

/** Print a manifest's warnings on stderr (they do not stop a deploy). */
function warnAbout(m: Manifest): void {
  for (const w of manifestWarnings(m)) process.stderr.write(`weft: warning: ${w}\n`);
}

function print(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/** The progress line: drawn on a terminal, else only with --progress (or WEFT_PROGRESS=1). */
let bar = new Progress();

function progress(step: string, done?: number, total?: number, unit?: ProgressUnit): void {
  bar.update(step, done, total, unit);
}

function endProgress(): void {
  bar.end();
}

/** On SIGINT or SIGTERM: `stop`, then exit 0 (a long-running command's end). */
function stopOnSignals(stop: () => Promise<unknown>): void {
  const end = (): void => void stop().finally(() => process.exit(0));
  process.once('SIGINT', end);
  process.once('SIGTERM', end);
}

/** `--progress`: show progress even when stderr is not a terminal. */
function progressFlag(values: Record<string, unknown>): void {
  if (values['progress'] === true) bar = new Progress({ forced: true });
}

/** Poll the application's status until every actor runs as wanted, or the deadline. */
async function waitForApp(
  client: LatticeClient,
  name: string,
  timeoutMs: number,
): Promise<AppStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await appStatus(client, name);
    const running = st.actors.reduce((n, a) => n + Math.min(a.running, a.wanted), 0);
    const wanted = st.actors.reduce((n, a) => n + a.wanted, 0);
    progress(`${st.state}: instances running`, running, wanted, 'instances');
    if (st.state === 'running' || st.state === 'failed' || Date.now() > deadline) return st;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What is wrong with each actor that is not running as wanted, one line each. */
function statusProblems(st: AppStatus): string[] {
  return st.actors
    .filter((a) => a.running < a.wanted || a.waiting !== undefined || a.error !== undefined)
    .map(
      (a) =>
        `${a.actor}: ${a.running} of ${a.wanted} running${a.waiting ? `; waiting: ${a.waiting}` : ''}${a.error ? `; error: ${a.error}` : ''}`,
    );
}

async function cmdDeploy(c: Common, file: string, wait: boolean): Promise<void> {
  const path = resolve(file);
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new WeftError(
      ErrorCode.ManifestInvalid,
      `cannot read manifest ${file}: ${err.code ?? err.message}`,
    );
  });
  const manifest = parseManifest(text, file);
  warnAbout(manifest);
  await withClient(c, async (client) => {
    const t0 = performance.now();
    const app = await deployApplication(client, manifest, path, (e) =>
      progress(e.step, e.sent, e.total),
    );
    endProgress();
    print(`deployed ${app.name}@${app.version}: ${app.actors.map((a) => a.name).join(', ')}`);
    if (wait) await reportReady(client, app.name, t0);
  });
}

/** Wait for `name` to run as wanted and say so, or fail with what is wrong. */
async function reportReady(client: LatticeClient, name: string, t0: number): Promise<void> {
  const st = await waitForApp(client, name, 30_000);
  endProgress();
  if (st.state === 'running') {
    print(`ready in ${Math.round(performance.now() - t0)} ms`);
    return;
  }
  throw new WeftError(
    ErrorCode.NoHost,
    `${name} is ${st.state}, not every actor is running:\n  ${statusProblems(st).join('\n  ')}\n(see weft status ${name}, weft get hosts)`,
  );
}

async function cmdGet(c: Common, what: string | undefined, json: boolean): Promise<void> {
  await withClient(c, async (client) => {
    let rows: Record<string, string | number>[];
    let data: unknown;
    let columns: string[];
    switch (what) {
      case 'hosts': {
        const hosts = await client.gather<HostInventory>(client.subjects.hostPing(), {});
        data = hosts;
        rows = hosts.map((h) => ({
          id: h.hostId,
          labels: Object.entries(h.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
          state: h.draining === true ? 'draining' : 'ready',
          uptime: `${Math.round(h.uptimeMs / 1000)}s`,
          actors: h.actors.length,
          workers: h.workers,
          inflight: h.actors.reduce((n, a) => n + a.inFlight, 0),
          invocations: h.actors.reduce((n, a) => n + a.invocations, 0),
        }));
        columns = [
          'id',
          'labels',
          'state',
          'uptime',
          'actors',
          'workers',
          'inflight',
          'invocations',
        ];
        break;
      }
      case 'apps': {
        const apps = await (await AppStore.open(client)).list();
        data = apps;
        rows = apps.map((a) => ({
          name: a.name,
          version: a.version,
          actors: a.actors.length,
          deployed: a.deployedAt,
        }));
        columns = ['name', 'version', 'actors', 'deployed'];
        break;
      }
      case 'actors': {
        const hosts = await client.gather<HostInventory>(client.subjects.hostPing(), {});
        const list = hosts.flatMap((h) => h.actors.map((a) => ({ ...a, hostId: h.hostId })));
        data = list;
        rows = list.map((a) => ({
          actor: a.name,
          app: a.app,
          host: a.hostId,
          mode: a.mode,
          state: a.state + (a.error ? ` (${a.error})` : ''),
          invocations: a.invocations,
          errors: a.errors,
          module: a.module.slice(0, 19),
        }));
        columns = ['actor', 'app', 'host', 'mode', 'state', 'invocations', 'errors', 'module'];
        break;
      }
      case 'routes': {
        const routes = await (await RouteStore.open(client)).list();
        data = routes;
        rows = routes.map((r) => ({
          host: r.host,
          path: r.path,
          app: r.app,
          actor: r.actor,
          timeout: `${r.limits.timeoutMs}ms`,
        }));
        columns = ['host', 'path', 'app', 'actor', 'timeout'];
        break;
      }
      default:
        throw new UsageError(
          `weft get: expected hosts, apps, actors or routes, got '${what ?? ''}'`,
        );
    }
    print(json ? JSON.stringify(data, null, 2) : table(rows, columns));
  });
}

async function cmdCall(c: Common, actor: string, v: Record<string, unknown>): Promise<number> {
  const method = String(v['method'] ?? (v['data'] !== undefined ? 'POST' : 'GET')).toUpperCase();
  const target = String(v['path'] ?? '/');
  const q = target.indexOf('?');
  const headers: HeaderPair[] = ((v['header'] as string[] | undefined) ?? []).map((h) => {
    const i = h.indexOf(':');
    if (i <= 0) throw new UsageError(`weft call: header '${h}' is not 'Name: value'`);
    return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
  });
  let body: Uint8Array = new Uint8Array(0);
  const data = v['data'] as string | undefined;
  if (data !== undefined)
    body = data.startsWith('@') ? await readFile(data.slice(1)) : new TextEncoder().encode(data);
  return withClient(c, async (client) => {
    const r = await invoke(
      client,
      {
        invocationId: nuid.next(),
        actor,
        head: {
          method,
          path: q < 0 ? target : target.slice(0, q),
          query: q < 0 ? '' : target.slice(q + 1),
          headers,
          routePrefix: '',
          remoteAddr: '127.0.0.1',
          remotePort: 0,
          scheme: 'http',
          serverName: 'weft-call',
          serverPort: 0,
          protocol: 'HTTP/1.1',
        },
      },
      body,
      { timeoutMs: Number(v['timeout'] ?? 30_000), maxResponseBytes: 1024 * 1024 * 1024 },
    );
    const reply = r.reply;
    if (v['include']) {
      process.stdout.write(
        `HTTP/1.1 ${reply.head.status}\n${reply.head.headers.map(([k, val]) => `${k}: ${val}`).join('\n')}\n\n`,
      );
    }
    // A streamed body is written as it arrives.
    if (r.stream === undefined) process.stdout.write(r.body);
    else for await (const piece of r.stream) process.stdout.write(piece);
    return reply.head.status >= 400 ? 1 : 0;
  });
}

async function cmdUp(c: Common, v: Record<string, unknown>): Promise<void> {
  let nats: NatsServerHandle | NatsClusterHandle | undefined;
  let urls = c.nats;
  const clusterSize = v['cluster'] === undefined ? 0 : Number(v['cluster']);
  if (v['cluster'] !== undefined && ![3, 5].includes(clusterSize)) {
    throw new UsageError(
      `weft up: --cluster takes 3 or 5 (servers), got '${String(v['cluster'])}'`,
    );
  }
  if (clusterSize > 0 && (v['nats'] !== undefined || env['WEFT_NATS_URL'])) {
    throw new UsageError('weft up: --cluster starts its own servers; leave out --nats');
  }
  // A local lattice gets a secrets key of its own, so that `weft secret put` just works.
  const secretsKey = await localSecretsKey(flagOrEnv(v, 'secrets-key'), join(root, '.weft'));
  if (clusterSize > 0) {
    nats = await startNatsCluster(clusterSize, {
      dir: join(root, '.weft', `nats-cluster-${clusterSize}`),
    });
    urls = nats.urls;
    c.log.info(
      { urls, natsPids: nats.servers.map((s) => s.pid) },
      `nats-server cluster of ${clusterSize} started (buckets replicated R3)`,
    );
  } else if (v['nats'] === undefined && !env['WEFT_NATS_URL']) {
    const port = (await portIsFree(4222)) ? 4222 : -1;
    const one = await startNatsServer({
      port,
      dir: join(root, '.weft', `nats-${port === -1 ? 'any' : port}`),
    });
    nats = one;
    urls = [one.url];
    c.log.info({ url: one.url, natsPid: one.pid }, 'nats-server started');
  }
  // The host's metrics and health: 9464 (Prometheus exporters' usual port) when free.
  const metrics = metricsListen(v) ?? {
    host: '127.0.0.1',
    port: (await portIsFree(9464)) ? 9464 : 0,
  };
  const host = new Host({
    metrics,
    nats: urls,
    auth: c.auth,
    lattice: c.lattice,
    log: c.log,
    secretsKey,
    environment: env,
  });
  const httpPort = Number(v['http-port'] ?? env['WEFT_HTTP_PORT'] ?? 8080);
  const gateway = new Gateway({
    nats: urls,
    auth: c.auth,
    lattice: c.lattice,
    log: c.log,
    port: httpPort,
  });
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    c.log.info({ signal: sig }, 'stopping');
    await gateway.stop().catch(() => undefined);
    await host.stop().catch(() => undefined);
    await nats?.stop({ keepDir: true });
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  try {
    await host.start();
    await gateway.start();
    await gateway.connected();
    const manifestFile = join(root, 'actors', 'app.yaml');
    const manifest = parseManifest(await readFile(manifestFile, 'utf8'), manifestFile);
    await withClient({ ...c, nats: urls }, async (client) => {
      await publishLocalSecretsKey(client, secretsKey, c.log);
      const app = await deployApplication(client, manifest, manifestFile);
      const st = await waitForApp(client, app.name, 30_000);
      endProgress();
      if (st.state !== 'running')
        throw new WeftError(
          ErrorCode.NoHost,
          `example application is ${st.state}: ${statusProblems(st).join('; ')}`,
        );
    });
    await new Promise((r) => setTimeout(r, 100));
    print(
      [
        '',
        `weft is up (lattice "${c.lattice}")`,
        `  HTTP  ${gateway.url}/   try ${gateway.url}/hello?name=you`,
        `  dashboard  ${gateway.url}/_weft/`,
        `  metrics  host ${host.metricsUrl}/metrics   gateway ${gateway.url}/_weft/metrics`,
        `  health   host ${host.metricsUrl}/readyz    gateway ${gateway.url}/_weft/readyz (and /livez)`,
        `  NATS  ${redactServers(urls).replaceAll(', ', ',')}${nats ? '' : ' (external)'}`,
        `  weft get hosts${urls.join(',') === DEFAULT_NATS ? '' : ` --nats ${redactServers(urls).replaceAll(', ', ',')}`}`,
        'Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
  } catch (err) {
    await stop('error');
    throw err;
  }
}

class UsageError extends Error {}

interface RunArgs {
  module: string;
  guestArgs: string[];
  env: Record<string, string>;
  dirs: { host: string; guest: string }[];
  serve: boolean;
  listen: string;
  memoryMiB: number | undefined;
  /** `--allow-connect` entries: outbound sockets a WASIX module may open. */
  connect: string[];
}

/**
 * `weft run` flags come before the module; everything after it (or after `--`) is the guest's
 * argv, as with `wasmtime run`.
 */
function parseRunArgs(argv: string[]): RunArgs {
  const out: RunArgs = {
    module: '',
    guestArgs: [],
    env: {},
    dirs: [],
    serve: false,
    listen: '127.0.0.1:8000',
    memoryMiB: undefined,
    connect: [],
  };
  let i = 0;
  const value = (flag: string): string => {
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`weft run: ${flag} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    const [flag, inline] =
      a.includes('=') && a.startsWith('--')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const v = () => inline ?? value(flag);
    switch (flag) {
      case '--dir': {
        const d = v();
        const sep = d.indexOf('::');
        out.dirs.push(
          sep < 0 ? { host: d, guest: d } : { host: d.slice(0, sep), guest: d.slice(sep + 2) },
        );
        break;
      }
      case '--env': {
        const e = v();
        const eq = e.indexOf('=');
        if (eq <= 0) throw new UsageError(`weft run: --env expects K=V, got '${e}'`);
        out.env[e.slice(0, eq)] = e.slice(eq + 1);
        break;
      }
      case '--serve':
        out.serve = true;
        break;
      case '--listen':
        out.listen = v();
        break;
      case '--memory-mib': {
        const m = Number(v());
        if (!Number.isInteger(m) || m < 1 || m > 4096) {
          throw new UsageError(
            'weft run: --memory-mib expects a whole number of MiB from 1 to 4096',
          );
        }
        out.memoryMiB = m;
        break;
      }
      case '--allow-connect': {
        const entry = v();
        try {
          parseAllowEntry(entry);
        } catch (err) {
          throw new UsageError(`weft run: --allow-connect: ${(err as Error).message}`, {
            cause: err,
          });
        }
        out.connect.push(entry);
        break;
      }
      case '--log-level':
        v();
        break;
      default:
        throw new UsageError(`weft run: unknown option ${flag}`);
    }
  }
  const module = argv[i];
  if (!module) throw new UsageError('weft run: expected MODULE.wasm');
  out.module = module;
  out.guestArgs = argv.slice(i + 1);
  if (out.guestArgs[0] === '--') out.guestArgs.shift();
  return out;
}

/** `--metrics ADDR:PORT` (env WEFT_METRICS): where to serve /metrics, /livez and /readyz. */
function metricsListen(
  values: Record<string, unknown>,
): { host: string; port: number } | undefined {
  const value = flagOrEnv(values, 'metrics');
  if (value === undefined) return undefined;
  try {
    return splitListen(value);
  } catch (err) {
    throw new UsageError(`--metrics expects ADDR:PORT, got '${value}'`, { cause: err });
  }
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`--listen expects ADDR:PORT, got '${listen}'`);
  }
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1', port };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    // `weft help CMD` is `weft CMD --help`.
    const about = cmd === 'help' && rest[0] !== undefined ? commandHelp(rest[0]) : undefined;
    if (cmd === 'help' && rest[0] !== undefined && about === undefined) {
      throw new UsageError(unknownCommand(rest[0]));
    }
    print(about ?? HELP);
    return cmd ? 0 : 2;
  }
  if (findCommand(cmd) !== undefined && wantsHelp(cmd, rest)) {
    print(commandHelp(cmd)!);
    return 0;
  }
  switch (cmd) {
    case 'up': {
      const { values } = parse(rest, optionsOf('up'));
      const c = common(values, true);
      await setupTracing('weft', env, c.log);
      await cmdUp(c, values);
      return -1;
    }
    case 'run': {
      const r = parseRunArgs(rest);
      if (r.serve) {
        const log = pino({ level: env['WEFT_LOG_LEVEL'] ?? 'info' });
        const { host, port } = splitListen(r.listen);
        const server = await serveModule({
          module: r.module,
          host,
          port,
          args: r.guestArgs,
          env: r.env,
          dirs: r.dirs,
          connect: r.connect,
          log,
          ...(r.memoryMiB === undefined ? {} : { limits: { memoryMiB: r.memoryMiB } }),
        });
        print(`serving ${r.module} at ${server.url}/`);
        stopOnSignals(() => server.close());
        return -1;
      }
      return runCommand({
        module: r.module,
        args: r.guestArgs,
        env: r.env,
        dirs: r.dirs,
        connect: r.connect,
        ...(r.memoryMiB === undefined ? {} : { memoryMiB: r.memoryMiB }),
      });
    }
    case 'host': {
      const { values } = parse(rest, optionsOf('host'));
      const c = common(values, true);
      const trustedIssuers = (
        (values['trusted-issuer'] as string[] | undefined) ??
        env['WEFT_TRUSTED_ISSUERS']?.split(',') ??
        []
      )
        .map((k) => k.trim())
        .filter(Boolean);
      for (const k of trustedIssuers) {
        try {
          assertIssuerKey(k);
        } catch (err) {
          throw new UsageError(`--trusted-issuer: ${(err as Error).message}`);
        }
      }
      const labels: Record<string, string> = {};
      for (const l of (values.label as string[] | undefined) ??
        env['WEFT_LABEL']?.split(',') ??
        []) {
        const i = l.indexOf('=');
        if (i <= 0) throw new UsageError(`--label expects k=v, got '${l}'`);
        labels[l.slice(0, i)] = l.slice(i + 1);
      }
      const workers = values.workers ?? env['WEFT_WORKERS'];
      const secretsFlag = flagOrEnv(values, 'secrets-key');
      const secretsKey = secretsFlag === undefined ? undefined : await loadSecretsSeed(secretsFlag);
      const beat = values['heartbeat-ms'] ?? env['WEFT_HEARTBEAT_MS'];
      if (beat !== undefined && !(Number.isInteger(Number(beat)) && Number(beat) >= 100)) {
        throw new UsageError(`--heartbeat-ms expects an integer >= 100, got '${beat}'`);
      }
      const metrics = metricsListen(values);
      const host = new Host({
        ...(metrics === undefined ? {} : { metrics }),
        nats: c.nats,
        auth: c.auth,
        lattice: c.lattice,
        log: c.log,
        labels,
        ...(beat === undefined ? {} : { heartbeatMs: Number(beat) }),
        ...(values['no-scheduler'] === true ? { scheduler: false } : {}),
        ...(trustedIssuers.length === 0 ? {} : { trustedIssuers }),
        ...(secretsKey === undefined ? {} : { secretsKey }),
        environment: env,
        ...(workers === undefined ? {} : { workers: Number(workers) }),
        ...((values['host-id'] ?? env['WEFT_HOST_ID']) === undefined
          ? {}
          : { hostId: String(values['host-id'] ?? env['WEFT_HOST_ID']) }),
      });
      const tracing = await setupTracing('weft-host', env, c.log);
      await host.start();
      stopOnSignals(async () => {
        await host.stop();
        await tracing?.shutdown();
      });
      return -1;
    }
    case 'gateway': {
      const { values } = parse(rest, optionsOf('gateway'));
      const c = common(values, true);
      const { host, port } = splitListen(
        String(values.listen ?? env['WEFT_LISTEN'] ?? '127.0.0.1:8080'),
      );
      const metrics = metricsListen(values);
      const gateway = new Gateway({
        ...(metrics === undefined ? {} : { metrics }),
        nats: c.nats,
        auth: c.auth,
        lattice: c.lattice,
        log: c.log,
        host,
        port,
        dashboard:
          values['no-dashboard'] !== true && !/^(1|true)$/.test(env['WEFT_NO_DASHBOARD'] ?? ''),
      });
      const tracing = await setupTracing('weft-gateway', env, c.log);
      await gateway.start();
      // Refused credentials do not get better with retries: say why and exit.
      gateway.connected().catch(async (err: unknown) => {
        await gateway.stop().catch(() => undefined);
        const code = err instanceof WeftError ? `\n  (${err.code})` : '';
        process.stderr.write(`weft: ${(err as Error).message}${code}\n`);
        process.exit(1);
      });
      stopOnSignals(async () => {
        await gateway.stop();
        await tracing?.shutdown();
      });
      return -1;
    }
    case 'ui': {
      const { values } = parse(rest, optionsOf('ui'));
      const c = common(values, true);
      const { host, port } = splitListen(
        String(values.listen ?? env['WEFT_LISTEN'] ?? '127.0.0.1:8090'),
      );
      const ui = await serveUi({
        nats: c.nats,
        auth: c.auth,
        lattice: c.lattice,
        log: c.log,
        host,
        port,
      });
      process.stderr.write(`weft: dashboard of lattice ${c.lattice} at ${ui.url}\n`);
      ui.connected.catch((err: unknown) => {
        const code = err instanceof WeftError ? `\n  (${err.code})` : '';
        process.stderr.write(`weft: ${(err as Error).message}${code}\n`);
        void ui.stop().finally(() => process.exit(1));
      });
      stopOnSignals(() => ui.stop());
      return -1;
    }
    case 'push': {
      const { values, positionals } = parse(rest, optionsOf('push'));
      const file = positionals[0];
      if (!file) throw new UsageError('weft push: expected FILE.wasm');
      progressFlag(values);
      const c = common(values, false);
      await withClient(c, async (client) => {
        const artifacts = await ArtifactStore.open(client);
        const digest = await pushModuleFile(artifacts, file, (sent, total) =>
          progress(`pushing ${file}`, sent, total),
        );
        endProgress();
        const tag = values['tag'] as string | undefined;
        if (tag) await artifacts.tag(tag, digest);
        print(tag ? `${digest} (tagged ${tag})` : digest);
      });
      return 0;
    }
    case 'deploy': {
      const { values, positionals } = parse(rest, optionsOf('deploy'));
      if (!positionals[0])
        throw new UsageError('weft deploy: expected FILE.yaml, or NAME --version V');
      if (values['wait'] === true && values['no-wait'] === true) {
        throw new UsageError('weft deploy: --wait and --no-wait cannot both be given');
      }
      progressFlag(values);
      const c = common(values, false);
      if (values.version === undefined) {
        await cmdDeploy(c, positionals[0], !values['no-wait']);
        return 0;
      }
      const name = positionals[0];
      const version = String(values.version);
      await withClient(c, async (client) => {
        const t0 = performance.now();
        const app = await rollbackApplication(client, name, version);
        print(`deployed ${app.name}@${app.version} again (from its history)`);
        if (values['no-wait'] === true) return;
        await reportReady(client, app.name, t0);
      });
      return 0;
    }
    case 'undeploy': {
      const { values, positionals } = parse(rest, optionsOf('undeploy'));
      if (!positionals[0]) throw new UsageError('weft undeploy: expected NAME');
      await withClient(common(values, false), (client) =>
        undeployApplication(client, positionals[0]!),
      );
      print(`undeployed ${positionals[0]}`);
      return 0;
    }
    case 'app': {
      const { values, positionals } = parse(rest, optionsOf('app'));
      if (positionals[0] === 'history' && positionals[1]) {
        const name = positionals[1];
        const history = await withClient(common(values, false), async (client) =>
          (await AppStore.open(client)).history(name),
        );
        if (history.length === 0) {
          throw new WeftError(ErrorCode.AppNotFound, `no application named '${name}' was deployed`);
        }
        const current = history.at(-1)!.revision;
        if (values.json === true) print(JSON.stringify(history, null, 2));
        else {
          const rows = history.map((h) => ({
            revision: `${h.revision}${h.revision === current ? ' *' : ''}`,
            version: h.app?.version ?? '(undeployed)',
            at: h.at.toISOString(),
            actors: h.app?.actors.map((a) => `${a.name}=${a.module.slice(7, 19)}`).join(' ') ?? '',
          }));
          print(table(rows, ['revision', 'version', 'at', 'actors']));
        }
        return 0;
      }
      if (positionals[0] !== 'validate' || !positionals[1])
        throw new UsageError('weft app validate FILE.yaml | weft app history NAME [--json]');
      const file = positionals[1];
      const m = parseManifest(await readFile(file, 'utf8'), file);
      warnAbout(m);
      print(
        `${file}: valid (${m.metadata.name}@${m.metadata.version}, ${m.spec.actors.length} actor(s))`,
      );
      return 0;
    }
    case 'status': {
      const { values, positionals } = parse(rest, optionsOf('status'));
      if (!positionals[0]) throw new UsageError('weft status: expected NAME');
      const st = await withClient(common(values, false), (client) =>
        appStatus(client, positionals[0]!),
      );
      if (values.json === true) print(JSON.stringify(st, null, 2));
      else {
        print(`${st.app}@${st.version}: ${st.state}`);
        const rows = st.actors.map((a) => ({
          actor: a.actor,
          mode: a.mode,
          running: `${a.running}/${a.wanted}`,
          hosts: a.hosts.map((h) => `${h.hostId}:${h.running}/${h.placed}`).join(' ') || '-',
          problem: a.waiting ?? a.error ?? '',
        }));
        print(table(rows, ['actor', 'mode', 'running', 'hosts', 'problem']));
      }
      return st.state === 'running' ? 0 : 1;
    }
    case 'secret': {
      const { positionals, values } = parse(rest, optionsOf('secret'));
      const usage = secretUsage(positionals, values);
      if (usage !== undefined) throw new UsageError(usage);
      const out = await withClient(common(values, false), (client) =>
        secretCommand(client, positionals, values),
      );
      process.stdout.write(out);
      return 0;
    }
    case 'keys': {
      const { positionals, values } = parse(rest, optionsOf('keys'));
      if (positionals[0] !== 'new') throw new UsageError('weft keys new [--out FILE]');
      process.stdout.write(await keysNew(values.out as string | undefined));
      return 0;
    }
    case 'sign': {
      const { values, positionals } = parse(rest, optionsOf('sign'));
      const issuer = (values.issuer as string | undefined) ?? env['WEFT_ISSUER'];
      if (!positionals[0] || !issuer || !values.name) {
        throw new UsageError(
          'weft sign MODULE --issuer SEED_OR_FILE --name N [--expires 30d|SECONDS] [-o OUT.wasm]',
        );
      }
      process.stdout.write(
        await signFile(positionals[0], {
          issuer,
          name: String(values.name),
          ...(values.expires === undefined ? {} : { expires: String(values.expires) }),
          ...(values.out === undefined ? {} : { out: String(values.out) }),
        }),
      );
      return 0;
    }
    case 'inspect': {
      const { values, positionals } = parse(rest, optionsOf('inspect'));
      if (!positionals[0]) throw new UsageError('weft inspect MODULE [--json]');
      const r = await inspectFile(positionals[0], values.json === true);
      process.stdout.write(r.output);
      return r.code;
    }
    case 'get': {
      const { values, positionals } = parse(rest, optionsOf('get'));
      const kinds = findCommand('get')!.words!;
      if (!kinds.includes(positionals[0] ?? '')) {
        throw new UsageError(
          `weft get: expected ${kinds.join(', ')}, got '${positionals[0] ?? ''}'`,
        );
      }
      await cmdGet(common(values, false), positionals[0], values.json === true);
      return 0;
    }
    case 'logs':
    case 'spy': {
      const { values, positionals } = parse(rest, optionsOf(cmd));
      const run = cmd === 'logs' ? cmdLogs : cmdSpy;
      return run(common(values, false), positionals, values).catch((err: unknown) => {
        throw err instanceof ObserveUsageError ? new UsageError(err.message) : err;
      });
    }
    case 'call': {
      const { values, positionals } = parse(rest, optionsOf('call'));
      if (!positionals[0]) throw new UsageError('weft call: expected ACTOR');
      return cmdCall(common(values, false), positionals[0], values as Record<string, unknown>);
    }
    case 'completion': {
      const { positionals } = parse(rest, optionsOf('completion'));
      const shell = positionals[0];
      if (!SHELLS.includes(shell as Shell)) {
        throw new UsageError(
          `weft completion: expected ${SHELLS.join(' or ')}, got '${shell ?? ''}'\n  \`weft completion --help\` says where to put the script`,
        );
      }
      process.stdout.write(completionScript(shell as Shell));
      return 0;
    }
    default:
      throw new UsageError(unknownCommand(cmd));
  }
}

try {
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exit(code);
} catch (err) {
  const cmd = process.argv[2];
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`${usageHint((err as Error).message, code, cmd)}\n`);
    process.exit(2);
  }
  if (err instanceof UsageError) {
    const m = err.message.startsWith('weft ') ? err.message : `weft: ${err.message}`;
    const help = cmd !== undefined && findCommand(cmd) !== undefined && !m.includes('\n');
    process.stderr.write(`${m}\n${help ? `  \`weft ${cmd} --help\` shows its usage\n` : ''}`);
    process.exit(2);
  }
  if (err instanceof WeftError) {
    const next = nextStep(err, cmd);
    process.stderr.write(`weft: ${err.message}\n  (${err.code})\n${next ? `  ${next}\n` : ''}`);
    process.exit(1);
  }
  // A file named on the command line that cannot be read: say which, without a stack.
  const sys = err as NodeJS.ErrnoException;
  if (
    typeof sys.path === 'string' &&
    ['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR'].includes(String(code))
  ) {
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'not a file';
    process.stderr.write(`weft: cannot read ${sys.path}: ${why}\n`);
    process.exit(1);
  }
  process.stderr.write(`weft: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
