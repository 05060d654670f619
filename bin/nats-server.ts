/**
 * Starts a real nats-server with JetStream on 127.0.0.1 (`weft up` and the tests use it): writes a
 * config into a state directory, waits for the ports file and a TCP connect, and stops only the
 * process it started, by its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';

export interface NatsServerHandle {
  url: string;
  port: number;
  pid: number;
  dir: string;
  /** SIGTERM, then SIGKILL after 5 s; removes a temporary state directory unless `keepDir`. */
  stop(opts?: { keepDir?: boolean }): Promise<void>;
  /** SIGKILL at once (crash tests). */
  kill(): Promise<void>;
}

export interface NatsServerOptions {
  /** Port to listen on; -1 (default) picks a free one. */
  port?: number;
  /** State directory (kept); default a new temporary one (removed on stop). */
  dir?: string;
  /** Binary (default NATS_SERVER_BIN or `nats-server` on PATH). */
  bin?: string;
  /** Cluster membership: this server's name, the cluster's name, its route port and its peers'. */
  cluster?: { serverName: string; name: string; routePort: number; peerPorts: number[] };
  /** More configuration appended as is: `authorization { … }`, `tls { … }` (docs/security.md). */
  config?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The nats-server binary: NATS_SERVER_BIN, else the first on PATH or in the sbin folders, which
 * Debian's package uses and a non-login PATH may lack.
 */
export function natsServerBin(): string {
  const explicit = process.env['NATS_SERVER_BIN'];
  if (explicit) return explicit;
  const dirs = [
    ...(process.env['PATH'] ?? '').split(delimiter),
    '/usr/sbin',
    '/usr/local/sbin',
    '/sbin',
  ];
  for (const d of dirs) {
    if (d && existsSync(join(d, 'nats-server'))) return join(d, 'nats-server');
  }
  return 'nats-server';
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = opts.bin ?? natsServerBin();
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'weft-nats-')));
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'nats.conf');
  await writeFile(
    conf,
    [
      `host: "127.0.0.1"`,
      `port: ${opts.port ?? -1}`,
      `http: "127.0.0.1:-1"`,
      `ports_file_dir: "${dir}"`,
      `jetstream: { store_dir: "${join(dir, 'js')}" }`,
      ...(opts.cluster === undefined
        ? []
        : [
            `server_name: "${opts.cluster.serverName}"`,
            `cluster: {`,
            `  name: "${opts.cluster.name}"`,
            `  listen: "127.0.0.1:${opts.cluster.routePort}"`,
            `  routes: [${opts.cluster.peerPorts.map((p) => `"nats://127.0.0.1:${p}"`).join(', ')}]`,
            `}`,
          ]),
      ...(opts.config === undefined ? [] : [opts.config]),
    ].join('\n'),
  );
  for (const f of await readdir(dir)) if (f.endsWith('.ports')) await rm(join(dir, f));
  const child: ChildProcess = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  const deadline = Date.now() + 15_000;
  let port = 0;
  while (port === 0) {
    if (spawnError) {
      throw new Error(
        `cannot start ${bin}: ${spawnError.message}. Install it (apt-get install -y nats-server) or set NATS_SERVER_BIN`,
      );
    }
    if (child.exitCode !== null) throw new Error(`nats-server exited: ${stderr.trim()}`);
    if (Date.now() > deadline)
      throw new Error(`nats-server did not write its ports file in ${dir}`);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.ports'));
    // The file may be seen before nats-server has finished writing it: read it again then.
    const text = files.length > 0 ? await readFile(join(dir, files[0]!), 'utf8') : '';
    let ports: { nats?: string[] } | undefined;
    try {
      ports = text === '' ? undefined : (JSON.parse(text) as { nats?: string[] });
    } catch {
      ports = undefined;
    }
    if (ports?.nats?.[0] !== undefined) port = Number(new URL(ports.nats[0]).port);
    else await sleep(20);
  }
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port }, () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline)
      throw new Error(`nats-server does not accept connections on ${port}`);
    await sleep(20);
  }
  const pid = child.pid!;
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid,
    dir,
    async stop(o) {
      await signal('SIGTERM');
      if (!o?.keepDir && opts.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
    kill: () => signal('SIGKILL'),
  };
}

/** True when nothing listens on 127.0.0.1:port. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => {
      s.end();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

export interface NatsClusterHandle {
  /** Every member's client URL: give them all to hosts, gateways and the CLI. */
  urls: string[];
  servers: NatsServerHandle[];
  stop(opts?: { keepDir?: boolean }): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released): nothing listens on it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A local cluster of `size` nats-servers with JetStream (`weft up --cluster 3`, the tests): each
 * routes to the others, and the lattice's buckets are replicated across them (see stores.ts).
 * `dir`: the members' state directories go in `dir/n1`…; default temporary ones. Resolves once
 * every member accepts connections; JetStream may still be electing its leader (the stores
 * retry).
 */
export async function startNatsCluster(
  size: number,
  opts: { dir?: string; name?: string; bin?: string } = {},
): Promise<NatsClusterHandle> {
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await freePort());
  const servers: NatsServerHandle[] = [];
  try {
    for (let i = 0; i < size; i++) {
      servers.push(
        await startNatsServer({
          ...(opts.dir === undefined ? {} : { dir: join(opts.dir, `n${i + 1}`) }),
          ...(opts.bin === undefined ? {} : { bin: opts.bin }),
          cluster: {
            serverName: `n${i + 1}`,
            name: opts.name ?? 'weft',
            routePort: routePorts[i]!,
            peerPorts: routePorts.filter((_, j) => j !== i),
          },
        }),
      );
    }
  } catch (err) {
    await Promise.allSettled(servers.map((s) => s.stop()));
    throw err;
  }
  return {
    urls: servers.map((s) => s.url),
    servers,
    async stop(o) {
      await Promise.allSettled(servers.map((s) => s.stop(o)));
    },
  };
}
