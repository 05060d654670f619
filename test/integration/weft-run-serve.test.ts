/**
 * `weft run --serve`: a WCGI or WASIX proxy module over HTTP on one machine, no NATS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ACTORS_DIST, FIXTURES_DIST, ROOT } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

async function serve(args: string[]): Promise<string> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'weft.ts'), 'run', '--serve', '--listen', '127.0.0.1:0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_LOG_LEVEL: 'warn' } },
  );
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return until(
    () => {
      if (child.exitCode !== null) throw new Error(`weft run --serve exited: ${out}`);
      return / at (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
    },
    { name: 'weft run --serve listening', timeoutMs: 20_000 },
  );
}

it('serves a WCGI module, with env and a mapped directory', async () => {
  const hello = await serve([join(ACTORS_DIST, 'hello.wasm')]);
  const res = await fetch(`${hello}/anything?name=local`);
  expect(res.status).toBe(200);
  expect(await res.text()).toBe('Hello, local!\n');

  const catalog = await serve([
    '--dir',
    `${join(ROOT, 'actors', 'catalog', 'data')}::/data`,
    join(ACTORS_DIST, 'catalog.wasm'),
  ]);
  const books = await fetch(`${catalog}/api/books?limit=2`);
  expect(books.status).toBe(200);
  expect(((await books.json()) as unknown[]).length).toBe(2);

  const dump = await serve(['--env', 'GREETING=hi there', join(FIXTURES_DIST, 'env-dump.wasm')]);
  const text = await (await fetch(`${dump}/x/y?q=1`)).text();
  expect(text).toMatch(/^GREETING=hi there$/m);
  expect(text).toMatch(/^SCRIPT_NAME=$/m);
  expect(text).toMatch(/^PATH_INFO=\/x\/y$/m);
});

it('answers errors as JSON, like the gateway', async () => {
  const trap = await serve([join(FIXTURES_DIST, 'trap.wasm')]);
  const res = await fetch(`${trap}/`);
  expect(res.status).toBe(500);
  expect(((await res.json()) as { code: string }).code).toBe('WEFT_ERR_ACTOR_TRAP');
});

it('serves a WASIX proxy module: the guest answers real HTTP clients over keep-alive', async () => {
  const url = await serve([join(ACTORS_DIST, 'httpd.wasm')]);
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${url}/hello?name=p${i}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`Hello, p${i}!\n`);
  }
  const body = new Uint8Array(1024 * 1024).map((_, i) => i % 253);
  const echo = await fetch(`${url}/echo`, { method: 'POST', body });
  expect(Buffer.compare(new Uint8Array(await echo.arrayBuffer()), body)).toBe(0);
  const stats = (await (await fetch(`${url}/stats`)).json()) as {
    requests: number;
    connections: number;
  };
  expect(stats.requests).toBe(7);
  // fetch keeps its connections alive, and the guest sees the same ones again.
  expect(stats.connections).toBeLessThanOrEqual(2);
});
