/**
 * Metrics and health end to end: a nats-server of this file's own (so that it can be restarted), a
 * host and a gateway each serving `/metrics`, `/livez` and `/readyz`, WCGI and proxy actors that
 * real HTTP requests reach through the gateway. Counts are read back from the Prometheus text and
 * compared with what was sent: exactly N invocations, the bytes each way, the error by its code,
 * an outbound request allowed and one denied, a reconnect after NATS came back. Readiness follows
 * an actor that is still starting, a NATS outage and a draining host.
 */
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Host } from '../../host/index.ts';
import {
  appStatus,
  connectLattice,
  deployApplication,
  parseManifest,
  undeployApplication,
  type LatticeClient,
} from '../../lattice/index.ts';
import { Gateway } from '../../providers/http-gateway/index.ts';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats-server.ts';
import { metricValue, scrape, type Sample } from '../helpers/prometheus.ts';
import { ACTORS_DIST, FIXTURES_DIST, newLattice } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const log = pino({ level: 'silent' });
const APP = 'm';
let nats: NatsServerHandle;
let host: Host;
let gateway: Gateway;
let client: LatticeClient;
let upstream: Server;
let upstreamPort = 0;
let hostMetrics = '';
let gatewayMetrics = '';
const lattice = newLattice();

async function deploy(yaml: string): Promise<string> {
  const app = await deployApplication(
    client,
    parseManifest(yaml, 'inline.yaml'),
    join(ACTORS_DIST, 'app.yaml'),
  );
  return app.name;
}

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end('upstream data'));
  upstreamPort = await new Promise<number>((resolve) =>
    upstream.listen(0, '127.0.0.1', () => resolve((upstream.address() as AddressInfo).port)),
  );
  nats = await startNatsServer();
  host = new Host({
    nats: nats.url,
    lattice,
    log,
    workers: 2,
    heartbeatMs: 500,
    metrics: { host: '127.0.0.1', port: 0 },
  });
  await host.start();
  gateway = new Gateway({
    nats: nats.url,
    lattice,
    log,
    port: 0,
    retryMs: 200,
    metrics: { host: '127.0.0.1', port: 0 },
  });
  await gateway.start();
  await gateway.connected();
  client = await connectLattice({ servers: nats.url, lattice });
  hostMetrics = `${host.metricsUrl}/metrics`;
  gatewayMetrics = `${gateway.url}/_weft/metrics`;
  const fetchActor = (name: string, grants: string): string => `
    - name: ${name}
      module: ${join(ACTORS_DIST, 'fetch.wasm')}
      env: { UPSTREAM: "http://127.0.0.1:${upstreamPort}" }
      capabilities: { outboundHttp: [${grants}] }
      routes: [{ path: /${name} }]`;
  await deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: ${APP}, version: 1.0.0 }
spec:
  actors:
    - name: hello
      module: ${join(ACTORS_DIST, 'hello.wasm')}
      routes: [{ path: /hello }, { path: /... }]
    - name: trap
      module: ${join(FIXTURES_DIST, 'trap.wasm')}
      routes: [{ path: /trap }]
    - name: httpd
      module: ${join(ACTORS_DIST, 'httpd.wasm')}
      mode: proxy
      routes: [{ path: /proxy/... }]${fetchActor('fetch-denied', '')}${fetchActor(
        'fetch-granted',
        `"http://127.0.0.1:${upstreamPort}"`,
      )}
`);
  await until(
    async () => {
      const st = await appStatus(client, APP).catch(() => undefined);
      return st?.state === 'running' && gateway.routes.entries().length === 6;
    },
    { name: 'application running and routed', timeoutMs: 30_000 },
  );
});

afterAll(async () => {
  await client?.close();
  await gateway?.stop();
  await host?.stop().catch(() => undefined);
  await nats?.stop();
  // A restarted server was given the first one's directory, which it does not remove.
  if (nats) await rm(nats.dir, { recursive: true, force: true });
  upstream?.close();
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await fetch(`${gateway.url}${path}`, init);
  return { status: res.status, text: await res.text() };
}

async function readyz(url: string): Promise<{ status: number; reasons: string[] }> {
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; reasons?: string[] };
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(body.status).toBe(res.status === 200 ? 'ready' : 'not ready');
  return { status: res.status, reasons: body.reasons ?? [] };
}

/** The change of each named series between two scrapes. */
function delta(before: Sample[], after: Sample[], name: string, labels: Record<string, string>) {
  return metricValue(after, name, labels) - metricValue(before, name, labels);
}

describe('health', () => {
  it('answers /livez and /readyz on the host and on both gateway listeners', async () => {
    const urls = [host.metricsUrl!, gateway.metricsUrl!, `${gateway.url}/_weft`];
    for (const base of urls) {
      const live = await fetch(`${base}/livez`);
      expect(live.status).toBe(200);
      expect(await live.text()).toBe('ok\n');
      expect(await readyz(`${base}/readyz`)).toEqual({ status: 200, reasons: [] });
    }
    // The host's and the gateway's metrics listeners answer the /_weft/ names too.
    expect((await fetch(`${host.metricsUrl}/_weft/livez`)).status).toBe(200);
    expect((await fetch(`${host.metricsUrl}/nope`)).status).toBe(404);
    expect((await fetch(`${host.metricsUrl}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it("keeps /_weft/ for itself on the gateway's listener, and leaves the plain names to routes", async () => {
    // hello has the catch-all route /...: /metrics is the application's.
    expect(await get('/metrics')).toEqual({ status: 200, text: 'Hello, world!\n' });
    const res = await fetch(`${gateway.url}/_weft/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await res.text()).toMatch(/^# HELP weft_/m);
  });

  it('without the dashboard, keeps only the probes under /_weft/ on the gateway', async () => {
    const g = new Gateway({ nats: nats.url, lattice, log, port: 0, dashboard: false });
    await g.start();
    try {
      await g.connected();
      expect((await fetch(`${g.url}/_weft/livez`)).status).toBe(200);
      expect((await readyz(`${g.url}/_weft/readyz`)).status).toBe(200);
      // Not the catch-all route's either.
      const m = await fetch(`${g.url}/_weft/metrics`);
      expect(m.status).toBe(404);
      expect(await m.text()).toBe('metrics are not served on this listener\n');
    } finally {
      await g.stop();
    }
  });

  it('is not ready while an actor placed on the host is starting, and ready once it settled', async () => {
    await deploy(`apiVersion: weft/v1
kind: Application
metadata: { name: slow, version: 1.0.0 }
spec:
  actors:
    - name: never
      module: ${join(FIXTURES_DIST, 'proxy-misbehave.wasm')}
      mode: proxy
      env: { MODE: never }
      limits: { startTimeoutMs: 4000 }
      routes: [{ path: /never/... }]
`);
    const state = (): string | undefined =>
      host.inventory().actors.find((a) => a.name === 'never')?.state;
    const url = `${host.metricsUrl}/readyz`;
    // Placed here, and starting until it listens or its start timeout fails it.
    const notReady = await until(
      async () => {
        const r = await readyz(url);
        return r.status === 503 && r;
      },
      { name: 'host not ready', timeoutMs: 10_000 },
    );
    expect(notReady.reasons).toEqual(['actor never starting']);
    expect(state()).toBeUndefined();
    expect(metricValue(await scrape(hostMetrics), 'weft_ready')).toBe(0);
    // The gateway does not depend on the host's actors.
    expect((await readyz(`${gateway.metricsUrl}/readyz`)).status).toBe(200);

    await until(() => state() === 'failed', { name: 'never failed', timeoutMs: 15_000 });
    expect(await readyz(url)).toEqual({ status: 200, reasons: [] });
    expect(
      metricValue(await scrape(hostMetrics), 'weft_actors', { actor: 'never', state: 'failed' }),
    ).toBe(1);
    await undeployApplication(client, 'slow');
    await until(() => state() === undefined, { name: 'never gone', timeoutMs: 10_000 });
  });
});

describe('metrics', () => {
  it('counts every WCGI invocation, its bytes, duration and instance start', async () => {
    const N = 7;
    const [h0, g0] = [await scrape(hostMetrics), await scrape(gatewayMetrics)];
    let bytesOut = 0;
    for (let i = 0; i < N; i++) {
      const r = await get(`/hello?name=n${i}`);
      expect(r).toEqual({ status: 200, text: `Hello, n${i}!\n` });
      bytesOut += Buffer.byteLength(r.text);
    }
    const [h1, g1] = [await scrape(hostMetrics), await scrape(gatewayMetrics)];
    const hello = { app: APP, actor: 'hello', mode: 'wcgi' };
    expect(delta(h0, h1, 'weft_invocations_total', { ...hello, outcome: 'ok' })).toBe(N);
    expect(delta(h0, h1, 'weft_invocations_total', { ...hello, outcome: 'error' })).toBe(0);
    expect(delta(h0, h1, 'weft_invocation_duration_seconds_count', hello)).toBe(N);
    expect(delta(h0, h1, 'weft_instance_start_seconds_count', hello)).toBe(N);
    expect(
      delta(h0, h1, 'weft_invocation_bytes_total', { app: APP, actor: 'hello', direction: 'out' }),
    ).toBe(bytesOut);
    // Every observation is in the +Inf bucket, and the sum is a positive number of seconds.
    expect(delta(h0, h1, 'weft_invocation_duration_seconds_bucket', { ...hello, le: '+Inf' })).toBe(
      N,
    );
    expect(delta(h0, h1, 'weft_invocation_duration_seconds_sum', hello)).toBeGreaterThan(0);
    const route = { app: APP, actor: 'hello', route: '/hello', status_class: '2xx' };
    expect(delta(g0, g1, 'weft_http_request_duration_seconds_count', route)).toBe(N);
    // Nothing else was counted for hello on the gateway (the scrapes are not routed).
    expect(delta(g0, g1, 'weft_http_request_duration_seconds_count', { actor: 'hello' })).toBe(N);
  });

  it('counts a failed invocation by its error code, on the host and the gateway', async () => {
    const [h0, g0] = [await scrape(hostMetrics), await scrape(gatewayMetrics)];
    const r = await get('/trap');
    expect(r.status).toBe(500);
    expect(JSON.parse(r.text)).toMatchObject({ code: 'WEFT_ERR_ACTOR_TRAP' });
    const [h1, g1] = [await scrape(hostMetrics), await scrape(gatewayMetrics)];
    const trap = { app: APP, actor: 'trap', mode: 'wcgi' };
    expect(delta(h0, h1, 'weft_invocations_total', { ...trap, outcome: 'error' })).toBe(1);
    expect(delta(h0, h1, 'weft_invocations_total', { ...trap, outcome: 'ok' })).toBe(0);
    expect(
      delta(h0, h1, 'weft_invocation_errors_total', { ...trap, code: 'WEFT_ERR_ACTOR_TRAP' }),
    ).toBe(1);
    expect(delta(h0, h1, 'weft_invocation_errors_total', {})).toBe(1);
    expect(
      delta(g0, g1, 'weft_http_request_duration_seconds_count', {
        actor: 'trap',
        status_class: '5xx',
      }),
    ).toBe(1);
    expect(
      delta(g0, g1, 'weft_http_request_errors_total', {
        app: APP,
        actor: 'trap',
        code: 'WEFT_ERR_ACTOR_TRAP',
      }),
    ).toBe(1);
  });

  it('counts proxy invocations, bytes in and out, and its one instance', async () => {
    const N = 5;
    const h0 = await scrape(hostMetrics);
    const body = 'x'.repeat(1000);
    let bytesOut = 0;
    for (let i = 0; i < N; i++) {
      const r = await get('/proxy/echo', { method: 'POST', body });
      expect(r).toEqual({ status: 200, text: body });
      bytesOut += r.text.length;
    }
    const h1 = await scrape(hostMetrics);
    const httpd = { app: APP, actor: 'httpd', mode: 'proxy' };
    expect(delta(h0, h1, 'weft_invocations_total', { ...httpd, outcome: 'ok' })).toBe(N);
    const bytes = (direction: string) =>
      delta(h0, h1, 'weft_invocation_bytes_total', { app: APP, actor: 'httpd', direction });
    expect(bytes('in')).toBe(N * body.length);
    expect(bytes('out')).toBe(bytesOut);
    // One long-lived instance: started once, ready now.
    expect(metricValue(h1, 'weft_instance_start_seconds_count', httpd)).toBe(1);
    expect(metricValue(h1, 'weft_instances', { ...httpd, state: 'ready' })).toBe(1);
    expect(metricValue(h1, 'weft_actors', { ...httpd, state: 'running' })).toBe(1);
    expect(metricValue(h1, 'weft_invocations_in_flight', httpd)).toBe(0);
    expect(metricValue(h1, 'weft_admission_queue_depth', httpd)).toBe(0);
  });

  it('counts outbound requests the host allowed and denied', async () => {
    const h0 = await scrape(hostMetrics);
    const denied = await get(`/fetch-denied?path=${encodeURIComponent('/data')}`);
    expect(denied.status).toBe(502);
    expect(denied.text).toMatch(/^weft_http error -1/);
    const granted = await get(`/fetch-granted?path=${encodeURIComponent('/data')}`);
    expect(granted).toEqual({ status: 200, text: 'upstream data' });
    const h1 = await scrape(hostMetrics);
    const out = (actor: string, decision: string) =>
      delta(h0, h1, 'weft_outbound_requests_total', { app: APP, actor, decision });
    expect(out('fetch-denied', 'denied')).toBe(1);
    expect(out('fetch-denied', 'allowed')).toBe(0);
    expect(out('fetch-granted', 'allowed')).toBe(1);
    expect(out('fetch-granted', 'denied')).toBe(0);
  });

  it('has the process metrics and the NATS connection, both with the weft_ prefix', async () => {
    for (const url of [hostMetrics, gatewayMetrics, `${gateway.metricsUrl}/metrics`]) {
      const s = await scrape(url);
      expect(metricValue(s, 'weft_process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(metricValue(s, 'weft_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
      expect(metricValue(s, 'weft_nats_connected')).toBe(1);
      expect(metricValue(s, 'weft_ready')).toBe(1);
      expect(s.some((x) => x.name === 'weft_nats_reconnects_total')).toBe(true);
      expect(s.every((x) => x.name.startsWith('weft_'))).toBe(true);
    }
    const g = await scrape(gatewayMetrics);
    expect(metricValue(g, 'weft_routes')).toBe(6);
  });
});

describe('NATS and draining', () => {
  it('is not ready while NATS is down, counts the reconnect, and is ready again', async () => {
    const [h0, g0] = [await scrape(hostMetrics), await scrape(gatewayMetrics)];
    const { port, dir } = nats;
    await nats.stop({ keepDir: true });
    await until(async () => (await readyz(`${host.metricsUrl}/readyz`)).status === 503, {
      name: 'host not ready',
      timeoutMs: 10_000,
    });
    await until(async () => (await readyz(`${gateway.metricsUrl}/readyz`)).status === 503, {
      name: 'gateway not ready',
      timeoutMs: 10_000,
    });
    expect((await readyz(`${host.metricsUrl}/readyz`)).reasons).toContain('not connected to NATS');
    // Alive all the same.
    expect((await fetch(`${host.metricsUrl}/livez`)).status).toBe(200);
    nats = await startNatsServer({ port, dir });
    for (const url of [`${host.metricsUrl}/readyz`, `${gateway.metricsUrl}/readyz`]) {
      await until(async () => (await readyz(url)).status === 200, {
        name: `${url} ready again`,
        timeoutMs: 20_000,
      });
    }
    const [h1, g1] = [await scrape(hostMetrics), await scrape(gatewayMetrics)];
    expect(delta(h0, h1, 'weft_nats_reconnects_total', {})).toBe(1);
    expect(delta(g0, g1, 'weft_nats_reconnects_total', {})).toBe(1);
    await until(async () => (await get('/hello')).status === 200, {
      name: 'served again',
      timeoutMs: 20_000,
    });
  });

  it('is not ready while the host drains', async () => {
    const url = `${host.metricsUrl}/readyz`;
    const stopping = host.stop();
    const r = await readyz(url);
    expect(r.status).toBe(503);
    expect(r.reasons).toContain('draining');
    await stopping;
    // Stopped: the listener is closed.
    await expect(fetch(url)).rejects.toThrow(/fetch failed/);
  });
});
