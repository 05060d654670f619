/**
 * An in-process lattice for integration tests: hosts and a gateway on the shared nats-server, in
 * a lattice of their own, and a client to deploy with.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { Host } from '../../host/index.ts';
import {
  connectLattice,
  deployApplication,
  parseManifest,
  type DeployedApp,
  appStatus,
  type LatticeClient,
} from '../../lattice/index.ts';
import { Gateway } from '../../providers/http-gateway/index.ts';
import { until } from './until.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ACTORS_DIST = join(ROOT, 'actors', 'dist');
export const FIXTURES_DIST = join(ROOT, 'test', 'fixtures', 'actors', 'dist');

export interface Stack {
  lattice: string;
  /** The NATS URLs, comma-separated (as the CLI's --nats takes them). */
  natsUrl: string;
  hosts: Host[];
  gateway: Gateway;
  client: LatticeClient;
  log: Logger;
  /** Write `yaml` to a temp dir and deploy it; waits until every actor runs on every host. */
  deploy(yaml: string, opts?: { dir?: string }): Promise<DeployedApp>;
  stop(): Promise<void>;
}

export function newLattice(): string {
  return `t-${randomUUID().slice(0, 8)}`;
}

export async function startStack(
  nats: string | string[],
  opts: { hosts?: number; log?: Logger; gateway?: boolean } = {},
): Promise<Stack> {
  const natsUrl = Array.isArray(nats) ? nats.join(',') : nats;
  const servers = natsUrl.split(',');
  const lattice = newLattice();
  const log = opts.log ?? pino({ level: 'silent' });
  const hosts: Host[] = [];
  for (let i = 0; i < (opts.hosts ?? 1); i++) {
    const h = new Host({ nats: servers, lattice, log, workers: 2, heartbeatMs: 500 });
    await h.start();
    hosts.push(h);
  }
  const gateway = new Gateway({ nats: servers, lattice, log, port: 0 });
  await gateway.start();
  await gateway.connected();
  const client = await connectLattice({ servers, lattice });
  return {
    lattice,
    natsUrl,
    hosts,
    gateway,
    client,
    log,
    async deploy(yaml, o = {}) {
      const dir = o.dir ?? (await mkdtemp(join(tmpdir(), 'weft-app-')));
      const file = join(dir, 'app.yaml');
      await writeFile(file, yaml);
      const app = await deployApplication(client, parseManifest(yaml, file), file);
      // Placed by the scheduler, and settled (running or failed) on every host placed.
      let last: unknown;
      await until(
        async () => {
          const st = await appStatus(client, app.name);
          last = st;
          return st.actors.every(
            (a) =>
              a.hosts.length > 0 &&
              a.hosts.every((h) => h.state === 'running' || h.state === 'failed'),
          );
        },
        { name: `actors of ${app.name} placed`, timeoutMs: 20_000 },
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; status: ${JSON.stringify(last)}`, {
          cause: err,
        });
      });
      await until(() => gatewayHasRoutes(gateway, app.name), {
        name: 'gateway routes',
        timeoutMs: 10_000,
      });
      return app;
    },
    async stop() {
      await gateway.stop();
      await Promise.all(hosts.map((h) => h.stop()));
      await client.close();
    },
  };
}

function gatewayHasRoutes(gateway: Gateway, app: string): boolean {
  return gateway.routes.entries().some((r) => r.app === app);
}

/** A one-actor manifest for a fixture or example module (absolute path). */
export function oneActorManifest(opts: {
  app?: string;
  actor: string;
  module: string;
  routes?: string[];
  limits?: Record<string, number>;
  extra?: string;
}): string {
  const routes = (opts.routes ?? [`/${opts.actor}/...`]).map((p) => `{ path: "${p}" }`).join(', ');
  const limits = opts.limits
    ? `\n      limits: { ${Object.entries(opts.limits)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')} }`
    : '';
  return `apiVersion: weft/v1
kind: Application
metadata: { name: ${opts.app ?? opts.actor}, version: 1.0.0 }
spec:
  actors:
    - name: ${opts.actor}
      module: ${opts.module}
      routes: [${routes}]${limits}${opts.extra ?? ''}
`;
}
