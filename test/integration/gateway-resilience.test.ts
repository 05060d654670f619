/**
 * The gateway when the lattice is not there: NATS down at start (clear error, reconnects when it
 * comes up), and routes whose actor no host runs (503 with a code).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { expect, inject, it } from 'vitest';
import { Host } from '../../host/index.ts';
import {
  RouteStore,
  connectLattice,
  deployApplication,
  parseManifest,
} from '../../lattice/index.ts';
import { freePort } from '../../bin/nats-server.ts';
import { Gateway } from '../../providers/http-gateway/index.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { ACTORS_DIST, newLattice, oneActorManifest, startStack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';
import { captureLogs } from '../helpers/log-capture.ts';

it('answers 503 with a code when no host runs the routed actor', async () => {
  const stack = await startStack(inject('natsUrl'), { hosts: 0 });
  try {
    // A route exists but nothing runs the actor.
    await (
      await RouteStore.open(stack.client)
    ).put('orphan', [
      {
        app: 'orphan',
        actor: 'nobody',
        host: '*',
        path: '/orphan/...',
        limits: { maxRequestBytes: 1024, maxResponseBytes: 1024, timeoutMs: 2000 },
      },
    ]);
    await until(() => stack.gateway.routes.match('x', '/orphan/a'), { name: 'route' });
    const res = await fetch(`${stack.gateway.url}/orphan/a`);
    expect(res.status).toBe(503);
    const j = (await res.json()) as { code: string; message: string };
    expect(j.code).toBe('WEFT_ERR_NO_HOST');
    expect(j.message).toContain('nobody');
  } finally {
    await stack.stop();
  }
});

it('starts while NATS is down, says so, and connects when it comes up', async () => {
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const { log, lines } = captureLogs();
  const lattice = newLattice();
  const gateway = new Gateway({
    nats: url,
    lattice,
    log,
    port: 0,
    retryMs: 200,
  });
  await gateway.start();
  let server: Awaited<ReturnType<typeof startNatsServer>> | undefined;
  let host: Host | undefined;
  try {
    const res = await fetch(`${gateway.url}/hello`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('WEFT_ERR_LATTICE_UNAVAILABLE');
    await until(() => lines.some((l) => String(l['msg']).includes('cannot reach the lattice')), {
      name: 'error logged',
    });

    server = await startNatsServer({ port });
    await until(() => gateway.ready, { name: 'gateway connected', timeoutMs: 15_000 });
    host = new Host({ nats: url, lattice, log: pino({ level: 'silent' }), workers: 1 });
    await host.start();
    const client = await connectLattice({ servers: url, lattice });
    const yaml = oneActorManifest({
      actor: 'hello',
      module: join(ACTORS_DIST, 'hello.wasm'),
      routes: ['/hello'],
    });
    await deployApplication(
      client,
      parseManifest(yaml, 'inline.yaml'),
      join(ACTORS_DIST, 'app.yaml'),
    );
    await client.close();
    await until(async () => (await fetch(`${gateway.url}/hello?name=back`)).status === 200, {
      name: 'served after NATS came up',
      timeoutMs: 15_000,
    });

    // NATS goes away under a running gateway and host: 503 at once, then service resumes.
    await server.stop({ keepDir: true });
    await until(
      async () => {
        const r = await fetch(`${gateway.url}/hello?name=down`);
        return (
          r.status === 503 &&
          ((await r.json()) as { code: string }).code === 'WEFT_ERR_LATTICE_UNAVAILABLE'
        );
      },
      { name: '503 while NATS is down', timeoutMs: 15_000 },
    );
    server = await startNatsServer({ port, dir: server.dir });
    await until(async () => (await fetch(`${gateway.url}/hello?name=again`)).status === 200, {
      name: 'served after NATS restarted',
      timeoutMs: 20_000,
    });
  } finally {
    await gateway.stop();
    await host?.stop();
    await server?.stop();
    // The restarted server was given the first one's directory, which it does not remove.
    if (server) await rm(server.dir, { recursive: true, force: true });
  }
});
