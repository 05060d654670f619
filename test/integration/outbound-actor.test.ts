/**
 * The outbound HTTP capability from a guest's side: actors/fetch calls out through `weft_http`,
 * and the host's policy decides. Real servers on 127.0.0.1, a real gateway and host: a granted
 * call with its body both ways, every denial the issue names (an ungranted host, a granted name
 * that resolves to loopback, the metadata address under a grant of everything, a redirect to an
 * ungranted port), the per-invocation request cap, and the log line of a denial.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { captureLogs } from '../helpers/log-capture.ts';
import { ACTORS_DIST, startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
const logs = captureLogs();
let upstream: Server;
let other: Server;
let port = 0;
let otherPort = 0;
/** Requests each upstream server has received. */
const seen = { upstream: [] as string[], other: [] as string[] };

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

const actor = (name: string, grants: string, extra = ''): string => `
    - name: ${name}
      module: ${join(ACTORS_DIST, 'fetch.wasm')}
      env: { UPSTREAM: "http://127.0.0.1:${port}" }
      capabilities: { outboundHttp: [${grants}] }
      routes: [{ path: /${name} }]${extra}`;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.upstream.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/redirect-away') {
        res.writeHead(302, { location: `http://127.0.0.1:${otherPort}/stolen` });
        res.end();
      } else if (req.url === '/redirect-home') {
        res.writeHead(302, { location: '/data' });
        res.end();
      } else if (req.url === '/echo') {
        res.writeHead(201, { 'content-type': 'application/x-echo' });
        res.end(Buffer.concat(chunks));
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`upstream data for ${req.headers['user-agent']}`);
      }
    });
  });
  other = createServer((req, res) => {
    seen.other.push(`${req.method} ${req.url}`);
    res.end('secret');
  });
  port = await listen(upstream);
  otherPort = await listen(other);
  stack = await startStack(inject('natsUrl'), { log: logs.log });
  await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: outbound, version: 1.0.0 }
spec:
  actors:${actor('granted', `"http://127.0.0.1:${port}"`)}${actor('none', '')}${actor(
    'byname',
    `"http://localhost:${port}"`,
  )}${actor('everything', '"*://*:*"')}${actor(
    'capped',
    `"http://127.0.0.1:${port}"`,
    '\n      limits: { maxOutboundRequests: 5 }',
  )}
`);
});

afterAll(async () => {
  await stack?.stop();
  upstream?.close();
  other?.close();
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await fetch(`${stack.gateway.url}${path}`, init);
  return { status: res.status, text: await res.text() };
}

const q = encodeURIComponent;

it('calls a granted server, with the body both ways', async () => {
  const r = await fetch(`${stack.gateway.url}/granted?path=${q('/data')}`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toBe('text/plain');
  expect(await r.text()).toBe('upstream data for weft-fetch');

  const posted = await fetch(`${stack.gateway.url}/granted?path=${q('/echo')}`, {
    method: 'POST',
    body: 'sent upstream',
  });
  expect(posted.status).toBe(201);
  expect(posted.headers.get('content-type')).toBe('application/x-echo');
  expect(await posted.text()).toBe('sent upstream');
  // A redirect to a granted place is followed.
  expect((await get(`/granted?path=${q('/redirect-home')}`)).text).toMatch(/^upstream data/);
});

it('denies what is not granted, before any connection, and the guest gets the reason', async () => {
  const before = seen.upstream.length;
  const none = await get(`/none?path=${q('/data')}`);
  expect(none.status).toBe(502);
  expect(none.text).toMatch(/^weft_http error -1 after 0 request\(s\): .*127\.0\.0\.1/);

  // localhost is granted by name, but it resolves to a loopback address that is not.
  const byname = await get(`/byname?url=${q(`http://localhost:${port}/data`)}`);
  expect(byname.status).toBe(502);
  expect(byname.text).toMatch(/^weft_http error -1 .*loopback/);

  // A grant of everything still does not reach the metadata or loopback addresses.
  const metadata = await get(`/everything?url=${q('http://169.254.169.254/latest/meta-data/')}`);
  expect(metadata.text).toMatch(/^weft_http error -1 /);
  const loop = await get(`/everything?url=${q(`http://127.0.0.1:${port}/data`)}`);
  expect(loop.text).toMatch(/^weft_http error -1 /);
  expect(seen.upstream.length).toBe(before);

  // A granted server redirecting to an ungranted port: the redirect is not followed.
  const away = await get(`/granted?path=${q('/redirect-away')}`);
  expect(away.status).toBe(502);
  expect(away.text).toMatch(/^weft_http error -1 .*127\.0\.0\.1:\d+/);
  expect(seen.other).toEqual([]);

  // The host logs a denial with the actor, the URL and why.
  const line = logs.lines.find(
    (l) =>
      l['msg'] === 'outbound request failed' &&
      l['actor'] === 'none' &&
      (l['outbound'] as { outcome?: string }).outcome === 'denied',
  );
  expect(line).toBeDefined();
  expect((line!['outbound'] as { url: string }).url).toBe(`http://127.0.0.1:${port}/data`);
  expect((line!['outbound'] as { reason: string }).reason).toBeTruthy();
});

it('stops a fork bomb of requests at limits.maxOutboundRequests', async () => {
  const before = seen.upstream.length;
  const r = await get(`/capped?path=${q('/data')}&count=1000`);
  expect(r.status).toBe(502);
  expect(r.text).toMatch(/^weft_http error -7 after 5 request\(s\): .*maxOutboundRequests/);
  expect(seen.upstream.length - before).toBe(5);
  // The next invocation has its own allowance.
  expect((await get(`/capped?path=${q('/data')}&count=5`)).status).toBe(200);
});
