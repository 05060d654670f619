/**
 * actors/fetch-as: the AssemblyScript binding of `weft_http` (actors/assemblyscript) in a WCGI
 * actor, through a real gateway and host, against real servers on 127.0.0.1: a granted call
 * with its body both ways (binary, and a response past the binding's first read buffer), the
 * upstream's status and content-type passed on, a denial with the host's reason, several calls
 * in one invocation, and the per-invocation request cap.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { ACTORS_DIST, startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
let upstream: Server;
let other: Server;
let port = 0;
let otherPort = 0;
const seen = { upstream: [] as string[], other: [] as string[] };
/** 1 MiB where byte i is i % 251: larger than any one read of the binding. */
const BIG = Uint8Array.from({ length: 1024 * 1024 }, (_v, i) => i % 251);

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.upstream.push(`${req.method} ${req.url} ${req.headers['user-agent']}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/echo') {
        res.writeHead(201, { 'content-type': 'application/x-echo' });
        res.end(Buffer.concat(chunks));
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(BIG);
      } else if (req.url === '/missing') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no such thing');
      } else {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`upstream data for ${req.headers['user-agent']} at ${req.url}`);
      }
    });
  });
  other = createServer((req, res) => {
    seen.other.push(`${req.method} ${req.url}`);
    res.end('secret');
  });
  port = await listen(upstream);
  otherPort = await listen(other);
  stack = await startStack(inject('natsUrl'));
  await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: fetch-as, version: 1.0.0 }
spec:
  actors:
    - name: fetch-as
      module: ${join(ACTORS_DIST, 'fetch-as.wasm')}
      env: { UPSTREAM: "http://127.0.0.1:${port}" }
      capabilities: { outboundHttp: ["http://127.0.0.1:${port}"] }
      limits: { maxOutboundRequests: 4 }
      routes: [{ path: /fetch-as }]
`);
});

afterAll(async () => {
  await stack?.stop();
  upstream?.close();
  other?.close();
});

const q = encodeURIComponent;

it('calls a granted server and answers with its status, type and body', async () => {
  const res = await fetch(`${stack.gateway.url}/fetch-as?path=${q('/data?x=1 2')}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(res.headers.get('x-fetch-made')).toBe('1');
  expect(await res.text()).toBe('upstream data for weft-fetch-as at /data?x=1%202');

  const missing = await fetch(`${stack.gateway.url}/fetch-as?path=/missing`);
  expect(missing.status).toBe(404);
  expect(await missing.text()).toBe('no such thing');
});

it('sends a request body and reads a response body byte for byte', async () => {
  const body = Uint8Array.from({ length: 300_000 }, (_v, i) => (i * 7) % 256);
  const echoed = await fetch(`${stack.gateway.url}/fetch-as?path=/echo`, { method: 'POST', body });
  expect(echoed.status).toBe(201);
  expect(echoed.headers.get('content-type')).toBe('application/x-echo');
  expect(Buffer.compare(new Uint8Array(await echoed.arrayBuffer()), body)).toBe(0);

  const big = await fetch(`${stack.gateway.url}/fetch-as?url=${q(`http://127.0.0.1:${port}/big`)}`);
  expect(big.status).toBe(200);
  expect(Buffer.compare(new Uint8Array(await big.arrayBuffer()), BIG)).toBe(0);
});

it('is denied what is not granted, and shows the host reason', async () => {
  const res = await fetch(
    `${stack.gateway.url}/fetch-as?url=${q(`http://127.0.0.1:${otherPort}/secret`)}`,
  );
  expect(res.status).toBe(502);
  expect(await res.text()).toMatch(
    new RegExp(`^weft_http error -1 after 0 request\\(s\\): .*127\\.0\\.0\\.1:${otherPort}.*\n$`),
  );
  expect(seen.other).toEqual([]);

  const bad = await fetch(`${stack.gateway.url}/fetch-as?url=${q('ftp://127.0.0.1/x')}`);
  expect(bad.status).toBe(502);
  expect(await bad.text()).toMatch(/^weft_http error -2 after 0 request\(s\): .*ftp:/);
});

it('makes several calls in one invocation, up to limits.maxOutboundRequests', async () => {
  const before = seen.upstream.length;
  const three = await fetch(`${stack.gateway.url}/fetch-as?path=/data&count=3`);
  expect(three.status).toBe(200);
  expect(three.headers.get('x-fetch-made')).toBe('3');
  await three.text();
  expect(seen.upstream.length - before).toBe(3);

  const capped = await fetch(`${stack.gateway.url}/fetch-as?path=/data&count=100`);
  expect(capped.status).toBe(502);
  expect(await capped.text()).toMatch(
    /^weft_http error -7 after 4 request\(s\): .*maxOutboundRequests/,
  );
  expect(seen.upstream.length - before).toBe(7);
});
