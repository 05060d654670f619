/**
 * `weft run --serve`: one module served over HTTP on this machine, no NATS. The quickest way to
 * try a module before deploying it.
 *
 * A WCGI module gets the same executor as a host (worker threads, a fresh instance state per
 * request, timeouts and limits), the same CGI variables and response rules as the gateway, every
 * path routed to the module (SCRIPT_NAME is empty). A WASIX module (one importing `wasix_32v1`
 * or wasi-threads) runs as a proxy instance: it listens on its port 80, and every TCP connection
 * to the address served is relayed to that listener byte for byte, so HTTP is between the client
 * and the guest alone.
 */
import { createServer, type Server } from 'node:http';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { nuid } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  DEFAULT_LIMITS,
  checkModule,
  headerValue,
  normalizeRequestPath,
  readBody,
  readTreeEntries,
  replyError,
  requestHead,
  splitTarget,
  traceparentFor,
  writeResponse,
  type Limits,
  type ResolvedActor,
} from '../lattice/index.ts';
import { prepareModule, prepareSharedMemoryModule } from './actor/prepare-module.ts';
import { ProxyActor, type ProxyTree } from './actor/proxy-actor.ts';
import { WcgiActor } from './actor/wcgi-actor.ts';
import { WorkerPool } from './actor/worker-pool.ts';
import { socketsNeedWasix } from './run.ts';

/** The guest's port that `weft run --serve` relays connections to (proxy modules). */
const GUEST_PORT = 80;

export interface ServeOptions {
  /** Path of the module file. */
  module: string;
  host: string;
  port: number;
  args: string[];
  env: Record<string, string>;
  /** Host directories mounted read-only, as a snapshot taken at start. */
  dirs: { host: string; guest: string }[];
  /** Outbound socket grants for a WASIX module (`--allow-connect tcp://host:port`). */
  connect?: string[];
  limits?: Partial<Limits>;
  log: Logger;
  workers?: number;
}

export interface LocalServer {
  url: string;
  close(): Promise<void>;
}

/** Load the module, then listen; resolves once listening. Throws WEFT_ERR_MODULE_INVALID. */
export async function serveModule(opts: ServeOptions): Promise<LocalServer> {
  const bytes = await readFile(opts.module);
  const summary = await checkModule(bytes, opts.module);
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const name = basename(opts.module).replace(/\.wasm$/, '');
  const trees = [];
  for (const d of opts.dirs) {
    trees.push({ key: `dir:${d.host}`, guest: d.guest, entries: await readTreeEntries(d.host) });
  }
  const spec: ResolvedActor = {
    name,
    module: 'local',
    moduleRef: opts.module,
    mode: summary.wasix ? 'proxy' : 'wcgi',
    port: GUEST_PORT,
    instances: 1,
    daemon: false,
    args: opts.args,
    env: opts.env,
    files: [],
    limits,
    capabilities: opts.connect?.length ? { sockets: { connect: opts.connect } } : {},
    routes: [{ path: '/...', host: '*' }],
  };
  if (opts.connect?.length && !summary.wasix) throw socketsNeedWasix(opts.module);
  const log = opts.log.child({ component: 'run', actor: name });
  if (summary.wasix) return serveProxy(opts, bytes, spec, trees, log);
  const prepared = prepareModule(bytes, limits.memoryMiB, opts.module, '--memory-mib');
  const module = await WebAssembly.compile(prepared.bytes);
  const pool = new WorkerPool({ size: opts.workers ?? availableParallelism(), log });
  const actor = new WcgiActor({
    app: 'local',
    spec,
    module: {
      key: 'local',
      module,
      ...(prepared.memory ? { memory: prepared.memory } : {}),
      ...(prepared.reuse ? { reuse: prepared.reuse } : {}),
    },
    trees,
    pool,
    log,
  });
  const server: Server = createServer((req, res) => {
    const invocationId = nuid.next();
    void (async () => {
      try {
        const { path: rawPath, query } = splitTarget(req.url ?? '/');
        const path = normalizeRequestPath(rawPath);
        const traceparent = traceparentFor(headerValue(req, 'traceparent'));
        const body = await readBody(req, limits.maxRequestBytes);
        const head = requestHead(req, { path, query, routePrefix: '', traceparent });
        const deadline = Date.now() + limits.timeoutMs;
        const r = await actor.invoke(head, body, invocationId, deadline, traceparent);
        writeResponse(req, res, r.head, r.body, [['x-weft-invocation-id', invocationId]]);
      } catch (err) {
        const r = replyError(req, res, err, invocationId);
        log[r.statusCode >= 500 ? 'warn' : 'info'](
          { invocationId, code: r.error.code, err: r.error.message },
          'request failed',
        );
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  log.info({ url, module: opts.module }, 'serving');
  return {
    url,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await pool.close();
    },
  };
}

async function serveProxy(
  opts: ServeOptions,
  bytes: Uint8Array,
  spec: ResolvedActor,
  trees: ProxyTree[],
  log: Logger,
): Promise<LocalServer> {
  const prepared = prepareSharedMemoryModule(
    bytes,
    spec.limits.memoryMiB,
    opts.module,
    '--memory-mib',
  );
  const module = await WebAssembly.compile(prepared.bytes);
  const actor = new ProxyActor({
    app: 'local',
    spec,
    module: { key: 'local', module, memory: prepared.memory },
    trees,
    log,
    publish: { host: opts.host, port: opts.port },
  });
  let url = '';
  await actor.start((host, port) => {
    url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  });
  log.info({ url, module: opts.module, guestPort: GUEST_PORT }, 'serving');
  return {
    url,
    close: () => actor.stop(),
  };
}
