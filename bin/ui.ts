/**
 * `weft ui`: the gateway's live dashboard on a port of its own, for a lattice whose gateways do
 * not serve it (`--no-dashboard`), or to see a lattice with credentials a gateway should not hold
 * (a gateway's NATS user may not read the applications: docs/security.md). It listens at once,
 * then connects to the lattice, retrying while NATS is unreachable; the page says so meanwhile.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import {
  ErrorCode,
  WeftError,
  connectLattice,
  redactServers,
  type LatticeClient,
  type NatsAuth,
} from '../lattice/index.ts';
import { DASHBOARD_PATH, Dashboard } from '../providers/http-gateway/index.ts';

export interface UiOptions {
  nats: string[];
  auth: NatsAuth;
  lattice: string;
  log: Logger;
  /** Listen address and port (0: a free one). */
  host: string;
  port: number;
  /** Delay between connection attempts while NATS is unreachable (ms). */
  retryMs?: number;
}

export interface UiServer {
  /** The dashboard's URL (`http://ADDR:PORT/_weft/`). */
  url: string;
  /** Resolves once connected to the lattice; rejects when NATS refuses the credentials. */
  connected: Promise<void>;
  stop(): Promise<void>;
}

/** Serve the dashboard of `opts.lattice` on `opts.host:opts.port`. */
export async function serveUi(opts: UiOptions): Promise<UiServer> {
  const log = opts.log.child({ component: 'ui' });
  const dashboard = new Dashboard({ log });
  const server: Server = createServer((req, res) => {
    if (dashboard.serves(req)) return dashboard.handle(req, res);
    if (req.url === '/' || req.url === '') {
      res.writeHead(308, { location: DASHBOARD_PATH, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    const body = JSON.stringify({
      statusCode: 404,
      code: ErrorCode.RouteNotFound,
      error: 'Not Found',
      message: `weft ui serves only the dashboard, at ${DASHBOARD_PATH}`,
    });
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}${DASHBOARD_PATH}`;
  log.info({ url, lattice: opts.lattice }, 'dashboard listening');

  const state = { stopped: false };
  let client: LatticeClient | undefined;
  const connected = (async () => {
    for (let attempt = 1; !state.stopped; attempt++) {
      try {
        client = await connectLattice({
          servers: opts.nats,
          lattice: opts.lattice,
          name: 'weft-ui',
          auth: opts.auth,
        });
        await dashboard.attach(client, { all: true });
        log.info(
          { nats: redactServers(opts.nats), lattice: opts.lattice },
          'dashboard connected to the lattice',
        );
        return;
      } catch (err) {
        const fatal =
          err instanceof WeftError &&
          (err.code === ErrorCode.Unauthorized || err.code === ErrorCode.BadRequest);
        log.error(
          { err: (err as Error).message, attempt },
          fatal
            ? `cannot join the lattice at ${redactServers(opts.nats)}`
            : `cannot reach the lattice at ${redactServers(opts.nats)}; retrying`,
        );
        await client?.close().catch(() => undefined);
        client = undefined;
        if (fatal) throw err;
        await new Promise((r) => setTimeout(r, opts.retryMs ?? 1_000));
      }
    }
  })();
  connected.catch(() => undefined);

  return {
    url,
    connected,
    async stop() {
      state.stopped = true;
      dashboard.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await client?.close();
    },
  };
}
