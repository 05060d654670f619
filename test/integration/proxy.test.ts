/**
 * Proxy mode end to end: a C HTTP server compiled to WASIX (actors/httpd) runs as a long-lived
 * instance on a host, listens on its WASIX socket, and serves requests the gateway sends over
 * NATS, which the host forwards to it as HTTP/1.1 over keep-alive connections.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { HostInventory } from '../../lattice/index.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { ACTORS_DIST, startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
let base: string;
const { log, lines: logLines } = captureLogs();

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { log });
  await stack.deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: web, version: 1.0.0 }
spec:
  actors:
    - name: httpd
      module: ${join(ACTORS_DIST, 'httpd.wasm')}
      mode: proxy
      routes: [{ path: /proxy/... }]
`);
  base = stack.gateway.url;
});

afterAll(async () => {
  await stack?.stop();
});

async function stats(): Promise<{ pid: number; requests: number; connections: number }> {
  const res = await fetch(`${base}/proxy/stats`);
  expect(res.status).toBe(200);
  return (await res.json()) as { pid: number; requests: number; connections: number };
}

describe('a proxy actor', () => {
  it('serves its own routes through the gateway', async () => {
    const res = await fetch(`${base}/proxy/hello?name=Ada`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('Hello, Ada!\n');
    expect(res.headers.get('x-weft-invocation-id')).toMatch(/.+/);
    const missing = await fetch(`${base}/proxy/nope`);
    expect(missing.status).toBe(404);
  });

  it('is one long-lived instance that keeps its connections alive between requests', async () => {
    const before = await stats();
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${base}/proxy/hello`);
      expect(r.status).toBe(200);
      await r.text();
    }
    const after = await stats();
    expect(after.pid).toBe(before.pid);
    expect(after.requests - before.requests).toBe(21);
    // Sequential requests reuse one connection: none was opened for them.
    expect(after.connections).toBe(before.connections);
  });

  it('answers 64 concurrent requests, each its own', async () => {
    const results = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const r = await fetch(`${base}/proxy/hello?name=n${i}`);
        return { status: r.status, text: await r.text() };
      }),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.text).toBe(`Hello, n${i}!\n`);
    });
  });

  it('echoes a 5 MiB POST byte for byte', async () => {
    const body = new Uint8Array(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 3) & 0xff;
    const res = await fetch(`${base}/proxy/echo`, { method: 'POST', body });
    expect(res.status).toBe(200);
    const got = new Uint8Array(await res.arrayBuffer());
    expect(got.length).toBe(body.length);
    expect(Buffer.compare(got, body)).toBe(0);
  });

  it('passes a chunked response on de-chunked, and large bodies whole', async () => {
    const res = await fetch(`${base}/proxy/chunked?n=5`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n');
    const big = await fetch(`${base}/proxy/bytes?n=3000000`);
    expect(big.status).toBe(200);
    // Large enough to be streamed; the length the actor declared is passed on.
    expect(big.headers.get('content-length')).toBe('3000000');
    const bytes = new Uint8Array(await big.arrayBuffer());
    expect(bytes.byteLength).toBe(3_000_000);
    expect(bytes.every((b, i) => b === i % 251)).toBe(true);
  });

  it('streams a response while the actor writes it', async () => {
    const decoder = new TextDecoder();
    const res = await fetch(`${base}/proxy/stream?n=3`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBeNull();
    const reader = res.body!.getReader();
    let got = '';
    while (!got.includes('part 2\n')) {
      const { value, done } = await reader.read();
      expect(done).toBe(false);
      got += decoder.decode(value, { stream: true });
    }
    expect(got).toBe('part 0\npart 1\npart 2\n');
    // Only now may the actor finish the response: had it been buffered whole, the client would
    // never have seen the parts above.
    const release = await fetch(`${base}/proxy/release`);
    expect(await release.text()).toBe('released 1\n');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got += decoder.decode(value, { stream: true });
    }
    expect(got).toBe('part 0\npart 1\npart 2\nend\n');
  });

  it('sees the forwarded request headers', async () => {
    const res = await fetch(`${base}/proxy/headers`, { headers: { 'x-custom': 'yes' } });
    const h = (await res.json()) as Record<string, string>;
    expect(h['x-custom']).toBe('yes');
    expect(h['x-forwarded-for']).toMatch(/127\.0\.0\.1/);
    expect(h['x-weft-invocation-id']).toMatch(/.+/);
    expect(h['host']).toMatch(/127\.0\.0\.1/);
  });

  it('reports its instances in the host inventory and logs that it listens', async () => {
    const inv = await stack.client.gather<HostInventory>(stack.client.subjects.hostPing(), {}, 300);
    const a = inv[0]!.actors.find((x) => x.name === 'httpd')!;
    expect(a.mode).toBe('proxy');
    expect(a.state).toBe('running');
    expect(a.instances).toEqual([expect.objectContaining({ index: 0, state: 'ready' })]);
    expect(logLines.some((l) => l.msg === 'instance listening' && l.port === 80)).toBe(true);
  });
});
