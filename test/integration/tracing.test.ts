/**
 * W3C trace context end to end: a client's `traceparent` goes through the gateway, NATS and a
 * host process to a WCGI actor's CGI variables, a proxy actor's request headers and the requests
 * actors/fetch makes (same trace, a new span id), and its trace id is in the host's log line and
 * in error replies. Then with an OTLP exporter configured (a collector on 127.0.0.1), the
 * gateway, host and outbound spans arrive, each the parent of the next.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHostProcess, startService, type Service } from '../helpers/cli.ts';
import { ACTORS_DIST, FIXTURES_DIST, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

/** Requests the upstream server saw: path and traceparent. */
const upstreamSeen: { url: string; traceparent: string | undefined }[] = [];
let upstream: Server;
let upstreamPort = 0;

function manifest(app: string): string {
  return `apiVersion: weft/v1
kind: Application
metadata: { name: ${app}, version: 1.0.0 }
spec:
  actors:
    - name: ${app}-env
      module: ${join(FIXTURES_DIST, 'env-dump.wasm')}
      routes: [{ path: /${app}/env/... }]
    - name: ${app}-stderr
      module: ${join(FIXTURES_DIST, 'stderr-log.wasm')}
      routes: [{ path: /${app}/stderr/... }]
    - name: ${app}-trap
      module: ${join(FIXTURES_DIST, 'trap.wasm')}
      routes: [{ path: /${app}/trap/... }]
    - name: ${app}-fetch
      module: ${join(ACTORS_DIST, 'fetch.wasm')}
      env: { UPSTREAM: "http://127.0.0.1:${upstreamPort}" }
      capabilities: { outboundHttp: ["http://127.0.0.1:${upstreamPort}"] }
      routes: [{ path: /${app}/fetch }]
`;
}

beforeAll(async () => {
  upstream = createServer((req: IncomingMessage, res) => {
    const tp = req.headers['traceparent'];
    upstreamSeen.push({ url: req.url ?? '', traceparent: Array.isArray(tp) ? tp[0] : tp });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('upstream says hi');
  });
  upstreamPort = await listen(upstream);
});

afterAll(async () => {
  await new Promise((r) => upstream?.close(r));
});

describe('without an exporter', () => {
  let stack: Stack;
  let host: Service;
  let base = '';

  beforeAll(async () => {
    stack = await startStack(inject('natsUrl'), { hosts: 0 });
    host = await startHostProcess(stack.natsUrl, stack.lattice, 'TRACEHOST');
    await stack.deploy(
      `${manifest('tr')}    - name: tr-httpd
      module: ${join(ACTORS_DIST, 'httpd.wasm')}
      mode: proxy
      routes: [{ path: /proxy/... }]
`,
    );
    base = `${stack.gateway.url}/tr`;
  });

  afterAll(async () => {
    await host?.stop('SIGKILL');
    await stack?.stop();
  });

  it("puts the client's trace in the CGI variables and answers with its trace id", async () => {
    const res = await fetch(`${base}/env/x`, { headers: { traceparent: TRACEPARENT } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-weft-trace-id')).toBe(TRACE_ID);
    const text = await res.text();
    expect(text).toMatch(new RegExp(`^HTTP_TRACEPARENT=00-${TRACE_ID}-[0-9a-f]{16}-01$`, 'm'));
  });

  it("puts the trace id in the host's log line about the request", async () => {
    const res = await fetch(`${base}/stderr/`, { headers: { traceparent: TRACEPARENT } });
    expect(await res.text()).toBe('ok');
    const invocationId = res.headers.get('x-weft-invocation-id');
    const line = await until(
      () =>
        host.lines().find((l) => l['msg'] === 'actor stderr' && l['invocationId'] === invocationId),
      { name: "the host's stderr line", timeoutMs: 10_000 },
    );
    expect(line).toMatchObject({
      traceId: TRACE_ID,
      hostId: 'TRACEHOST',
      app: 'tr',
      actor: 'tr-stderr',
      stream: 'stderr',
      line: 'actor says hi',
    });
  });

  it('puts the trace id in error replies, from the host and from the gateway', async () => {
    const trapped = await fetch(`${base}/trap/`, { headers: { traceparent: TRACEPARENT } });
    expect(trapped.status).toBe(500);
    expect(trapped.headers.get('x-weft-trace-id')).toBe(TRACE_ID);
    expect(await trapped.json()).toMatchObject({
      statusCode: 500,
      code: 'WEFT_ERR_ACTOR_TRAP',
      traceId: TRACE_ID,
    });
    const missing = await fetch(`${stack.gateway.url}/nowhere`, {
      headers: { traceparent: TRACEPARENT },
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({
      code: 'WEFT_ERR_ROUTE_NOT_FOUND',
      traceId: TRACE_ID,
    });
  });

  it('starts a trace when the client sends none, or an invalid one', async () => {
    for (const headers of [{}, { traceparent: `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01` }]) {
      const res = await fetch(`${base}/env/`, { headers });
      const traceId = res.headers.get('x-weft-trace-id') ?? '';
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(traceId).not.toBe('0'.repeat(32));
      expect(await res.text()).toMatch(
        new RegExp(`^HTTP_TRACEPARENT=00-${traceId}-[0-9a-f]{16}-01$`, 'm'),
      );
    }
  });

  it('forwards the traceparent to a proxy actor as a request header', async () => {
    const res = await fetch(`${stack.gateway.url}/proxy/headers`, {
      headers: { traceparent: TRACEPARENT },
    });
    expect(res.status).toBe(200);
    const headers = (await res.json()) as Record<string, string>;
    expect(headers['traceparent']).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
  });

  it("sends the trace on an actor's outbound request, with a span id of its own", async () => {
    const res = await fetch(`${base}/fetch?path=/traced-off`, {
      headers: { traceparent: TRACEPARENT },
    });
    expect(await res.text()).toBe('upstream says hi');
    const seen = upstreamSeen.find((s) => s.url === '/traced-off');
    expect(seen?.traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    const spanId = seen!.traceparent!.slice(36, 52);
    expect(spanId).not.toBe(CLIENT_SPAN);
    expect(spanId).not.toBe('0'.repeat(16));
  });
});

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

describe('with an OTLP exporter', () => {
  const services: Service[] = [];
  let collector: Server;
  /** Spans received, with the service.name of their resource. */
  const spans: (OtlpSpan & { service: string })[] = [];
  let stack: Stack;
  let gatewayUrl = '';

  beforeAll(async () => {
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as {
            resourceSpans: {
              resource: { attributes: { key: string; value: { stringValue?: string } }[] };
              scopeSpans: { spans: OtlpSpan[] }[];
            }[];
          };
          for (const rs of body.resourceSpans) {
            const service =
              rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
            for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    const port = await listen(collector);
    // The lattice and a client to deploy with; the host and gateway here are processes.
    stack = await startStack(inject('natsUrl'), { hosts: 0 });
    const lattice = stack.lattice;
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    // startService spawns before its first await: the child takes this environment.
    services.push(
      await withEnv(otel, () => startHostProcess(stack.natsUrl, lattice, 'OTELHOST')),
      await withEnv(otel, () =>
        startService(
          ['gateway', '--nats', stack.natsUrl, '--lattice', lattice, '--listen', '127.0.0.1:0'],
          'gateway connected to the lattice',
        ),
      ),
    );
    gatewayUrl = String(services[1]!.lines().find((l) => l['msg'] === 'gateway listening')!['url']);
    await stack.deploy(manifest('ot'));
    await until(async () => (await fetch(`${gatewayUrl}/ot/env/`)).status === 200 || undefined, {
      name: 'the gateway process routes ot',
      timeoutMs: 15_000,
    });
  });

  afterAll(async () => {
    for (const s of services) await s.stop('SIGKILL');
    await stack?.stop();
    await new Promise((r) => collector?.close(r));
  });

  it('exports the gateway, host and outbound spans, each the parent of the next', async () => {
    const res = await fetch(`${gatewayUrl}/ot/fetch?path=/traced-on`, {
      headers: { traceparent: TRACEPARENT },
    });
    expect(await res.text()).toBe('upstream says hi');
    const sent = upstreamSeen.find((s) => s.url === '/traced-on')!.traceparent!;
    const ofTrace = () => spans.filter((s) => s.traceId === TRACE_ID);
    await until(() => ofTrace().length >= 3 || undefined, {
      name: 'three spans of the trace at the collector',
      timeoutMs: 15_000,
    });
    const gateway = ofTrace().find((s) => s.service === 'weft-gateway')!;
    const host = ofTrace().find((s) => s.service === 'weft-host' && s.name === 'invoke ot-fetch')!;
    const outbound = ofTrace().find((s) => s.service === 'weft-host' && s.name === 'GET')!;
    expect(gateway).toMatchObject({ name: 'GET /ot/fetch', parentSpanId: CLIENT_SPAN });
    expect(host.parentSpanId).toBe(gateway.spanId);
    expect(outbound.parentSpanId).toBe(host.spanId);
    // The span id the upstream server saw is the outbound span's.
    expect(sent).toBe(`00-${TRACE_ID}-${outbound.spanId}-01`);
    const status = gateway.attributes?.find((a) => a.key === 'http.response.status_code');
    expect(Number(status?.value['intValue'])).toBe(200);
  });

  it('gives the actor the host span as its parent', async () => {
    const res = await fetch(`${gatewayUrl}/ot/env/`, { headers: { traceparent: TRACEPARENT } });
    const line = /^HTTP_TRACEPARENT=(.*)$/m.exec(await res.text())?.[1] ?? '';
    expect(line.slice(0, 36)).toBe(`00-${TRACE_ID}-`);
    const parent = line.slice(36, 52);
    const host = await until(
      () => spans.find((s) => s.spanId === parent && s.name === 'invoke ot-env'),
      { name: 'the host span the actor saw', timeoutMs: 15_000 },
    );
    expect(host.traceId).toBe(TRACE_ID);
  });
});

/** Run `fn` with `vars` set in this process's environment, then put it back. */
function withEnv<T>(vars: Record<string, string>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
