/**
 * Outbound TCP from a WASIX guest: `capabilities.sockets.connect` and `weft run --allow-connect`.
 * The guest (test/fixtures/actors/sock-connect.c) opens a socket, connects, sends a line and
 * reports what came back; real TCP echo servers on 127.0.0.1 count the connections they get. A
 * granted address carries data both ways (8 MiB each way through a non-blocking socket and
 * poll, past every buffer's high-water mark); an ungranted port, a granted name that resolves to
 * loopback and a name no grant allows are refused with EACCES, reach no server, and are logged
 * with the actor, host:port and reason; a refused connection is ECONNREFUSED, blocking or not.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../bin/nats-server.ts';
import { weft } from '../helpers/cli.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { FIXTURES_DIST, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const MODULE = join(FIXTURES_DIST, 'sock-connect.wasm');
const EACCES = 2;
const ECONNREFUSED = 14;

interface Echo {
  server: Server;
  port: number;
  /** Connections accepted so far. */
  connections: number;
}

/** A TCP echo server on 127.0.0.1: every byte back, and EOF after the client's EOF. */
async function echoServer(): Promise<Echo> {
  const e: Echo = { server: createServer({ allowHalfOpen: true }), port: 0, connections: 0 };
  e.server.on('connection', (c) => {
    e.connections++;
    c.on('error', () => {});
    c.pipe(c);
  });
  await new Promise<void>((r) => e.server.listen(0, '127.0.0.1', r));
  e.port = (e.server.address() as AddressInfo).port;
  return e;
}

let echo: Echo;
let ungranted: Echo;
let refused = 0;

beforeAll(async () => {
  echo = await echoServer();
  ungranted = await echoServer();
  refused = await freePort();
});

afterAll(async () => {
  for (const e of [echo, ungranted]) await new Promise<void>((r) => e?.server.close(() => r()));
});

describe('capabilities.sockets.connect on a host', () => {
  let stack: Stack;
  const logs = captureLogs();

  beforeAll(async () => {
    stack = await startStack(inject('natsUrl'), { log: logs.log });
    await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: sockets, version: 1.0.0 }
spec:
  actors:
    - name: by-address
      module: ${MODULE}
      mode: proxy
      capabilities:
        sockets: { connect: ["tcp://127.0.0.1:${echo.port}", "tcp://127.0.0.1:${refused}"] }
      routes: [{ path: /by-address }]
    - name: by-name
      module: ${MODULE}
      mode: proxy
      capabilities:
        sockets: { connect: ["tcp://localhost:${echo.port}"] }
      routes: [{ path: /by-name }]
`);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  async function connect(actor: string, query: string): Promise<string> {
    const res = await fetch(`${stack.gateway.url}/${actor}?${query}`);
    expect(res.status).toBe(200);
    return res.text();
  }

  function denials(msg: string): Record<string, unknown>[] {
    return logs.lines.filter((l) => l['msg'] === msg);
  }

  it('connects to a granted address: a line there and back', async () => {
    const before = echo.connections;
    expect(await connect('by-address', `host=127.0.0.1&port=${echo.port}&line=hello-there`)).toBe(
      'read: hello-there\n',
    );
    expect(echo.connections).toBe(before + 1);
  });

  it('streams 8 MiB each way through a non-blocking socket, with backpressure', async () => {
    const bytes = 8 * 1024 * 1024;
    expect(await connect('by-address', `host=127.0.0.1&port=${echo.port}&bytes=${bytes}`)).toBe(
      `connect: inprogress\nbytes: ${bytes} sent, ${bytes} received, ok\n`,
    );
  });

  it('refuses a port no entry grants: EACCES, no connection, a log line', async () => {
    const text = await connect('by-address', `host=127.0.0.1&port=${ungranted.port}&line=x`);
    expect(text).toBe(`error: connect errno ${EACCES}\n`);
    expect(ungranted.connections).toBe(0);
    const line = await until(
      () =>
        denials('outbound connect denied').find(
          (l) => l['connect'] === `127.0.0.1:${ungranted.port}`,
        ),
      { name: 'the denial in the log' },
    );
    expect(line['actor']).toBe('by-address');
    expect(line['level']).toBe(40);
    expect(String(line['reason'])).toContain('no allowlist entry matches');
  });

  it('refuses a granted name that resolves to loopback unless the address is granted', async () => {
    const before = echo.connections;
    const text = await connect('by-name', `host=localhost&port=${echo.port}&line=x`);
    expect(text).toBe(`error: connect errno ${EACCES}\n`);
    expect(echo.connections).toBe(before);
    const line = await until(
      () =>
        denials('outbound connect denied').find(
          (l) => l['actor'] === 'by-name' && l['connect'] === `127.0.0.1:${echo.port}`,
        ),
      { name: 'the loopback denial in the log' },
    );
    expect(line['reason']).toMatch(
      /localhost resolved to 127\.0\.0\.1, which is a loopback address/,
    );
    expect(line['rule']).toBe(`tcp://localhost:${echo.port}`);
  });

  it('resolves only names a grant could allow', async () => {
    const text = await connect('by-name', `host=db.svc.test&port=5432&line=x`);
    expect(text).toBe(`error: resolve errno ${EACCES}\n`);
    const line = await until(
      () => denials('outbound resolve denied').find((l) => l['resolve'] === 'db.svc.test:5432'),
      { name: 'the resolve denial in the log' },
    );
    expect(line['actor']).toBe('by-name');
  });

  it('reports a refused connection as ECONNREFUSED, blocking or not', async () => {
    expect(await connect('by-address', `host=127.0.0.1&port=${refused}`)).toBe(
      `error: connect errno ${ECONNREFUSED}\n`,
    );
    expect(await connect('by-address', `host=127.0.0.1&port=${refused}&nonblock=1`)).toBe(
      `connect: inprogress\nerror: connect errno ${ECONNREFUSED}\n`,
    );
  });
});

describe('weft run --allow-connect', () => {
  it('grants a WASIX command its connection, and only that one', async () => {
    const ok = await weft([
      'run',
      '--allow-connect',
      `tcp://127.0.0.1:${echo.port}`,
      MODULE,
      'once',
      '127.0.0.1',
      String(echo.port),
      'from-the-cli',
      'nonblock',
    ]);
    expect(ok.stdout).toBe('connect: inprogress\nread: from-the-cli\n');
    expect(ok.code).toBe(0);

    const before = ungranted.connections;
    const denied = await weft([
      'run',
      '--allow-connect',
      `tcp://127.0.0.1:${echo.port}`,
      MODULE,
      'once',
      '127.0.0.1',
      String(ungranted.port),
      'x',
    ]);
    expect(denied.stdout).toBe(`error: connect errno ${EACCES}\n`);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`connect 127.0.0.1:${ungranted.port} denied`);
    expect(ungranted.connections).toBe(before);
  });

  it('says what is wrong with a bad entry, and that a WASI module has no sockets', async () => {
    const bad = await weft(['run', '--allow-connect', 'db.internal:5432', MODULE]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--allow-connect');
    expect(bad.stderr).toContain('the scheme is missing');

    const wasi = await weft([
      'run',
      '--allow-connect',
      'tcp://127.0.0.1:1',
      join(FIXTURES_DIST, 'wasi-hello.wasm'),
    ]);
    expect(wasi.code).toBe(1);
    expect(wasi.stderr).toContain('--allow-connect grants WASIX sockets');
  });
});
