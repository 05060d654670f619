/**
 * The pieces of tracing and actor logs that need no lattice: traceparent handling, spans recorded
 * through a real OpenTelemetry SDK (an in-memory exporter), and the bounds on an actor's output.
 */
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorLog, LINES_BURST, MAX_LINES_PER_INVOCATION } from '../../host/observe.ts';
import {
  MAX_LOG_LINE_CHARS,
  SpanKind,
  enableTracing,
  endTrace,
  isTraceparent,
  recordSpan,
  spanIdGenerator,
  startTrace,
  traceparentFor,
  withSpanId,
  type LogRecord,
} from '../../lattice/index.ts';
import { captureLogs } from '../helpers/log-capture.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('traceparent', () => {
  it('keeps a valid one and replaces a malformed or all-zero one with a new trace', () => {
    expect(traceparentFor(PARENT)).toBe(PARENT);
    for (const bad of [
      undefined,
      '',
      'garbage',
      `01-${TRACE_ID}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
    ]) {
      const tp = traceparentFor(bad);
      expect(isTraceparent(tp)).toBe(true);
      expect(tp.slice(3, 35)).not.toBe(TRACE_ID);
    }
  });

  it('passes the parent on unchanged while no span is recorded', () => {
    const scope = startTrace('GET', SpanKind.SERVER, PARENT);
    expect(scope).toEqual({ traceparent: PARENT, traceId: TRACE_ID, span: undefined });
    expect(withSpanId(PARENT, 'aaaaaaaaaaaaaaaa')).toBe(`00-${TRACE_ID}-aaaaaaaaaaaaaaaa-01`);
  });
});

describe('spans through the SDK', () => {
  afterEach(() => enableTracing(undefined));

  function sdk(): InMemorySpanExporter {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({
      idGenerator: spanIdGenerator,
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    enableTracing(provider.getTracer('test'));
    return exporter;
  }

  it('starts a child of the parent and passes on its own span id', () => {
    const exporter = sdk();
    const scope = startTrace('invoke hello', SpanKind.SERVER, PARENT);
    expect(scope.traceId).toBe(TRACE_ID);
    const own = scope.traceparent.slice(36, 52);
    expect(own).not.toBe('00f067aa0ba902b7');
    endTrace(scope, 504, undefined, { code: 'WEFT_ERR_TIMEOUT', message: 'too slow' });
    const [span] = exporter.getFinishedSpans();
    expect(span!.spanContext().spanId).toBe(own);
    expect(span!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span!.attributes).toMatchObject({
      'http.response.status_code': 504,
      'error.type': 'WEFT_ERR_TIMEOUT',
    });
  });

  it('records a span that happened elsewhere under the id it was sent with', () => {
    const exporter = sdk();
    recordSpan(
      'GET',
      SpanKind.CLIENT,
      PARENT,
      '1111222233334444',
      { startMs: 1_000, endMs: 1_250 },
      { 'url.full': 'http://x/' },
      200,
    );
    const [span] = exporter.getFinishedSpans();
    expect(span!.spanContext()).toMatchObject({ traceId: TRACE_ID, spanId: '1111222233334444' });
    expect(span!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(span!.duration).toEqual([0, 250_000_000]);
    // The preset id was for that span only.
    const next = startTrace('other', SpanKind.SERVER, PARENT);
    expect(next.traceparent.slice(36, 52)).not.toBe('1111222233334444');
  });
});

describe("an actor's output", () => {
  function actorLog(): { out: ActorLog; records: LogRecord[]; lines: Record<string, unknown>[] } {
    const { log, lines } = captureLogs();
    const records: LogRecord[] = [];
    const out = new ActorLog(log, { hostId: 'H1', app: 'a', actor: 'b' }, (r) => records.push(r));
    return { out, records, lines };
  }
  const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

  it('makes a record per stderr line, with the invocation and trace ids, CR and LF removed', () => {
    const { out, records, lines } = actorLog();
    out.invocation(bytes('one\r\ntwo\n\nthree'), false, 'INV1', TRACE_ID);
    expect(records.map((r) => r.line)).toEqual(['one', 'two', '', 'three']);
    expect(records[0]).toMatchObject({
      hostId: 'H1',
      app: 'a',
      actor: 'b',
      stream: 'stderr',
      invocationId: 'INV1',
      traceId: TRACE_ID,
    });
    expect(lines[0]).toMatchObject({ msg: 'actor stderr', invocationId: 'INV1', line: 'one' });
  });

  it('cuts long lines and counts the lines past the per-invocation cap', () => {
    const { out, records } = actorLog();
    const many = Array.from({ length: MAX_LINES_PER_INVOCATION + 50 }, (_, i) => `l${i}`);
    many[0] = 'x'.repeat(MAX_LOG_LINE_CHARS + 10);
    out.invocation(bytes(`${many.join('\n')}\n`), true, 'INV2', undefined);
    expect(records).toHaveLength(MAX_LINES_PER_INVOCATION + 2);
    expect(records[0]!.line).toBe(`${'x'.repeat(MAX_LOG_LINE_CHARS)}…`);
    expect(records.at(-2)).toMatchObject({
      stream: 'weft',
      line: expect.stringMatching(/^50 more/),
    });
    expect(records.at(-1)).toMatchObject({ stream: 'weft', line: expect.stringMatching(/cut/) });
  });

  it('drops lines over the rate, then says how many were dropped', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const { out, records } = actorLog();
      for (let i = 0; i < LINES_BURST + 500; i++) out.line('stdout', `line ${i}`, 0);
      expect(records).toHaveLength(LINES_BURST);
      expect(records[0]).toMatchObject({ stream: 'stdout', instance: 0, line: 'line 0' });
      vi.advanceTimersByTime(1_000);
      out.line('stderr', 'later', 0);
      expect(records.slice(LINES_BURST).map((r) => r.line)).toEqual([
        '500 line(s) of output dropped (over 200 lines a second for this actor)',
        'later',
      ]);
    } finally {
      vi.useRealTimers();
    }
  });
});
