/**
 * Span export, configured the OpenTelemetry way: a host, gateway or `weft up` exports spans over
 * OTLP/HTTP (JSON) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
 * set, unless `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`. The exporter itself reads
 * the rest of its `OTEL_EXPORTER_OTLP_*` variables (headers, timeout, certificates).
 *
 * Without an exporter nothing here loads the OpenTelemetry SDK: traceparent is still propagated,
 * and trace ids still reach logs and error replies (lattice/trace.ts), at the cost of a few string
 * operations per request.
 */
import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { enableTracing, spanIdGenerator } from '../lattice/index.ts';

/** Batches wait at most this long before export, unless OTEL_BSP_SCHEDULE_DELAY says (ms). */
const DEFAULT_EXPORT_DELAY_MS = 5_000;

export interface Tracing {
  /** Export what is pending and stop recording. */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for span export. */
export function tracingConfigured(env: NodeJS.ProcessEnv): boolean {
  if (env['OTEL_SDK_DISABLED']?.toLowerCase() === 'true') return false;
  const exporter = env['OTEL_TRACES_EXPORTER']?.trim().toLowerCase();
  if (exporter === 'none') return false;
  return Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
}

/**
 * Start exporting spans when the environment asks for it (see above); `service` is the default
 * `service.name` (`OTEL_SERVICE_NAME` wins). Returns undefined when no exporter is configured.
 */
export async function setupTracing(
  service: string,
  env: NodeJS.ProcessEnv,
  log: Logger,
): Promise<Tracing | undefined> {
  if (!tracingConfigured(env)) return undefined;
  const protocol = env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'];
  if (protocol !== undefined && protocol !== 'http/json') {
    log.warn(
      { protocol },
      'OTEL_EXPORTER_OTLP_PROTOCOL: weft exports spans as http/json only; using http/json',
    );
  }
  const delay = Number(env['OTEL_BSP_SCHEDULE_DELAY'] ?? DEFAULT_EXPORT_DELAY_MS);
  const [sdk, otlp, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({
      'service.name': env['OTEL_SERVICE_NAME'] || service,
      'service.version': '0.1.0',
    }),
    // Outbound requests' spans are recorded after the fact under the id they were sent with.
    idGenerator: spanIdGenerator,
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter: new otlp.OTLPTraceExporter(),
        scheduledDelayMillis:
          Number.isFinite(delay) && delay >= 0 ? delay : DEFAULT_EXPORT_DELAY_MS,
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  enableTracing(provider.getTracer('weft', '0.1.0'));
  log.info(
    {
      endpoint: env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ?? env['OTEL_EXPORTER_OTLP_ENDPOINT'],
      service: env['OTEL_SERVICE_NAME'] || service,
    },
    'exporting spans over OTLP/HTTP',
  );
  return {
    async shutdown() {
      enableTracing(undefined);
      await provider.shutdown().catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'spans could not all be exported');
      });
    },
  };
}
