/**
 * `weft up`: a nats-server of its own (or a cluster of three), a host, a gateway and the example
 * application from one command; SIGTERM stops every child it started.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { expect, it, onTestFinished } from 'vitest';
import { weft } from '../helpers/cli.ts';
import { ROOT, newLattice } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Start `weft up ARGS` with its own NATS; resolves with the gateway URL from its banner. */
async function startUp(args: string[]): Promise<{
  url: string;
  output(): string;
  exited: Promise<number | null>;
  kill(sig: NodeJS.Signals): void;
}> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'weft.ts'), 'up', '--http-port', '0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_NATS_URL: '' } },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await until(() => /HTTP {2}(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1], {
    name: 'weft up banner',
    timeoutMs: 60_000,
  });
  return { url, output: () => out, exited, kill: (sig) => child.kill(sig) };
}

it('serves the example application and cleans up on SIGTERM', async () => {
  const up = await startUp(['--lattice', newLattice()]);
  const natsPid = Number(/"natsPid":(\d+),"msg":"nats-server started"/.exec(up.output())?.[1]);
  expect(natsPid).toBeGreaterThan(0);
  expect(alive(natsPid)).toBe(true);
  // Should an assertion below fail, `weft up` is killed without its cleanup: stop its server too.
  onTestFinished(() => {
    if (alive(natsPid)) process.kill(natsPid, 'SIGKILL');
  });
  const res = await fetch(`${up.url}/hello?name=up`);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('up');

  // The banner says where the metrics, health and dashboard are, and each answers there.
  const out = up.output();
  const m = /metrics {2}host (\S+) {3}gateway (\S+)/.exec(out);
  const h = /health {3}host (\S+) {4}gateway (\S+)/.exec(out);
  const dashboard = /dashboard {2}(\S+)/.exec(out)?.[1];
  expect(m && h && dashboard).toBeTruthy();
  const hostMetrics = await (await fetch(m![1]!)).text();
  expect(hostMetrics).toMatch(/^weft_invocations_total\{.*actor="hello".*\} [1-9]/m);
  const gatewayMetrics = await (await fetch(m![2]!)).text();
  expect(gatewayMetrics).toMatch(
    /^weft_http_request_duration_seconds_count\{.*actor="hello".*\} [1-9]/m,
  );
  for (const url of [h![1]!, h![2]!]) expect((await fetch(url)).status).toBe(200);
  const page = await fetch(dashboard!);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toContain('text/html');

  up.kill('SIGTERM');
  expect(await up.exited).toBe(0);
  await until(() => !alive(natsPid), { name: 'nats-server stopped', timeoutMs: 10_000 });
});

it('up --cluster 3 runs the lattice on three routed servers, its buckets replicated', async () => {
  const lattice = newLattice();
  const up = await startUp(['--cluster', '3', '--lattice', lattice]);
  const out = up.output();
  const pids = JSON.parse(/"natsPids":(\[[\d,]+\])/.exec(out)?.[1] ?? '[]') as number[];
  expect(pids).toHaveLength(3);
  for (const pid of pids) expect(alive(pid)).toBe(true);
  onTestFinished(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const urls = /NATS {2}(\S+)/.exec(out)?.[1] ?? '';
  expect(urls.split(',')).toHaveLength(3);
  expect(out).toContain(`weft get hosts --nats ${urls}`);
  const res = await fetch(`${up.url}/hello?name=cluster`);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('cluster');
  const hosts = await weft(['get', 'hosts', '--json', '--nats', urls, '--lattice', lattice]);
  expect(JSON.parse(hosts.stdout)).toHaveLength(1);
  const nc = await connect({ servers: urls.split(',') });
  try {
    const jsm = await jetstreamManager(nc);
    const apps = await jsm.streams.info(`KV_weft-${lattice}-apps`);
    expect(apps.config.num_replicas).toBe(3);
    expect(apps.cluster?.replicas).toHaveLength(2);
  } finally {
    await nc.close();
  }

  up.kill('SIGTERM');
  expect(await up.exited).toBe(0);
  await until(() => pids.every((p) => !alive(p)), {
    name: 'nats-servers stopped',
    timeoutMs: 10_000,
  });
});

it('up --cluster refuses a size it cannot run', async () => {
  const r = await weft(['up', '--cluster', '2', '--http-port', '0']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/--cluster takes 3 or 5/);
});
