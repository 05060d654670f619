/**
 * Placement across host processes (real `weft host`s on a real nats-server): spread by labels
 * and weights, a spread no host matches, SIGKILL of a host (its placements move), SIGTERM
 * (drains with no failed request), and the scheduler's leader killed (a standby leads).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import {
  appStatus,
  deployApplication,
  parseManifest,
  schedulerLeader,
  type AppStatus,
} from '../../lattice/index.ts';
import { startHostProcess, weft, type Service } from '../helpers/cli.ts';
import { ACTORS_DIST, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

let stack: Stack;
const hosts = new Map<string, Service>();

async function startHost(id: string, labels: string[]): Promise<void> {
  const more = ['--heartbeat-ms', '500', ...labels.flatMap((l) => ['--label', l])];
  hosts.set(id, await startHostProcess(stack.natsUrl, stack.lattice, id, more));
}

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { hosts: 0 });
  await startHost('EAST1', ['zone=east']);
  await startHost('EAST2', ['zone=east']);
  await startHost('WEST1', ['zone=west']);
});

afterAll(async () => {
  for (const h of hosts.values()) await h.stop('SIGKILL');
  await stack?.stop();
});

const HELLO = join(ACTORS_DIST, 'hello.wasm');
const HTTPD = join(ACTORS_DIST, 'httpd.wasm');

function deploy(name: string, actors: string): Promise<unknown> {
  const yaml = `apiVersion: weft/v1
kind: Application
metadata: { name: ${name}, version: 1.0.0 }
spec:
  actors:${actors}`;
  const file = `/tmp/${name}.yaml`;
  return deployApplication(stack.client, parseManifest(yaml, file), file);
}

async function settled(
  name: string,
  pred: (s: AppStatus) => boolean,
  what: string,
): Promise<AppStatus> {
  let last: AppStatus | undefined;
  try {
    return await until(
      async () => {
        last = await appStatus(stack.client, name);
        return pred(last) ? last : undefined;
      },
      { name: `${name}: ${what}`, timeoutMs: 15_000 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last)}`, {
      cause: err,
    });
  }
}

const placedOn = (s: AppStatus, actor: string) =>
  Object.fromEntries(
    s.actors.find((a) => a.actor === actor)!.hosts.map((h) => [h.hostId, h.placed]),
  );

it('places instances by labels and weights, and says why a spread cannot be met', async () => {
  await deploy(
    'spread',
    `
    - name: web
      module: ${HTTPD}
      mode: proxy
      instances: 3
      spread:
        - { name: east, requirements: { zone: east }, weight: 2 }
        - { name: west, requirements: { zone: west }, weight: 1 }
      routes: [{ path: /web/... }]
    - name: north
      module: ${HELLO}
      spread: [{ name: north, requirements: { zone: north } }]`,
  );
  const st = await settled(
    'spread',
    (s) => s.actors.find((a) => a.actor === 'web')!.running === 3,
    'web running 3 instances',
  );
  expect(placedOn(st, 'web')).toEqual({ EAST1: 1, EAST2: 1, WEST1: 1 });
  const north = st.actors.find((a) => a.actor === 'north')!;
  expect(north.hosts).toEqual([]);
  expect(north.waiting).toMatch(/north.*zone=north.*no host/);
  expect(st.state).toBe('waiting');

  // The same from the CLI: a table for people, JSON for programs, exit 1 while not running.
  const nats = ['--nats', stack.natsUrl, '--lattice', stack.lattice];
  const text = await weft(['status', 'spread', ...nats]);
  expect(text.code).toBe(1);
  expect(text.stdout).toMatch(/spread@1\.0\.0: waiting/);
  expect(text.stdout).toMatch(/web\s+proxy\s+3\/3\s+EAST1:1\/1 EAST2:1\/1 WEST1:1\/1/);
  expect(text.stdout).toMatch(/north\s+wcgi\s+0\/1\s+-\s+spread 'north' \(zone=north\): no host/);
  const json = JSON.parse(
    (await weft(['status', 'spread', '--json', ...nats])).stdout,
  ) as AppStatus;
  expect(json.actors.map((a) => [a.actor, a.running, a.wanted])).toEqual([
    ['web', 3, 3],
    ['north', 0, 1],
  ]);
});

it('refuses a second host with an id already in the lattice', async () => {
  const r = await weft(
    ['host', '--nats', stack.natsUrl, '--lattice', stack.lattice, '--host-id', 'EAST1'],
    { timeoutMs: 20_000 },
  );
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr).toMatch(/WEFT_ERR_HOST_ID_TAKEN|host id EAST1 is already in lattice/);
});

it('moves the placements of a SIGKILLed host within 10 s', async () => {
  await deploy(
    'solo',
    `
    - name: solo
      module: ${HELLO}
      spread: [{ name: east, requirements: { zone: east } }]
      routes: [{ path: /solo/... }]`,
  );
  const st = await settled('solo', (s) => s.state === 'running', 'solo running');
  const [victim] = Object.keys(placedOn(st, 'solo'));
  expect(['EAST1', 'EAST2']).toContain(victim);
  await hosts.get(victim!)!.stop('SIGKILL');
  hosts.delete(victim!);
  const after = await until(
    async () => {
      const s = await appStatus(stack.client, 'solo');
      const on = Object.keys(placedOn(s, 'solo'));
      return s.state === 'running' && !on.includes(victim!) ? s : undefined;
    },
    // The bound: placements of a dead host run elsewhere within 10 s.
    { name: 'solo running elsewhere', timeoutMs: 10_000 },
  );
  expect(Object.keys(placedOn(after, 'solo'))).toHaveLength(1);
  const res = await fetch(`${stack.gateway.url}/solo/?name=moved`);
  expect(await res.text()).toBe('Hello, moved!\n');
});

it('a SIGTERMed host drains: its placement moves first and no request fails', async () => {
  await startHost('EAST3', ['zone=east']);
  const st = await settled('solo', (s) => s.state === 'running', 'solo running');
  const [victim] = Object.keys(placedOn(st, 'solo'));
  let failures = 0;
  let served = 0;
  const load = { on: true };
  const loader = (async () => {
    while (load.on) {
      const r = await fetch(`${stack.gateway.url}/solo/?name=x`).catch(() => undefined);
      if (r?.status === 200) served++;
      else failures++;
      await r?.text();
    }
  })();
  await until(() => served > 20, { name: 'load running', timeoutMs: 10_000 });
  await hosts.get(victim!)!.stop('SIGTERM');
  hosts.delete(victim!);
  const after = await settled(
    'solo',
    (s) => s.state === 'running' && !Object.keys(placedOn(s, 'solo')).includes(victim!),
    'solo moved off the drained host',
  );
  const before = served;
  await until(() => served > before + 20, { name: 'served after the drain', timeoutMs: 10_000 });
  load.on = false;
  await loader;
  expect(Object.keys(placedOn(after, 'solo'))).toHaveLength(1);
  expect(failures).toBe(0);
});

it('a standby takes the lead when the leader is killed, and the lattice converges', async () => {
  // Another host per zone, so that every spread can still be met without the leader's host.
  await startHost('EAST4', ['zone=east']);
  await startHost('WEST2', ['zone=west']);
  const leader = await until(() => schedulerLeader(stack.client), {
    name: 'a leader',
    timeoutMs: 10_000,
  });
  const service = hosts.get(leader);
  expect(service).toBeDefined();
  await service!.stop('SIGKILL');
  hosts.delete(leader);
  const next = await until(
    async () => {
      const l = await schedulerLeader(stack.client);
      return l !== undefined && l !== leader ? l : undefined;
    },
    { name: 'a new leader', timeoutMs: 10_000 },
  );
  expect([...hosts.keys()]).toContain(next);
  // Whatever ran on the killed host runs elsewhere again, nothing twice.
  const st = await settled(
    'spread',
    (s) => s.actors.find((a) => a.actor === 'web')!.running === 3,
    'web back at 3 instances',
  );
  const web = placedOn(st, 'web');
  expect(Object.keys(web)).not.toContain(leader);
  expect(Object.values(web).reduce((a, b) => a + b, 0)).toBe(3);
});
