/**
 * Proxy actors that misbehave: each failure gets its status and code, a crashed instance is
 * started again, and the host, the gateway and the other actors keep serving meanwhile. Also
 * the multi-threaded guest: a thread per connection, and a thread cap that holds.
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { HostInventory } from '../../lattice/index.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { ACTORS_DIST, FIXTURES_DIST, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

let stack: Stack;
const { log, lines: logLines } = captureLogs();

const proxyActor = (name: string, module: string, host: string, extra = ''): string => `
    - name: ${name}
      module: ${module}
      mode: proxy
      routes: [{ path: /..., host: ${host} }]${extra}`;

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { log });
  await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: bad, version: 1.0.0 }
spec:
  actors:${proxyActor('httpd', join(ACTORS_DIST, 'httpd.wasm'), 'good.test')}${proxyActor(
    'misbehave',
    join(FIXTURES_DIST, 'proxy-misbehave.wasm'),
    'bad.test',
    '\n      limits: { timeoutMs: 1500, maxResponseBytes: 1048576 }',
  )}${proxyActor(
    'greedy',
    join(FIXTURES_DIST, 'proxy-misbehave.wasm'),
    'greedy.test',
    '\n      limits: { memoryMiB: 32 }',
  )}${proxyActor('threads', join(FIXTURES_DIST, 'proxy-threads.wasm'), 'threads.test')}${proxyActor(
    'capped',
    join(FIXTURES_DIST, 'proxy-threads.wasm'),
    'capped.test',
    '\n      limits: { maxThreads: 2 }',
  )}${proxyActor('pair', join(ACTORS_DIST, 'httpd.wasm'), 'pair.test', '\n      instances: 2')}${proxyActor(
    'small',
    join(ACTORS_DIST, 'httpd.wasm'),
    'small.test',
    '\n      limits: { maxResponseBytes: 1048576 }',
  )}
`);
});

afterAll(async () => {
  await stack?.stop();
});

interface Reply {
  status: number;
  body: string;
  json: { code?: string; statusCode?: number } | undefined;
  /** The connection was cut before the body's end. */
  aborted: boolean;
}

/** GET through the gateway with a Host header (fetch can't set one). */
function get(host: string, path: string): Promise<Reply> {
  const url = new URL(stack.gateway.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, headers: { host }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => {
          const body = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode!, body, json: undefined, aborted: true });
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          let json: Reply['json'];
          if ((res.headers['content-type'] ?? '').includes('json')) {
            json = JSON.parse(body) as Reply['json'];
          }
          resolve({ status: res.statusCode!, body, json, aborted: false });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function inventory(name: string): Promise<HostInventory['actors'][number] | undefined> {
  const inv = await stack.client.gather<HostInventory>(stack.client.subjects.hostPing(), {}, 300);
  return inv[0]?.actors.find((a) => a.name === name);
}

describe('a misbehaving proxy actor', () => {
  it('closing a connection mid-response is a 502 with a code', async () => {
    const r = await get('bad.test', '/close-mid');
    expect(r.status).toBe(502);
    expect(r.json?.code).toBe('WEFT_ERR_INSTANCE_CRASHED');
    expect((await get('bad.test', '/ok')).body).toBe('ok\n');
  });

  it('a memory bomb gets no more than memoryMiB: its grows fail, and it serves on', async () => {
    const r = await get('greedy.test', '/grow');
    expect(r.status).toBe(200);
    const m = /^memory (\d+) MiB, grow refused\n$/.exec(r.body);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(32);
    expect(Number(m![1])).toBeGreaterThan(16);
    expect((await get('greedy.test', '/ok')).body).toBe('ok\n');
    expect((await get('good.test', '/hello?name=x')).status).toBe(200);
  });

  it('a malformed HTTP response is a 502, never forwarded', async () => {
    const r = await get('bad.test', '/malformed');
    expect(r.status).toBe(502);
    expect(r.json?.code).toBe('WEFT_ERR_BAD_PROXY_RESPONSE');
    // The gateway's own JSON error, with the reason; not the guest's bytes as a response.
    expect(r.json?.statusCode).toBe(502);
    expect(r.body).not.toMatch(/^HTTP\//);
  });

  it('answering too slowly is a 504, and the actor serves again afterwards', async () => {
    const r = await get('bad.test', '/slow?ms=2500');
    expect(r.status).toBe(504);
    expect(r.json?.code).toBe('WEFT_ERR_TIMEOUT');
    await until(async () => (await get('bad.test', '/ok')).status === 200, {
      name: 'served again after the slow request',
      timeoutMs: 10_000,
    });
  });

  it('a flood of output is streamed, then cut at maxResponseBytes', async () => {
    // The head went out once the response was streaming, so the cut connection is what tells
    // the client; it never gets more than the cap.
    const r = await get('bad.test', '/flood');
    expect(r.status).toBe(200);
    expect(r.aborted).toBe(true);
    expect(r.body.length).toBeGreaterThan(0);
    expect(r.body.length).toBeLessThanOrEqual(1048576);
    expect(r.body).toMatch(/^x+$/);
    await until(async () => (await get('bad.test', '/ok')).status === 200, {
      name: 'served again after the flood',
      timeoutMs: 10_000,
    });
  });

  it('a response declaring a length over maxResponseBytes gets a 502 before any byte', async () => {
    const r = await get('small.test', '/bytes?n=2000000');
    expect(r.status).toBe(502);
    expect(r.json?.code).toBe('WEFT_ERR_RESPONSE_TOO_LARGE');
    expect((await get('small.test', '/bytes?n=1000000')).body.length).toBe(1000000);
  });

  it('a crash fails the request in flight, the instance restarts, others keep serving', async () => {
    const pid1 = (await get('bad.test', '/pid')).body;
    const r = await get('bad.test', '/crash');
    expect(r.status).toBe(502);
    expect(r.json?.code).toBe('WEFT_ERR_INSTANCE_CRASHED');
    // Another actor is not disturbed.
    expect((await get('good.test', '/hello?name=still')).body).toBe('Hello, still!\n');
    const pid2 = await until(
      async () => {
        const p = await get('bad.test', '/pid');
        return p.status === 200 ? p.body : undefined;
      },
      { name: 'restarted instance', timeoutMs: 15_000 },
    );
    expect(pid2).not.toBe(pid1);
    const a = await inventory('misbehave');
    expect(a?.instances?.[0]?.restarts).toBeGreaterThanOrEqual(1);
    expect(logLines.some((l) => l.msg === 'instance ended; restarting')).toBe(true);
  });
});

describe('a multi-threaded proxy actor', () => {
  it('serves concurrent requests on threads of its own', async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => get('threads.test', `/hello?name=t${i}`)),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(`Hello, t${i}!\n`);
    });
    const tid = Number((await get('threads.test', '/tid')).body);
    // Connections are served by spawned threads, never by the main thread (tid 1).
    expect(tid).toBeGreaterThan(1);
  });

  it('cannot run more threads than limits.maxThreads, and says so', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => get('capped.test', `/hello?name=c${i}`)),
    );
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 503);
    expect(ok.length + refused.length).toBe(10);
    expect(refused.length).toBeGreaterThan(0);
    expect(
      logLines.some(
        (l) =>
          typeof l.msg === 'string' && l.msg.includes('more than 2 threads (limits.maxThreads)'),
      ),
    ).toBe(true);
  });
});

describe('a proxy actor with several instances', () => {
  it('runs each as its own long-lived process and spreads concurrent requests over them', async () => {
    const pids = new Set<number>();
    for (let round = 0; round < 5 && pids.size < 2; round++) {
      const all = await Promise.all(
        Array.from(
          { length: 8 },
          async () => (JSON.parse((await get('pair.test', '/stats')).body) as { pid: number }).pid,
        ),
      );
      for (const p of all) pids.add(p);
    }
    expect(pids.size).toBe(2);
    const a = await inventory('pair');
    expect(a?.instances?.map((i) => i.state)).toEqual(['ready', 'ready']);
  });
});

describe('a proxy actor that fails to start', () => {
  it('listening on an ungranted port is refused, and the actor is reported failed with why', async () => {
    await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: ungranted, version: 1.0.0 }
spec:
  actors:${proxyActor('ungranted', join(FIXTURES_DIST, 'proxy-misbehave.wasm'), 'ungranted.test', '\n      env: { MODE: ungranted, BAD_PORT: "8081" }')}
`);
    const a = await inventory('ungranted');
    expect(a?.state).toBe('failed');
    expect(a?.error).toMatch(/listen on port 8081 denied/);
    expect(a?.error).toMatch(/exited with code 1/);
    expect((await get('ungranted.test', '/ok')).status).toBeGreaterThanOrEqual(500);
  });

  it('never listening is reported after the start timeout', async () => {
    await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: never, version: 1.0.0 }
spec:
  actors:${proxyActor('never', join(FIXTURES_DIST, 'proxy-misbehave.wasm'), 'never.test', '\n      env: { MODE: never }\n      limits: { startTimeoutMs: 1000 }')}
`);
    const a = await inventory('never');
    expect(a?.state).toBe('failed');
    expect(a?.error).toMatch(/did not listen on port 80 within 1000 ms \(limits\.startTimeoutMs\)/);
    // The host still serves everything else.
    expect((await get('good.test', '/hello')).status).toBe(200);
  });
});
