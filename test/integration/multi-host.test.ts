/**
 * Hosts as separate processes: NATS spreads one actor's requests over both, and when one host is
 * killed with SIGKILL the other keeps serving; the requests in flight on the dead host fail over
 * (idempotent ones are sent again, the others get 502 WEFT_ERR_HOST_LOST).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import {
  ACTORS_DIST,
  FIXTURES_DIST,
  oneActorManifest,
  startStack,
  type Stack,
} from '../helpers/stack.ts';
import { startHostProcess, type Service } from '../helpers/cli.ts';
import { until } from '../helpers/until.ts';
import type { HostInventory } from '../../lattice/index.ts';

let stack: Stack;
const services: Service[] = [];

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { hosts: 0 });
  for (const id of ['HOSTA', 'HOSTB']) {
    // Workers enough for every slow request at once; quick heartbeats so a death is seen soon.
    const more = ['--heartbeat-ms', '500', '--workers', '8'];
    services.push(await startHostProcess(stack.natsUrl, stack.lattice, id, more));
  }
  await stack.deploy(
    oneActorManifest({
      actor: 'hello',
      module: join(ACTORS_DIST, 'hello.wasm'),
      extra: '\n      instances: 2',
    }),
  );
  await stack.deploy(
    oneActorManifest({
      actor: 'slow',
      module: join(FIXTURES_DIST, 'slow.wasm'),
      // Without failover a request lost with its host would end as a 504 at this timeout.
      limits: { timeoutMs: 15_000, maxConcurrency: 16 },
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
      const on = (name: string) =>
        inv.filter((h) => h.actors.some((a) => a.name === name && a.state === 'running')).length;
      return on('hello') === 2 && on('slow') === 2;
    },
    { name: 'hello and slow on both hosts', timeoutMs: 20_000 },
  );
});

afterAll(async () => {
  for (const s of services) await s.stop('SIGKILL');
  await stack?.stop();
});

const slowInFlight = async (): Promise<Record<string, number>> => {
  const inv = await stack.client.gather<HostInventory>(stack.client.subjects.hostPing(), {}, 200);
  return Object.fromEntries(
    inv.map((h) => [h.hostId, h.actors.find((a) => a.name === 'slow')?.inFlight ?? 0]),
  );
};

it('spreads requests over both hosts, and survives SIGKILL of one', async () => {
  const served = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const res = await fetch(`${stack.gateway.url}/hello/?name=n${i}`);
    expect(res.status).toBe(200);
    const h = res.headers.get('x-weft-host-id') ?? '?';
    served.set(h, (served.get(h) ?? 0) + 1);
  }
  expect([...served.keys()].sort()).toEqual(['HOSTA', 'HOSTB']);

  // Requests in flight on both hosts when A dies: GETs (idempotent) and POSTs (not).
  const call = async (method: string, i: number) => {
    const res = await fetch(`${stack.gateway.url}/slow/?ms=1500&i=${i}`, {
      method,
      ...(method === 'POST' ? { body: `post ${i}` } : {}),
    });
    const text = await res.text();
    return { method, status: res.status, host: res.headers.get('x-weft-host-id'), text };
  };
  const calls = [
    ...Array.from({ length: 8 }, (_, i) => call('GET', i)),
    ...Array.from({ length: 4 }, (_, i) => call('POST', i)),
  ];
  const held = await until(
    async () => {
      const f = await slowInFlight();
      return (f['HOSTA'] ?? 0) + (f['HOSTB'] ?? 0) === calls.length ? f : undefined;
    },
    { name: 'every slow request held by a host', timeoutMs: 5_000 },
  );
  expect(held['HOSTA']).toBeGreaterThan(0);
  await services[0]!.stop('SIGKILL');
  const results = await Promise.all(calls);
  // Every GET succeeds: those lost with A are sent again to B once the gateway sees A is gone.
  for (const r of results.filter((x) => x.method === 'GET')) {
    expect(r.status, r.text).toBe(200);
    expect(r.text).toMatch(/^slept 1500/);
  }
  // A POST is never sent twice: on B it succeeds, on A it fails with the host-lost code.
  const posts = results.filter((x) => x.method === 'POST');
  for (const r of posts) {
    if (r.status === 200) expect(r.host).toBe('HOSTB');
    else {
      expect(r.status).toBe(502);
      expect(JSON.parse(r.text)).toMatchObject({ code: 'WEFT_ERR_HOST_LOST' });
    }
  }
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
