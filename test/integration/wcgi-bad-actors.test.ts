/**
 * Actors that misbehave get a clear status and error id, and the host and gateway keep serving
 * other requests meanwhile.
 */
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { until } from '../helpers/until.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { ACTORS_DIST, FIXTURES_DIST, startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
let base: string;

const fixture = (name: string, limits = '', module = name): string => `
    - name: ${name}
      module: ${join(FIXTURES_DIST, `${module}.wasm`)}
      routes: [{ path: /${name}/... }]${limits ? `\n      limits: { ${limits} }` : ''}`;

/** The host's and gateway's pino lines, as a user would read them. */
const { log, lines: logLines } = captureLogs();

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { log });
  await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: bad, version: 1.0.0 }
spec:
  actors:
    - name: hello
      module: ${join(ACTORS_DIST, 'hello.wasm')}
      routes: [{ path: /hello }]
${[
  fixture('trap'),
  fixture('spin', 'timeoutMs: 1000'),
  fixture('no-headers'),
  fixture('garbage-headers'),
  fixture('flood', 'maxResponseBytes: 8388608'),
  fixture('exit-early'),
  fixture('env-dump'),
  fixture('counter'),
  fixture('slow', 'maxConcurrency: 1, maxQueue: 0'),
  fixture('queued', 'maxConcurrency: 1, maxQueue: 2', 'slow'),
  fixture('stderr-log'),
  fixture('memory-bomb', 'memoryMiB: 32'),
].join('')}
`);
  base = stack.gateway.url;
});

afterAll(async () => {
  await stack?.stop();
});

async function errorOf(
  path: string,
): Promise<{ status: number; code: string; invocationId: string }> {
  const res = await fetch(`${base}${path}`);
  const j = (await res.json()) as { code: string; invocationId: string; statusCode: number };
  expect(j.statusCode).toBe(res.status);
  return { status: res.status, code: j.code, invocationId: j.invocationId };
}

async function helloStillServes(): Promise<void> {
  const res = await fetch(`${base}/hello?name=ok`);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('ok');
}

describe('misbehaving actors', () => {
  it('a trap is a 500 with an error id, logged with the trap message', async () => {
    const e = await errorOf('/trap/');
    expect(e.status).toBe(500);
    expect(e.code).toBe('WEFT_ERR_ACTOR_TRAP');
    expect(e.invocationId).toMatch(/\w{8,}/);
    const line = await until(
      () =>
        logLines.find((l) => l['msg'] === 'actor trapped' && l['invocationId'] === e.invocationId),
      { name: 'trap log line' },
    );
    expect(line['trap']).toMatch(/unreachable/);
    expect(line['actor']).toBe('trap');
    expect(line['hostId']).toBe(stack.hosts[0]!.hostId);
    // The gateway's line carries the same id.
    await until(
      () =>
        logLines.find((l) => l['component'] === 'gateway' && l['invocationId'] === e.invocationId),
      { name: 'gateway log line' },
    );
    await helloStillServes();
  });

  it('an endless loop is a 504 after timeoutMs, and the worker is replaced', async () => {
    const replacedBefore = stack.hosts[0]!.inventory().workersReplaced;
    const slow = errorOf('/spin/');
    // Other actors keep serving while one worker spins.
    await helloStillServes();
    const e = await slow;
    expect(e.status).toBe(504);
    expect(e.code).toBe('WEFT_ERR_TIMEOUT');
    // Both workers busy with spinning guests: both are stopped and replaced.
    const both = await Promise.all([errorOf('/spin/'), errorOf('/spin/')]);
    expect(both.map((b) => b.status)).toEqual([504, 504]);
    await helloStillServes();
    expect(stack.hosts[0]!.inventory().workersReplaced).toBe(replacedBefore + 3);
    expect(stack.hosts[0]!.inventory().workers).toBe(2);
  });

  it('a memory bomb gets no more than memoryMiB: its grows fail, and the host serves on', async () => {
    for (const query of ['', '?malloc=1']) {
      const res = await fetch(`${base}/memory-bomb/${query}`);
      const text = await res.text();
      expect(text).toMatch(/^memory \d+ MiB, grow refused\n$/);
      expect(res.status).toBe(200);
      const m = /^memory (\d+)/.exec(text);
      expect(Number(m![1])).toBeLessThanOrEqual(32);
      expect(Number(m![1])).toBeGreaterThan(16);
    }
    await helloStillServes();
  });

  it('output without headers is a 502', async () => {
    const e = await errorOf('/no-headers/');
    expect(e.status).toBe(502);
    expect(e.code).toBe('WEFT_ERR_BAD_CGI_RESPONSE');
  });

  it('garbage headers are a 502, never forwarded', async () => {
    const e = await errorOf('/garbage-headers/');
    expect(e.status).toBe(502);
    expect(e.code).toBe('WEFT_ERR_BAD_CGI_RESPONSE');
  });

  it('100 MiB on stdout is capped: 502', async () => {
    const e = await errorOf('/flood/');
    expect(e.status).toBe(502);
    expect(e.code).toBe('WEFT_ERR_RESPONSE_TOO_LARGE');
    await helloStillServes();
  });

  it('exiting non-zero before headers is a 502', async () => {
    const e = await errorOf('/exit-early/');
    expect(e.status).toBe(502);
    expect(e.code).toBe('WEFT_ERR_ACTOR_EXITED');
  });
});

describe('limits and logs', () => {
  it('answers 503 when an actor is at maxConcurrency with no queue', async () => {
    const [a, b] = await Promise.all([
      fetch(`${base}/slow/?ms=400`),
      fetch(`${base}/slow/?ms=400`),
    ]);
    const statuses = [a.status, b.status].toSorted();
    expect(statuses).toEqual([200, 503]);
    const rejected = a.status === 503 ? a : b;
    expect(((await rejected.json()) as { code: string }).code).toBe('WEFT_ERR_OVERLOADED');
  });

  it('queues up to maxQueue behind maxConcurrency, and answers 503 past that', async () => {
    const all = await Promise.all(Array.from({ length: 5 }, () => fetch(`${base}/queued/?ms=600`)));
    const statuses = all.map((r) => r.status).toSorted();
    // One runs, two wait their turn, two find the queue full.
    expect(statuses).toEqual([200, 200, 200, 503, 503]);
    for (const r of all.filter((x) => x.status === 503)) {
      expect(((await r.json()) as { code: string }).code).toBe('WEFT_ERR_OVERLOADED');
    }
  });

  it("an actor's stderr reaches the log with its invocation id", async () => {
    const res = await fetch(`${base}/stderr-log/`);
    expect(await res.text()).toBe('ok');
    const id = res.headers.get('x-weft-invocation-id');
    const line = await until(
      () => logLines.find((l) => l['msg'] === 'actor stderr' && l['invocationId'] === id),
      { name: 'stderr log line' },
    );
    expect(line['line']).toBe('actor says hi');
    expect(line['actor']).toBe('stderr-log');
  });
});

describe('isolation between requests', () => {
  it('every request starts from a fresh instance state', async () => {
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${base}/counter/?secret${i}`);
      expect(await res.text()).toBe('runs=1 previous=[]\n');
    }
  });

  it('a trap leaves nothing behind for the next request', async () => {
    expect((await fetch(`${base}/trap/`)).status).toBe(500);
    expect(await (await fetch(`${base}/counter/?after-trap`)).text()).toBe('runs=1 previous=[]\n');
  });
});

describe('hostile requests', () => {
  it('a Proxy header never becomes HTTP_PROXY; credentials are not exported', async () => {
    const res = await fetch(`${base}/env-dump/x?a=1`, {
      headers: {
        proxy: 'http://evil.example:1',
        authorization: 'Basic Zm9vOmJhcg==',
        'x-ok': 'yes',
      },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toMatch(/^HTTP_PROXY=/m);
    expect(text).not.toMatch(/^HTTP_AUTHORIZATION=/m);
    expect(text).toMatch(/^HTTP_X_OK=yes$/m);
    expect(text).toMatch(/^QUERY_STRING=a=1$/m);
    expect(text).toMatch(/^SCRIPT_NAME=\/env-dump$/m);
    expect(text).toMatch(/^PATH_INFO=\/x$/m);
    expect(text).toMatch(/^GATEWAY_INTERFACE=CGI\/1\.1$/m);
    expect(text).toMatch(/^REQUEST_METHOD=GET$/m);
  });

  it('CR, LF or NUL in a header value is refused and the gateway keeps serving', async () => {
    const url = new URL(base);
    for (const evil of ['X-Evil: a\rInjected: 1', 'X-Evil: a\0b']) {
      const reply = await new Promise<string>((resolve) => {
        const s = connect({ host: url.hostname, port: Number(url.port) }, () => {
          s.write(`GET /env-dump/ HTTP/1.1\r\nHost: x\r\n${evil}\r\nConnection: close\r\n\r\n`);
        });
        let buf = '';
        s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
        s.on('close', () => resolve(buf));
        s.on('error', () => resolve(buf));
      });
      expect(reply).toMatch(/^HTTP\/1\.1 400/);
      expect(reply).not.toContain('HTTP_INJECTED');
    }
    await helloStillServes();
  });

  it('paths with .. or %2e%2e cannot climb out; traversal above root is 400', async () => {
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        // A URL string would be normalized by WHATWG URL parsing: send the path as written.
        const u = new URL(base);
        const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const a = await get('/hello/../env-dump/q');
    expect(a.status).toBe(200);
    expect(a.body).toMatch(/^SCRIPT_NAME=\/env-dump$/m);
    const b = await get('/env-dump/%2e%2e/%2E%2e/etc/passwd');
    expect(b.status).toBe(400);
    expect(JSON.parse(b.body).code).toBe('WEFT_ERR_BAD_REQUEST');
    const c = await get('/env-dump/a%2f..%2fb');
    expect(c.status).toBe(400);
  });
});
