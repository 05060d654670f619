/**
 * `weft logs` and `weft spy` against two host processes: an actor's stderr lines from both hosts,
 * each with its host and invocation id (kept history, and `--follow` as lines come); a proxy
 * actor's output with its instance; a spy's line for a live invocation with method, path, status
 * and host; and the errors a user gets for an app or actor that is not there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { LogRecord, SpyEvent } from '../../lattice/index.ts';
import { startHostProcess, weft, type Service } from '../helpers/cli.ts';
import { ACTORS_DIST, FIXTURES_DIST, ROOT, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

let stack: Stack;
const hosts: Service[] = [];
let g: string[] = [];
/** Invocations of the stderr actor served so far: id → host. */
const served = new Map<string, string>();

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { hosts: 0 });
  for (const id of ['LOGHOSTA', 'LOGHOSTB']) {
    hosts.push(await startHostProcess(stack.natsUrl, stack.lattice, id));
  }
  g = ['--nats', stack.natsUrl, '--lattice', stack.lattice];
  await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: logged, version: 1.0.0 }
spec:
  actors:
    - name: talker
      module: ${join(FIXTURES_DIST, 'stderr-log.wasm')}
      instances: 2
      routes: [{ path: /talker/... }]
    - name: server
      module: ${join(ACTORS_DIST, 'httpd.wasm')}
      mode: proxy
      routes: [{ path: /proxy/... }]
`);
  // Each host runs the talker: ask until both have answered.
  await until(
    async () => {
      const res = await fetch(`${stack.gateway.url}/talker/?i=${served.size}`);
      const text = await res.text();
      if (text !== 'ok') throw new Error(`the talker answered ${res.status}: ${text}`);
      served.set(res.headers.get('x-weft-invocation-id')!, res.headers.get('x-weft-host-id')!);
      return new Set(served.values()).size === 2;
    },
    { name: 'the talker served by both hosts', timeoutMs: 20_000 },
  );
});

afterAll(async () => {
  for (const h of hosts) await h.stop('SIGKILL');
  await stack?.stop();
});

const records = (stdout: string): LogRecord[] =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogRecord);

it("shows an actor's stderr lines from both hosts, with host and invocation ids", async () => {
  // Hosts publish their records within 50 ms; history is what each host keeps.
  const r = await until(
    async () => {
      const out = await weft(['logs', 'logged', '--actor', 'talker', '--json', ...g]);
      const got = records(out.stdout);
      return [...served.keys()].every((id) => got.some((x) => x.invocationId === id))
        ? { out, got }
        : undefined;
    },
    { name: 'every served invocation in weft logs', timeoutMs: 10_000 },
  );
  expect(r.out.code).toBe(0);
  for (const [invocationId, hostId] of served) {
    expect(r.got.find((x) => x.invocationId === invocationId)).toMatchObject({
      hostId,
      app: 'logged',
      actor: 'talker',
      stream: 'stderr',
      line: 'actor says hi',
    });
  }
  expect(new Set(r.got.map((x) => x.hostId))).toEqual(new Set(['LOGHOSTA', 'LOGHOSTB']));

  const human = await weft(['logs', 'logged', '--actor', 'talker', ...g]);
  expect(human.code).toBe(0);
  const lines = human.stdout.trim().split('\n');
  for (const host of ['LOGHOSTA', 'LOGHOSTB']) {
    expect(lines.some((l) => l.includes(` ${host} talker `) && l.endsWith(' actor says hi'))).toBe(
      true,
    );
  }
});

it("shows a proxy actor's output with its instance", async () => {
  const out = await until(
    async () => {
      const r = await weft(['logs', 'logged', '--actor', 'server', ...g]);
      return /\bserver\[0\] - .*httpd/.test(r.stdout) ? r : undefined;
    },
    { name: "httpd's start-up line in weft logs", timeoutMs: 10_000 },
  );
  expect(out.code).toBe(0);
});

it('--follow prints lines as hosts publish them', async () => {
  const follow = start(['logs', 'logged', '--follow', '--json', ...g]);
  try {
    await until(() => follow.stderr().includes('following logged'), {
      name: 'weft logs --follow started',
      timeoutMs: 15_000,
    });
    const res = await fetch(`${stack.gateway.url}/talker/?followed`);
    expect(await res.text()).toBe('ok');
    const id = res.headers.get('x-weft-invocation-id');
    const rec = await until(() => records(follow.stdout()).find((x) => x.invocationId === id), {
      name: 'the new line in weft logs --follow',
      timeoutMs: 10_000,
    });
    expect(rec).toMatchObject({ hostId: res.headers.get('x-weft-host-id'), line: 'actor says hi' });
  } finally {
    follow.child.kill('SIGINT');
  }
  expect(await follow.exited).toBe(0);
});

it('weft spy shows a live invocation with method, path, status and host', async () => {
  const spy = start(['spy', 'logged/talker', '--count', '1', '--json', ...g]);
  await until(() => spy.stderr().includes('spying on logged/talker on 2 host(s)'), {
    name: 'weft spy started',
    timeoutMs: 15_000,
  });
  let res: Response | undefined;
  // The hosts took the interest before answering the spy; one request is enough, more is safe.
  const code = await until(
    async () => {
      if (spy.child.exitCode !== null) return spy.exited;
      res = await fetch(`${stack.gateway.url}/talker/spied?q=1`, { method: 'POST', body: 'x' });
      expect(await res.text()).toBe('ok');
      return undefined;
    },
    { name: 'weft spy to see an invocation', timeoutMs: 15_000, intervalMs: 200 },
  );
  expect(code).toBe(0);
  const ev = JSON.parse(spy.stdout().trim().split('\n')[0]!) as SpyEvent;
  expect(ev).toMatchObject({
    app: 'logged',
    actor: 'talker',
    method: 'POST',
    path: '/talker/spied',
    query: 'q=1',
    status: 200,
  });
  expect(['LOGHOSTA', 'LOGHOSTB']).toContain(ev.hostId);
  expect(ev.traceId).toMatch(/^[0-9a-f]{32}$/);

  // The table form, for people.
  const human = start(['spy', 'talker', '--count', '1', ...g]);
  await until(() => human.stderr().includes('spying on logged/talker'), {
    name: 'weft spy (table) started',
    timeoutMs: 15_000,
  });
  await until(
    async () => {
      if (human.child.exitCode !== null) return true;
      await (await fetch(`${stack.gateway.url}/talker/seen`)).text();
      return undefined;
    },
    { name: 'weft spy (table) to see an invocation', timeoutMs: 15_000, intervalMs: 200 },
  );
  expect(human.stdout()).toMatch(/ LOGHOST[AB] GET \/talker\/seen 200 [\d.]+ms /);
});

it('says what is missing for an unknown app or actor', async () => {
  const noApp = await weft(['logs', 'nosuchapp', ...g]);
  expect(noApp.code).toBe(1);
  expect(noApp.stderr).toContain("no application named 'nosuchapp' is deployed");
  const noActor = await weft(['logs', 'logged', '--actor', 'ghost', ...g]);
  expect(noActor.code).toBe(1);
  expect(noActor.stderr).toContain("application 'logged' has no actor 'ghost'");
  const noSpy = await weft(['spy', 'ghost', ...g]);
  expect(noSpy.code).toBe(1);
  expect(noSpy.stderr).toContain("no deployed application has an actor named 'ghost'");
  const usage = await weft(['logs', ...g]);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toContain('weft logs: expected APP');
});

/** A long-running CLI process whose output is read as it comes. */
function start(args: string[]): {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'weft.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  // Never outlives the test run.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(timer));
  return { child, stdout: () => out, stderr: () => err, exited };
}
