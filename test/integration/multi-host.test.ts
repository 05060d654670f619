/**
 * Hosts as separate processes: NATS spreads one actor's requests over both, and when one host is
 * killed with SIGKILL the other keeps serving.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { ACTORS_DIST, oneActorManifest, startStack, type Stack } from '../helpers/stack.ts';
import { startHostProcess, type Service } from '../helpers/cli.ts';
import { until } from '../helpers/until.ts';
import type { HostInventory } from '../../lattice/index.ts';

let stack: Stack;
const services: Service[] = [];

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { hosts: 0 });
  for (const id of ['HOSTA', 'HOSTB']) {
    services.push(await startHostProcess(stack.natsUrl, stack.lattice, id));
  }
  await stack.deploy(
    oneActorManifest({
      actor: 'hello',
      module: join(ACTORS_DIST, 'hello.wasm'),
      extra: '\n      instances: 2',
    }),
  );
  await until(
    async () => {
      const inv = await stack.client.gather<HostInventory>(
        stack.client.subjects.hostPing(),
        {},
        200,
      );
      return (
        inv.filter((h) => h.actors.some((a) => a.name === 'hello' && a.state === 'running'))
          .length === 2
      );
    },
    { name: 'hello on both hosts', timeoutMs: 20_000 },
  );
});

afterAll(async () => {
  for (const s of services) await s.stop('SIGKILL');
  await stack?.stop();
});

it('spreads requests over both hosts, and survives SIGKILL of one', async () => {
  const served = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const res = await fetch(`${stack.gateway.url}/hello/?name=n${i}`);
    expect(res.status).toBe(200);
    const h = res.headers.get('x-weft-host-id') ?? '?';
    served.set(h, (served.get(h) ?? 0) + 1);
  }
  expect([...served.keys()].sort()).toEqual(['HOSTA', 'HOSTB']);

  await services[0]!.stop('SIGKILL');
  // The dead host's subscriptions go with its connection; every later request is served by B.
  await until(
    async () => {
      const inv = await stack.client.gather<HostInventory>(
        stack.client.subjects.hostPing(),
        {},
        200,
      );
      return inv.length === 1;
    },
    { name: 'host A gone', timeoutMs: 10_000 },
  );
  for (let i = 0; i < 30; i++) {
    const res = await fetch(`${stack.gateway.url}/hello/?name=after${i}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-weft-host-id')).toBe('HOSTB');
    expect(await res.text()).toContain(`after${i}`);
  }
});
