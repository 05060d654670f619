/**
 * compose.yaml's services run as local processes, since this machine has no Docker engine: the
 * NATS services' own nats-server arguments (with each container's ports moved to free ports on
 * 127.0.0.1), then the hosts and gateways with their commands and environment (service names
 * resolved to those ports), then the one-shot deploy. The lattice must form (a routed cluster with
 * JetStream, three labelled hosts), the deploy must succeed, and both gateways must serve the
 * example application.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { freePort, natsServerBin } from '../../bin/nats-server.ts';
import { weft } from '../helpers/cli.ts';
import { probedPorts } from '../helpers/compose-check.ts';
import { ROOT } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

interface Service {
  [key: string]: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
}

const procs: { name: string; child: ChildProcess; exited: Promise<void>; out: () => string }[] = [];
let stateDir: string | undefined;

afterAll(async () => {
  // Services first (hosts drain), NATS last; only the processes this test started.
  const stop = async (p: (typeof procs)[number]) => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
    await p.exited;
    clearTimeout(timer);
  };
  await Promise.all(procs.filter((p) => !p.name.startsWith('nats')).map(stop));
  await Promise.all(procs.filter((p) => p.name.startsWith('nats')).map(stop));
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
}, 60_000);

function start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): void {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  procs.push({ name, child, exited, out: () => out });
}

function alive(name: string): string {
  const p = procs.find((x) => x.name === name)!;
  if (p.child.exitCode !== null) throw new Error(`${name} exited: ${p.out().slice(-2000)}`);
  return p.out();
}

it('runs: a NATS cluster, three labelled hosts, two gateways, and the example deployed', async () => {
  const doc = parseYaml(await readFile(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
  };
  const services = Object.entries(doc.services);
  const nats = services.filter(([, s]) => s.entrypoint?.[0] === 'nats-server');
  const weftServices = services.filter(([, s]) => s.entrypoint === undefined);
  expect(nats.length).toBe(3);
  stateDir = await mkdtemp(join(tmpdir(), 'weft-compose-'));

  // Each container's ports (client 4222, routes 6222, monitoring 8222) → free local ports.
  const ports = new Map<string, { client: number; cluster: number; http: number }>();
  for (const [name] of nats) {
    ports.set(name, {
      client: await freePort(),
      cluster: await freePort(),
      http: await freePort(),
    });
  }
  const local = (url: string, kind: 'client' | 'cluster'): string => {
    const u = new URL(url);
    const p = ports.get(u.hostname);
    if (p === undefined) throw new Error(`${url} names no NATS service`);
    return `nats://127.0.0.1:${kind === 'client' ? p.client : p.cluster}`;
  };
  for (const [name, s] of nats) {
    const p = ports.get(name)!;
    const args = (s.command ?? []).map((a) => {
      const [flag, value] = a.split(/=(.*)/s) as [string, string | undefined];
      switch (flag) {
        case '--cluster':
          return `--cluster=nats://127.0.0.1:${p.cluster}`;
        case '--routes':
          return `--routes=${value!
            .split(',')
            .map((r) => local(r, 'cluster'))
            .join(',')}`;
        case '--store_dir':
          return `--store_dir=${join(stateDir!, name)}`;
        case '--http_port':
          return `--http_port=${p.http}`;
        default:
          return a;
      }
    });
    start(name, natsServerBin(), [...args, '--addr=127.0.0.1', `--port=${p.client}`], process.env);
  }
  // The compose healthcheck: /healthz answers ok once JetStream is current in the cluster.
  for (const [name] of nats) {
    await until(
      async () => {
        alive(name);
        const r = await fetch(`http://127.0.0.1:${ports.get(name)!.http}/healthz`).catch(
          () => undefined,
        );
        return r?.ok === true;
      },
      { name: `${name} healthy`, timeoutMs: 60_000 },
    );
  }

  // The weft services, with their environment: service names become the local ports, and each
  // container address 0.0.0.0:PORT a free port on 127.0.0.1.
  const gatewayPorts: number[] = [];
  const localPorts = new Map<string, Map<number, number>>();
  const envOf = (s: Service): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...s.environment };
    if (env['WEFT_NATS_URL']) {
      env['WEFT_NATS_URL'] = env['WEFT_NATS_URL']
        .split(',')
        .map((u) => local(u, 'client'))
        .join(',');
    }
    return env;
  };
  let deploy: [string, Service] | undefined;
  for (const [name, s] of weftServices) {
    const argv = [...(s.command ?? [])];
    if (argv[0] === 'deploy') {
      deploy = [name, s];
      continue;
    }
    const mapped = new Map<number, number>();
    for (let i = 0; i < argv.length; i++) {
      const m = /^0\.0\.0\.0:(\d+)$/.exec(argv[i]!);
      if (m === null) continue;
      const port = await freePort();
      mapped.set(Number(m[1]), port);
      argv[i] = `127.0.0.1:${port}`;
      if (argv[i - 1] === '--listen') gatewayPorts.push(port);
    }
    localPorts.set(name, mapped);
    start(name, process.execPath, [join(ROOT, 'bin', 'weft.ts'), ...argv], envOf(s));
  }
  for (const [name, s] of weftServices) {
    if (s.command?.[0] === 'deploy') continue;
    const ready = s.command?.[0] === 'host' ? '"msg":"host started"' : '"msg":"gateway listening"';
    await until(() => alive(name).includes(ready), { name: `${name} ready`, timeoutMs: 60_000 });
  }
  expect(gatewayPorts).toHaveLength(2);

  // The one-shot deploy, as compose runs it once the rest is up: the services it waits for are
  // healthy by their own healthcheck's probe.
  expect(deploy).toBeDefined();
  const [, d] = deploy!;
  for (const [dep, cond] of Object.entries(d.depends_on ?? {})) {
    if ((cond as { condition?: string }).condition !== 'service_healthy' || ports.has(dep))
      continue;
    const probe = probedPorts(doc.services[dep]!);
    expect(probe, `${dep} has a probe`).toHaveLength(1);
    const port = localPorts.get(dep)!.get(probe[0]!);
    expect(port, `${dep} listens where it is probed`).toBeDefined();
    const path = /127\.0\.0\.1:\d+(\/[^'"]*)/.exec(
      JSON.stringify(doc.services[dep]!['healthcheck']),
    )![1]!;
    await until(
      async () => {
        alive(dep);
        const res = await fetch(`http://127.0.0.1:${port}${path}`).catch(() => undefined);
        return res?.ok === true;
      },
      { name: `${dep} healthy`, timeoutMs: 60_000 },
    );
  }
  const env = Object.fromEntries(
    Object.entries(envOf(d)).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const r = await weft(d.command!, { env, timeoutMs: 120_000 });
  expect(r.stderr).not.toContain('Error');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^deployed examples@1\.0\.0: hello, echo, markdown, catalog, httpd/);
  expect(r.stdout).toMatch(/ready in \d+ ms/);

  // Both gateways serve it.
  for (const port of gatewayPorts) {
    await until(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/hello?name=compose`).catch(
          () => undefined,
        );
        return res?.status === 200 && (await res.text()).includes('compose');
      },
      { name: `gateway on ${port} serves /hello`, timeoutMs: 30_000 },
    );
  }
  // Three hosts, with the labels compose gives them, on a replicated lattice.
  const hosts = await weft(['get', 'hosts', '--json'], { env });
  expect(hosts.code).toBe(0);
  const list = JSON.parse(hosts.stdout) as { hostId: string; labels: Record<string, string> }[];
  expect(list.map((h) => `${h.hostId} ${h.labels['zone']} ${h.labels['tier']}`).toSorted()).toEqual(
    ['east-1 east web', 'east-2 east batch', 'west-1 west web'],
  );
}, 300_000);
