/**
 * The live dashboard at `/_weft/`: one self-contained page (index.html, no external resources)
 * that follows a stream of snapshots (Server-Sent Events, one a second) of what the collector
 * knows about the lattice. The gateway serves it before any route (no application can claim
 * `/_weft`: manifests are refused), and `weft ui` serves the same page on its own port.
 *
 * Security model: the page is read-only (GET and HEAD only, no action on the lattice). Everything
 * from the lattice (names, labels, errors) reaches the page as JSON and is put in the document as
 * text nodes and attribute values, never parsed as HTML; a Content-Security-Policy allows only
 * the page's own inline script and style (by hash) and connections to its own origin, so that
 * even an escaping mistake could not run a script. It shows host names, labels and application
 * names to whoever reaches the port: `weft gateway --no-dashboard` on a public gateway.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  RESERVED_ROUTE_PREFIX,
  normalizeRequestPath,
  splitTarget,
  type LatticeClient,
} from '../../../lattice/index.ts';
import { LatticeCollector, type DashboardSnapshot } from './collector.ts';

/** The page's live update streams at once, at most; more get 503. */
const MAX_STREAMS = 32;
/** A stream whose client reads slower than this backlog is cut (bytes). */
const MAX_STREAM_BACKLOG_BYTES = 4 * 1024 * 1024;

const PAGE = readFileSync(new URL('./index.html', import.meta.url), 'utf8');

/** `'sha256-…'` of each inline `<tag>` of the page, for its Content-Security-Policy. */
function inlineHashes(tag: 'script' | 'style'): string {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  return [...PAGE.matchAll(re)]
    .map(
      (m) =>
        `'sha256-${createHash('sha256')
          .update(m[1] ?? '')
          .digest('base64')}'`,
    )
    .join(' ');
}

const CSP = [
  "default-src 'none'",
  `script-src ${inlineHashes('script')}`,
  `style-src ${inlineHashes('style')}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export interface DashboardOptions {
  log: Logger;
  /** How far back the charts go (ms), default 10 minutes. */
  windowMs?: number;
  /** One chart point (ms), default 5 s. */
  stepMs?: number;
  /** How often the page is sent a snapshot (ms), default 1 s. */
  pushMs?: number;
}

/** The dashboard's paths, under the reserved prefix. */
export const DASHBOARD_PATH = `${RESERVED_ROUTE_PREFIX}/`;

export class Dashboard {
  readonly collector: LatticeCollector;
  readonly #log: Logger;
  readonly #pushMs: number;
  readonly #streams = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  #viewed = false;

  constructor(opts: DashboardOptions) {
    this.#log = opts.log.child({ component: 'dashboard' });
    this.#pushMs = opts.pushMs ?? 1_000;
    this.collector = new LatticeCollector({
      log: this.#log,
      ...(opts.windowMs === undefined ? {} : { windowMs: opts.windowMs }),
      ...(opts.stepMs === undefined ? {} : { stepMs: opts.stepMs }),
    });
  }

  /**
   * Follow `client`'s lattice (see LatticeCollector.attach). The applications and placements
   * are followed at once with `all`, else from the first request for the dashboard (a gateway's
   * NATS user may not read them: see LatticeCollector.followAll).
   */
  async attach(client: LatticeClient, opts: { all?: boolean } = {}): Promise<void> {
    await this.collector.attach(client);
    if (opts.all === true || this.#viewed) await this.collector.followAll();
  }

  /** What the page shows now. */
  snapshot(): DashboardSnapshot {
    return this.collector.snapshot();
  }

  /** True when the request is for the dashboard: `/_weft` or anything under it. */
  serves(req: IncomingMessage): boolean {
    return dashboardPath(req) !== undefined;
  }

  /** Answer a request for which `serves` is true. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = dashboardPath(req) ?? '';
    if (!this.#viewed) {
      this.#viewed = true;
      void this.collector.followAll();
    }
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      this.#json(req, res, 405, {
        statusCode: 405,
        code: 'WEFT_ERR_BAD_REQUEST',
        error: 'Method Not Allowed',
        message: `the dashboard is read-only: ${method} is not allowed`,
      });
      return;
    }
    switch (path) {
      case RESERVED_ROUTE_PREFIX:
        res.writeHead(308, { ...COMMON_HEADERS, location: DASHBOARD_PATH });
        res.end();
        return;
      case DASHBOARD_PATH:
        res.writeHead(200, {
          ...COMMON_HEADERS,
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': CSP,
          'x-frame-options': 'DENY',
        });
        res.end(method === 'HEAD' ? undefined : PAGE);
        return;
      case `${DASHBOARD_PATH}api/state`:
        this.#json(req, res, 200, this.snapshot());
        return;
      case `${DASHBOARD_PATH}events`:
        this.#stream(req, res);
        return;
      default:
        this.#json(req, res, 404, {
          statusCode: 404,
          code: 'WEFT_ERR_ROUTE_NOT_FOUND',
          error: 'Not Found',
          message: `no dashboard page at ${path} (the dashboard is ${DASHBOARD_PATH})`,
        });
    }
  }

  /** End every live update stream and stop following the lattice. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    this.collector.stop();
  }

  #json(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...COMMON_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  /** Server-Sent Events: a snapshot at once, then one every pushMs. */
  #stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.#streams.size >= MAX_STREAMS) {
      res.setHeader('retry-after', '10');
      this.#json(req, res, 503, {
        statusCode: 503,
        code: 'WEFT_ERR_OVERLOADED',
        error: 'Service Unavailable',
        message: `the dashboard serves at most ${MAX_STREAMS} pages at once`,
      });
      return;
    }
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      // Proxies in front must not buffer the stream.
      'x-accel-buffering': 'no',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.write('retry: 2000\n\n');
    this.#streams.add(res);
    const done = () => {
      this.#streams.delete(res);
      if (this.#streams.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
    res.once('close', done);
    this.#send([res], this.snapshot());
    if (this.#timer === undefined) {
      this.#timer = setInterval(
        () => this.#send([...this.#streams], this.snapshot()),
        this.#pushMs,
      );
      this.#timer.unref();
    }
  }

  #send(to: ServerResponse[], snapshot: DashboardSnapshot): void {
    // JSON.stringify escapes every line break, so one `data:` line carries the whole snapshot.
    const frame = `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
    for (const res of to) {
      if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) {
        this.#log.info('dashboard page not reading its updates: stream closed');
        res.destroy();
        continue;
      }
      res.write(frame);
    }
  }
}

/** The normalized path of a dashboard request, or undefined for any other request. */
function dashboardPath(req: IncomingMessage): string | undefined {
  let path: string;
  try {
    path = normalizeRequestPath(splitTarget(req.url ?? '/').path);
  } catch {
    return undefined;
  }
  return path === RESERVED_ROUTE_PREFIX || path.startsWith(DASHBOARD_PATH) ? path : undefined;
}
