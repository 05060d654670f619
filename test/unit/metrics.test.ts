/**
 * The pure parts of metrics and health: which paths are health endpoints, status classes,
 * outbound decisions, the readiness verdicts of hosts and gateways, and a host's counters as
 * Prometheus text (no sockets: the registry is read directly).
 */
import { describe, expect, it } from 'vitest';
import {
  HostMetrics,
  hostReadiness,
  outboundDecision,
  type ActorView,
} from '../../host/metrics.ts';
import {
  ErrorCode,
  LiveBody,
  WeftError,
  healthEndpoint,
  metricsText,
  statusClass,
  type ResolvedActor,
} from '../../lattice/index.ts';
import { gatewayReadiness } from '../../providers/http-gateway/metrics.ts';
import { metricValue, parsePrometheus } from '../helpers/prometheus.ts';

describe('healthEndpoint', () => {
  it('knows the /_weft/ names always and the plain names only where asked', () => {
    expect(healthEndpoint('/_weft/metrics', false)).toBe('metrics');
    expect(healthEndpoint('/_weft/readyz?verbose=1', false)).toBe('readyz');
    expect(healthEndpoint('/livez', false)).toBeUndefined();
    expect(healthEndpoint('/livez', true)).toBe('livez');
    expect(healthEndpoint('/metrics/', true)).toBeUndefined();
    expect(healthEndpoint('/_weft/metricsx', true)).toBeUndefined();
    expect(healthEndpoint('/_weft/', true)).toBeUndefined();
  });
});

it('classes statuses', () => {
  expect([100, 200, 204, 302, 404, 499, 500, 599].map(statusClass)).toEqual([
    '1xx',
    '2xx',
    '2xx',
    '3xx',
    '4xx',
    '4xx',
    '5xx',
    '5xx',
  ]);
  expect(statusClass(0)).toBe('other');
  expect(statusClass(600)).toBe('other');
});

it('counts as allowed what the policy let through, whatever came of it', () => {
  for (const o of ['ok', 'timeout', 'too_large', 'connect', 'protocol'] as const) {
    expect(outboundDecision(o)).toBe('allowed');
  }
  for (const o of ['denied', 'bad_url', 'limit'] as const)
    expect(outboundDecision(o)).toBe('denied');
});

describe('hostReadiness', () => {
  const base = { started: true, connected: true, draining: false, placed: [], actors: new Map() };
  it('is ready with nothing placed, and with every placed actor running or failed', () => {
    expect(hostReadiness(base)).toEqual({ ready: true, reasons: [] });
    const actors = new Map([
      ['a', { state: 'running' }],
      ['b', { state: 'failed' }],
    ]);
    expect(hostReadiness({ ...base, placed: ['a', 'b'], actors })).toEqual({
      ready: true,
      reasons: [],
    });
  });
  it('is not ready while a placed actor is starting or not yet recorded', () => {
    const actors = new Map([
      ['a', { state: 'running' }],
      ['b', { state: 'starting' }],
    ]);
    expect(hostReadiness({ ...base, placed: ['a', 'b', 'c'], actors })).toEqual({
      ready: false,
      reasons: ['actor b starting', 'actor c starting'],
    });
  });
  it('names every other reason', () => {
    expect(
      hostReadiness({ ...base, started: false, connected: false, draining: true }).reasons,
    ).toEqual(['host starting', 'not connected to NATS', 'draining']);
  });
});

it('gatewayReadiness: connected, routes loaded, link up, not stopping', () => {
  const up = { connected: true, routesLoaded: true, linkUp: true, stopping: false };
  expect(gatewayReadiness(up)).toEqual({ ready: true, reasons: [] });
  expect(gatewayReadiness({ ...up, linkUp: false }).reasons).toEqual([
    'NATS connection down, reconnecting',
  ]);
  expect(
    gatewayReadiness({ connected: false, routesLoaded: false, linkUp: false, stopping: true })
      .reasons,
  ).toEqual(['not connected to the lattice', 'route table not loaded', 'stopping']);
});

describe('HostMetrics', () => {
  const spec = {
    name: 'hello',
    mode: 'wcgi',
    limits: { maxConcurrency: 2 },
  } as unknown as ResolvedActor;
  const view: ActorView = {
    app: 'app',
    spec,
    state: 'running',
    actor: { stats: { invocations: 5, errors: 1, inFlight: 5 } },
  };
  const metrics = new HostMetrics({
    actors: () => [view],
    workerQueue: () => 3,
    readiness: () => ({ ready: false, reasons: ['draining'] }),
  });

  it('counts invocations, errors by code, bytes, instance starts and outbound decisions', async () => {
    for (let i = 0; i < 3; i++) {
      const r = metrics.invocation('app', 'hello', 'wcgi');
      r.received(10);
      r.ok(new Uint8Array(4));
    }
    const failed = metrics.invocation('app', 'hello', 'wcgi');
    failed.failed(new WeftError(ErrorCode.Timeout, 'too slow'));
    metrics.invocation('app', 'hello', 'wcgi').failed(new Error('not a WeftError'));
    const o = metrics.observer('app', 'hello', 'wcgi');
    o.instanceStarted(0.00005);
    o.outbound([
      { method: 'GET', url: 'http://a/', outcome: 'ok' },
      { method: 'GET', url: 'http://b/', outcome: 'denied' },
      { method: 'GET', url: 'http://c/', outcome: 'limit' },
    ]);
    const s = parsePrometheus(await metrics.registry.metrics());
    const hello = { app: 'app', actor: 'hello', mode: 'wcgi' };
    expect(metricValue(s, 'weft_invocations_total', { ...hello, outcome: 'ok' })).toBe(3);
    expect(metricValue(s, 'weft_invocations_total', { ...hello, outcome: 'error' })).toBe(2);
    expect(metricValue(s, 'weft_invocation_errors_total', { code: ErrorCode.Timeout })).toBe(1);
    expect(metricValue(s, 'weft_invocation_errors_total', { code: ErrorCode.Internal })).toBe(1);
    expect(metricValue(s, 'weft_invocation_duration_seconds_count', hello)).toBe(5);
    expect(metricValue(s, 'weft_invocation_bytes_total', { direction: 'in' })).toBe(30);
    expect(metricValue(s, 'weft_invocation_bytes_total', { direction: 'out' })).toBe(12);
    expect(metricValue(s, 'weft_instance_start_seconds_count', hello)).toBe(1);
    expect(metricValue(s, 'weft_instance_start_seconds_bucket', { ...hello, le: '0.00005' })).toBe(
      1,
    );
    expect(metricValue(s, 'weft_outbound_requests_total', { decision: 'allowed' })).toBe(1);
    expect(metricValue(s, 'weft_outbound_requests_total', { decision: 'denied' })).toBe(2);
  });

  it('reads the gauges from the actors when scraped', async () => {
    const s = parsePrometheus(await metrics.registry.metrics());
    const hello = { app: 'app', actor: 'hello', mode: 'wcgi' };
    expect(metricValue(s, 'weft_actors', { ...hello, state: 'running' })).toBe(1);
    expect(metricValue(s, 'weft_instances', { ...hello, state: 'running' })).toBe(5);
    expect(metricValue(s, 'weft_invocations_in_flight', hello)).toBe(5);
    // 5 in flight, 2 may run at once: 3 wait.
    expect(metricValue(s, 'weft_admission_queue_depth', hello)).toBe(3);
    expect(metricValue(s, 'weft_worker_queue_depth')).toBe(3);
    expect(metricValue(s, 'weft_ready')).toBe(0);
    expect(metricValue(s, 'weft_nats_connected')).toBe(0);
  });

  it('counts a streamed body as it is read', async () => {
    const body = new LiveBody();
    metrics.invocation('app', 'stream', 'proxy').ok(body);
    body.push(new Uint8Array(7));
    body.push(new Uint8Array(5));
    body.end();
    const first = await body.read(8);
    const rest = await body.read(100);
    expect(first.bytes.length + rest.bytes.length).toBe(12);
    const s = parsePrometheus(await metrics.registry.metrics());
    expect(
      metricValue(s, 'weft_invocation_bytes_total', { actor: 'stream', direction: 'out' }),
    ).toBe(12);
  });

  it('adds the process metrics, prefixed, to what it serves', async () => {
    const s = parsePrometheus(await metricsText(metrics.registry));
    expect(metricValue(s, 'weft_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(metricValue(s, 'weft_invocations_total', { actor: 'hello' })).toBe(5);
  });
});

it('parsePrometheus reads escaped label values and special numbers', () => {
  const s = parsePrometheus(
    [
      '# HELP x a metric',
      '# TYPE x counter',
      'x{a="q\\"uote",b="back\\\\slash",c="line\\nbreak"} 2',
      'y_bucket{le="+Inf"} +Inf',
      'z 1.5e3',
      '',
    ].join('\n'),
  );
  expect(s).toEqual([
    { name: 'x', labels: { a: 'q"uote', b: 'back\\slash', c: 'line\nbreak' }, value: 2 },
    { name: 'y_bucket', labels: { le: '+Inf' }, value: Infinity },
    { name: 'z', labels: {}, value: 1500 },
  ]);
  expect(() => parsePrometheus('not a sample line at all!')).toThrow(/line 1/);
});
