/**
 * A clustered lattice: three real nats-servers routed together, the lattice's buckets replicated
 * R3, host processes and a gateway given every URL. One server is killed under load: nothing
 * stored is lost, requests keep being served, and a deploy after the kill goes through.
 */
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startNatsCluster, type NatsClusterHandle } from '../../bin/nats-server.ts';
import { AppStore, ArtifactStore, type DeployedApp } from '../../lattice/index.ts';
import { startHostProcess, weft, type Service } from '../helpers/cli.ts';
import { ACTORS_DIST, oneActorManifest, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

let cluster: NatsClusterHandle;
let stack: Stack;
const hosts: Service[] = [];
let hello: DeployedApp;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  stack = await startStack(cluster.urls, { hosts: 0 });
  for (const id of ['C1', 'C2']) {
    hosts.push(await startHostProcess(stack.natsUrl, stack.lattice, id, ['--workers', '2']));
  }
  hello = await stack.deploy(
    oneActorManifest({
      actor: 'hello',
      module: join(ACTORS_DIST, 'hello.wasm'),
      extra: '\n      instances: 2',
    }),
  );
}, 60_000);

afterAll(async () => {
  for (const h of hosts) await h.stop('SIGKILL');
  await stack?.stop();
  await cluster?.stop();
});

it('replicates every bucket of the lattice on three servers', async () => {
  const jsm = await jetstreamManager(stack.client.nc);
  const names: string[] = [];
  for await (const si of jsm.streams.list()) {
    if (si.config.name.includes(stack.lattice)) names.push(si.config.name);
  }
  for (const kind of ['apps', 'routes', 'placements', 'tags', 'leases', 'artifacts']) {
    const name = names.find((n) => n.endsWith(`weft-${stack.lattice}-${kind}`));
    expect(name, `a stream for bucket ${kind} in ${names.join(', ')}`).toBeDefined();
    expect((await jsm.streams.info(name!)).config.num_replicas).toBe(3);
  }
});

it('keeps serving, and loses nothing, when a nats-server is killed under load', async () => {
  let served = 0;
  const failures: string[] = [];
  const load = { on: true };
  const loaders = Array.from({ length: 4 }, async (_, n) => {
    for (let i = 0; load.on; i++) {
      const res = await fetch(`${stack.gateway.url}/hello/?name=l${n}-${i}`).catch((e: Error) => e);
      if (res instanceof Error) failures.push(res.message);
      else {
        const text = await res.text();
        if (res.status === 200 && text === `Hello, l${n}-${i}!\n`) served++;
        else failures.push(`${res.status} ${text.slice(0, 200)}`);
      }
    }
  });
  await until(() => served > 50, { name: 'load running', timeoutMs: 15_000 });

  // Kill the server leading the applications' stream: its writes must move to a new leader.
  const jsm = await jetstreamManager(stack.client.nc);
  const info = await jsm.streams.info(`KV_weft-${stack.lattice}-apps`);
  const leader = info.cluster?.leader;
  expect(leader).toMatch(/^n[123]$/);
  const victim = cluster.servers[Number(leader!.slice(1)) - 1]!;
  await victim.kill();
  const before = served;
  await until(() => served > before + 200, {
    name: 'served after the kill',
    timeoutMs: 30_000,
  });
  load.on = false;
  await Promise.all(loaders);
  expect(failures).toEqual([]);

  // Nothing stored was lost: the application, its route and its module, read through the
  // servers left, from the CLI too.
  const live = cluster.servers.filter((s) => s !== victim).map((s) => s.url);
  const nats = ['--nats', live.join(','), '--lattice', stack.lattice];
  const apps = JSON.parse((await weft(['get', 'apps', '--json', ...nats])).stdout) as {
    name: string;
  }[];
  expect(apps.map((a) => a.name)).toEqual(['hello']);
  const routes = JSON.parse((await weft(['get', 'routes', '--json', ...nats])).stdout) as {
    path: string;
    actor: string;
  }[];
  expect(routes.map((r) => [r.path, r.actor])).toEqual([['/hello/...', 'hello']]);
  const artifacts = await ArtifactStore.open(stack.client);
  const digest = hello.actors[0]!.module;
  expect((await artifacts.get(digest)).length).toBeGreaterThan(0);
  expect((await (await AppStore.open(stack.client)).get('hello'))?.version).toBe('1.0.0');

  // Writes go to the new leaders: a new application (a new module pushed) is deployed and served.
  await stack.deploy(oneActorManifest({ actor: 'echo', module: join(ACTORS_DIST, 'echo.wasm') }));
  const res = await fetch(`${stack.gateway.url}/echo/`, { method: 'POST', body: 'after the kill' });
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('after the kill');
});
