import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OutboundError,
  outboundFetch,
  type OutboundLimits,
  type OutboundRequest,
  type OutboundResponse,
} from '../../host/outbound/http.ts';
import { OutboundPolicy } from '../../lattice/allowlist.ts';
import { freePort } from '../../bin/nats-server.ts';
import { until } from '../helpers/until.ts';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
}

interface TestServer {
  port: number;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** TCP connections accepted, and those still open. */
  connections: number;
  open: number;
  requests: Seen[];
  close(): Promise<void>;
}

const servers: TestServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A node:http server on 127.0.0.1 that records what reaches it; closed after each test. */
async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void,
): Promise<TestServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString(),
      };
      t.requests.push(seen);
      handler(req, res, seen);
    });
  });
  server.on('connection', (socket) => {
    t.connections++;
    t.open++;
    socket.on('close', () => t.open--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const t: TestServer = {
    port,
    origin: `http://127.0.0.1:${port}`,
    connections: 0,
    open: 0,
    requests: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(t);
  return t;
}

const LIMITS: OutboundLimits = { timeoutMs: 5_000, maxResponseBytes: 1 << 20 };

function get(url: string, headers: [string, string][] = []): OutboundRequest {
  return { method: 'GET', url, headers };
}

async function readAll(res: OutboundResponse): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const p of res.body) parts.push(p);
  return Buffer.concat(parts).toString();
}

async function failure(p: Promise<unknown>): Promise<OutboundError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(OutboundError);
    return err as OutboundError;
  }
  throw new Error('expected an OutboundError');
}

describe('outboundFetch: a granted request', () => {
  it('sends method, headers and body, and streams the response body', async () => {
    const s = await serve((_req, res, seen) => {
      res.writeHead(201, {
        'content-type': 'text/plain',
        'x-seen-method': seen.method,
        'set-cookie': ['a=1', 'b=2'],
      });
      // Chunked, in pieces the client sees as they come.
      let i = 0;
      const tick = () => {
        if (i === 3) {
          res.end(`body=${seen.body}`);
          return;
        }
        res.write(`piece${i++};`);
        setTimeout(tick, 10);
      };
      tick();
    });
    const policy = new OutboundPolicy([s.origin]);
    const res = await outboundFetch(
      policy,
      {
        method: 'post',
        url: `${s.origin}/submit?x=1#frag`,
        headers: [
          ['Content-Type', 'application/json'],
          ['X-Custom', '  padded  '],
          ['X-Twice', 'one'],
          ['X-Twice', 'two'],
        ],
        body: new TextEncoder().encode('{"a":1}'),
      },
      LIMITS,
    );
    expect(res.status).toBe(201);
    expect(res.url).toBe(`${s.origin}/submit?x=1`);
    expect(res.rule).toBe(s.origin);
    expect(res.headers).toContainEqual(['x-seen-method', 'POST']);
    expect(res.headers.filter(([k]) => k === 'set-cookie')).toEqual([
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ]);
    const pieces: string[] = [];
    for await (const p of res.body) pieces.push(Buffer.from(p).toString());
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe('piece0;piece1;piece2;body={"a":1}');

    const seen = s.requests[0];
    expect(seen?.method).toBe('POST');
    expect(seen?.url).toBe('/submit?x=1');
    expect(seen?.headers['content-type']).toBe('application/json');
    expect(seen?.headers['content-length']).toBe('7');
    expect(seen?.headers['x-custom']).toBe('padded');
    expect(seen?.headers['x-twice']).toBe('one, two');
    expect(seen?.headers.host).toBe(`127.0.0.1:${s.port}`);
  });

  it('sends a streamed request body', async () => {
    const s = await serve((_req, res, seen) => res.end(`got ${seen.body.length}`));
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 4; i++) yield new Uint8Array(1000).fill(65 + i);
    }
    const res = await outboundFetch(
      new OutboundPolicy([s.origin]),
      { method: 'PUT', url: `${s.origin}/up`, headers: [], body: pieces() },
      LIMITS,
    );
    expect(await readAll(res)).toBe('got 4000');
    expect(s.requests[0]?.headers['transfer-encoding']).toBe('chunked');
    expect(s.requests[0]?.body).toBe(
      'A'.repeat(1000) + 'B'.repeat(1000) + 'C'.repeat(1000) + 'D'.repeat(1000),
    );
  });

  it('controls Host and drops hop-by-hop and proxy headers', async () => {
    const s = await serve((_req, res) => res.end('ok'));
    const res = await outboundFetch(
      new OutboundPolicy([s.origin]),
      get(`${s.origin}/`, [
        ['Host', 'metadata.google.internal'],
        ['Connection', 'close, X-Hop'],
        ['X-Hop', 'named by Connection'],
        ['Keep-Alive', 'timeout=5'],
        ['Transfer-Encoding', 'chunked'],
        ['Upgrade', 'websocket'],
        ['TE', 'trailers'],
        ['Trailer', 'x-t'],
        ['Proxy-Authorization', 'Basic eDp5'],
        ['Proxy-Connection', 'keep-alive'],
        ['Expect', '100-continue'],
        ['Content-Length', '99'],
        ['X-Kept', 'yes'],
      ]),
      LIMITS,
    );
    expect(await readAll(res)).toBe('ok');
    const seen = s.requests[0];
    const names = (seen?.rawHeaders ?? [])
      .filter((_, i) => i % 2 === 0)
      .map((n) => n.toLowerCase());
    expect(seen?.headers.host).toBe(`127.0.0.1:${s.port}`);
    expect(seen?.headers['x-kept']).toBe('yes');
    for (const dropped of [
      'x-hop',
      'upgrade',
      'te',
      'trailer',
      'transfer-encoding',
      'proxy-authorization',
      'proxy-connection',
      'expect',
      'content-length',
    ]) {
      expect(names).not.toContain(dropped);
    }
    expect(names.filter((n) => n === 'host')).toHaveLength(1);
  });

  it('rejects a header that would split the request', async () => {
    const s = await serve((_req, res) => res.end('ok'));
    const err = await failure(
      outboundFetch(
        new OutboundPolicy([s.origin]),
        get(`${s.origin}/`, [['X-A', 'v\r\nX-Injected: 1']]),
        LIMITS,
      ),
    );
    expect(err.kind).toBe('protocol');
    expect(s.connections).toBe(0);
  });
});

describe('outboundFetch: policy', () => {
  it('denies an ungranted port without connecting', async () => {
    const s = await serve((_req, res) => res.end('secret'));
    const other = await serve((_req, res) => res.end('granted'));
    const err = await failure(
      outboundFetch(new OutboundPolicy([other.origin]), get(`${s.origin}/`), LIMITS),
    );
    expect(err.kind).toBe('denied');
    expect(err.url).toBe(`${s.origin}/`);
    expect(err.message).toContain('no allowlist entry matches');
    expect(err.code).toBe('WEFT_ERR_POLICY_DENIED');
    expect(s.connections).toBe(0);
  });

  it('denies everything under an empty allowlist', async () => {
    const s = await serve((_req, res) => res.end('secret'));
    const err = await failure(outboundFetch(new OutboundPolicy([]), get(`${s.origin}/`), LIMITS));
    expect(err.kind).toBe('denied');
    expect(err.message).toContain('the allowlist is empty');
    expect(s.connections).toBe(0);
  });

  it('refuses a granted name that resolves to loopback, unless the address is granted too', async () => {
    const s = await serve((_req, res) => res.end('via localhost'));
    const byName = `http://localhost:${s.port}`;
    const err = await failure(
      outboundFetch(new OutboundPolicy([byName]), get(`${byName}/x`), LIMITS),
    );
    expect(err.kind).toBe('denied');
    expect(err.rule).toBe(byName);
    expect(err.message).toMatch(
      /localhost resolved to (127\.0\.0\.1|::1), which is a loopback address/,
    );
    expect(s.connections).toBe(0);

    const res = await outboundFetch(
      new OutboundPolicy([byName, s.origin]),
      get(`${byName}/x`),
      LIMITS,
    );
    expect(await readAll(res)).toBe('via localhost');
    expect(res.rule).toBe(byName);
    // The request still names the host it asked for.
    expect(s.requests[0]?.headers.host).toBe(`localhost:${s.port}`);
  });

  it('refuses a literal loopback or metadata address even under *://*:*', async () => {
    // The choice: `*://*:*` grants every name, but a literal (or resolved) loopback, private or
    // metadata address is still refused unless an entry names that address itself. A wildcard
    // is written for the internet; the host's own services and the cloud metadata endpoint are
    // the classic SSRF targets, and granting them takes an entry that says so.
    const s = await serve((_req, res) => res.end('secret'));
    const everything = new OutboundPolicy(['*://*:*']);
    const err = await failure(outboundFetch(everything, get(`${s.origin}/`), LIMITS));
    expect(err.kind).toBe('denied');
    expect(err.rule).toBe('*://*:*');
    expect(err.message).toContain('127.0.0.1 is a loopback address');
    const mapped = await failure(
      outboundFetch(everything, get(`http://[::ffff:127.0.0.1]:${s.port}/`), LIMITS),
    );
    expect(mapped.kind).toBe('denied');
    const meta = await failure(
      outboundFetch(everything, get('http://169.254.169.254/latest/meta-data/'), LIMITS),
    );
    expect(meta.kind).toBe('denied');
    expect(meta.message).toContain('169.254.169.254 is a metadata address');
    expect(s.connections).toBe(0);

    const granted = new OutboundPolicy(['*://*:*', `http://127.0.0.1:${s.port}`]);
    expect(await readAll(await outboundFetch(granted, get(`${s.origin}/`), LIMITS))).toBe('secret');
  });
});

describe('outboundFetch: redirects', () => {
  it('re-checks each Location: to an ungranted port is denied, to a granted one followed', async () => {
    const target = await serve((_req, res, seen) => res.end(`target ${seen.method} ${seen.url}`));
    const start = await serve((req, res) => {
      res.writeHead(302, { location: `${target.origin}/landed${req.url === '/rel' ? '?r' : ''}` });
      res.end('moving');
    });
    const denied = await failure(
      outboundFetch(new OutboundPolicy([start.origin]), get(`${start.origin}/`), LIMITS),
    );
    expect(denied.kind).toBe('denied');
    expect(denied.url).toBe(`${target.origin}/landed`);
    expect(target.connections).toBe(0);

    const res = await outboundFetch(
      new OutboundPolicy([start.origin, target.origin]),
      get(`${start.origin}/`),
      LIMITS,
    );
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${target.origin}/landed`);
    expect(res.rule).toBe(target.origin);
    expect(await readAll(res)).toBe('target GET /landed');
  });

  it('denies a redirect to another host', async () => {
    const start = await serve((_req, res) => {
      res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    });
    const err = await failure(
      outboundFetch(new OutboundPolicy(['*://*:*', start.origin]), get(`${start.origin}/`), LIMITS),
    );
    expect(err.kind).toBe('denied');
    expect(err.url).toBe('http://169.254.169.254/latest/meta-data/');
  });

  it('follows relative Locations; 303 and 302-after-POST become GET without body', async () => {
    const s = await serve((req, res, seen) => {
      if (req.url === '/see-other') {
        res.writeHead(303, { location: '/final' });
        res.end();
      } else if (req.url === '/found') {
        res.writeHead(302, { location: 'final' });
        res.end();
      } else {
        res.end(`${seen.method} ${seen.url} [${seen.body}] ${seen.headers['content-type'] ?? '-'}`);
      }
    });
    const policy = new OutboundPolicy([s.origin]);
    for (const path of ['/see-other', '/found']) {
      const res = await outboundFetch(
        policy,
        {
          method: 'POST',
          url: `${s.origin}${path}`,
          headers: [['content-type', 'text/plain']],
          body: new TextEncoder().encode('payload'),
        },
        LIMITS,
      );
      expect(await readAll(res)).toBe('GET /final [] -');
    }
  });

  it('307/308 keep method and body when the body is bytes, and stop at a streamed body', async () => {
    const s = await serve((req, res, seen) => {
      if (req.url === '/temp' || req.url === '/perm') {
        res.writeHead(req.url === '/temp' ? 307 : 308, { location: '/final' });
        res.end();
      } else {
        res.end(`${seen.method} ${seen.url} [${seen.body}]`);
      }
    });
    const policy = new OutboundPolicy([s.origin]);
    for (const path of ['/temp', '/perm']) {
      const res = await outboundFetch(
        policy,
        { method: 'PUT', url: `${s.origin}${path}`, headers: [], body: Buffer.from('bytes') },
        LIMITS,
      );
      expect(await readAll(res)).toBe('PUT /final [bytes]');
    }
    async function* once1(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('streamed');
    }
    const res = await outboundFetch(
      policy,
      { method: 'PUT', url: `${s.origin}/temp`, headers: [], body: once1() },
      LIMITS,
    );
    expect(res.status).toBe(307);
    expect(res.headers).toContainEqual(['location', '/final']);
    res.cancel();
  });

  it('drops Authorization and Cookie on a redirect to another origin', async () => {
    const target = await serve((_req, res, seen) =>
      res.end(
        `${seen.headers.authorization ?? '-'} ${seen.headers.cookie ?? '-'} ${seen.headers['x-other'] ?? '-'}`,
      ),
    );
    const start = await serve((_req, res) => {
      res.writeHead(302, { location: `${target.origin}/` });
      res.end();
    });
    const res = await outboundFetch(
      new OutboundPolicy([start.origin, target.origin]),
      get(`${start.origin}/`, [
        ['Authorization', 'Bearer t'],
        ['Cookie', 'c=1'],
        ['X-Other', 'kept'],
      ]),
      LIMITS,
    );
    expect(await readAll(res)).toBe('- - kept');
    expect(start.requests[0]?.headers.authorization).toBe('Bearer t');
  });

  it('stops after maxRedirects; 0 returns the 3xx', async () => {
    const s = await serve((req, res) => {
      const n = Number(req.url?.slice(1));
      res.writeHead(302, { location: `/${n + 1}` });
      res.end();
    });
    const policy = new OutboundPolicy([s.origin]);
    const err = await failure(
      outboundFetch(policy, get(`${s.origin}/0`), { ...LIMITS, maxRedirects: 3 }),
    );
    expect(err.kind).toBe('protocol');
    expect(err.message).toContain('more than 3 redirects');
    expect(s.requests.map((r) => r.url)).toEqual(['/0', '/1', '/2', '/3']);

    const manual = await outboundFetch(policy, get(`${s.origin}/0`), {
      ...LIMITS,
      maxRedirects: 0,
    });
    expect(manual.status).toBe(302);
    manual.cancel();

    const dflt = await failure(outboundFetch(policy, get(`${s.origin}/0`), LIMITS));
    expect(dflt.message).toContain('more than 5 redirects');
  });

  it('a Location that is not http(s) is a bad_url', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(302, { location: 'file:///etc/passwd' });
      res.end();
    });
    const err = await failure(
      outboundFetch(new OutboundPolicy(['*://*:*', s.origin]), get(`${s.origin}/`), LIMITS),
    );
    expect(err.kind).toBe('bad_url');
  });
});

describe('outboundFetch: limits', () => {
  it('times out on a server that never answers', async () => {
    const s = await serve(() => {});
    const started = Date.now();
    const err = await failure(
      outboundFetch(new OutboundPolicy([s.origin]), get(`${s.origin}/`), {
        timeoutMs: 300,
        maxResponseBytes: 100,
      }),
    );
    expect(err.kind).toBe('timeout');
    expect(err.code).toBe('WEFT_ERR_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3_000);
    await until(() => s.open === 0, { name: 'the connection closed' });
  });

  it('times out while the body is being read (the timer covers the whole body)', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.write('first');
    });
    const res = await outboundFetch(new OutboundPolicy([s.origin]), get(`${s.origin}/`), {
      timeoutMs: 400,
      maxResponseBytes: 100,
    });
    const err = await failure(readAll(res));
    expect(err.kind).toBe('timeout');
    await until(() => s.open === 0, { name: 'the connection closed' });
  });

  it('fails before reading when Content-Length declares more than the cap', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.end('x'.repeat(1000));
    });
    const err = await failure(
      outboundFetch(new OutboundPolicy([s.origin]), get(`${s.origin}/`), {
        timeoutMs: 5_000,
        maxResponseBytes: 999,
      }),
    );
    expect(err.kind).toBe('too_large');
    expect(err.message).toContain('declares 1000 bytes');
    const exact = await outboundFetch(new OutboundPolicy([s.origin]), get(`${s.origin}/`), {
      timeoutMs: 5_000,
      maxResponseBytes: 1000,
    });
    expect(await readAll(exact)).toHaveLength(1000);
  });

  it('throws too_large from the iterator when a chunked body passes the cap', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 20; i++) res.write('y'.repeat(100));
      res.end();
    });
    const res = await outboundFetch(new OutboundPolicy([s.origin]), get(`${s.origin}/`), {
      timeoutMs: 5_000,
      maxResponseBytes: 1_500,
    });
    let got = 0;
    const err = await failure(
      (async () => {
        for await (const p of res.body) got += p.byteLength;
      })(),
    );
    expect(err.kind).toBe('too_large');
    expect(err.code).toBe('WEFT_ERR_RESPONSE_TOO_LARGE');
    expect(got).toBeLessThanOrEqual(1_500);
    await until(() => s.open === 0, { name: 'the connection closed' });
  });

  it('cancel() releases the connection and ends the body', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.write('start');
    });
    const res = await outboundFetch(new OutboundPolicy([s.origin]), get(`${s.origin}/`), LIMITS);
    const pieces = res.body[Symbol.asyncIterator]();
    expect(Buffer.from((await pieces.next()).value as Uint8Array).toString()).toBe('start');
    res.cancel();
    expect((await pieces.next()).done).toBe(true);
    await until(() => s.open === 0, { name: 'the connection closed' });
  });

  it('keeps a connection for the next call under the same policy, never for another policy', async () => {
    const s = await serve((_req, res) => res.end('ok'));
    const policy = new OutboundPolicy([s.origin]);
    for (let i = 0; i < 3; i++) {
      expect(await readAll(await outboundFetch(policy, get(`${s.origin}/${i}`), LIMITS))).toBe(
        'ok',
      );
    }
    expect(s.connections).toBe(1);
    // The same grant in another policy (another actor's) opens a connection of its own.
    const other = new OutboundPolicy([s.origin]);
    expect(await readAll(await outboundFetch(other, get(`${s.origin}/x`), LIMITS))).toBe('ok');
    expect(s.connections).toBe(2);
  });

  it('a body left unread takes its connection down instead of handing it on', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.write('start');
    });
    const policy = new OutboundPolicy([s.origin]);
    const res = await outboundFetch(policy, get(`${s.origin}/`), LIMITS);
    res.cancel();
    await until(() => s.open === 0, { name: 'the connection closed' });
    const again = await outboundFetch(policy, get(`${s.origin}/`), LIMITS);
    again.cancel();
    expect(s.connections).toBe(2);
  });

  it("the caller's signal aborts with its reason", async () => {
    const s = await serve(() => {});
    const ac = new AbortController();
    const p = outboundFetch(new OutboundPolicy([s.origin]), get(`${s.origin}/`), LIMITS, ac.signal);
    await until(() => s.requests.length === 1 || s.connections === 1, { name: 'the request' });
    const reason = new Error('invocation cancelled');
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
    await until(() => s.open === 0, { name: 'the connection closed' });
  });
});

describe('outboundFetch: bad input and failures', () => {
  it.each([
    ['not a url', 'bad_url'],
    ['ftp://127.0.0.1/', 'bad_url'],
    ['http://user:pw@127.0.0.1/', 'bad_url'],
  ])('%s → %s', async (url, kind) => {
    const err = await failure(outboundFetch(new OutboundPolicy(['*://*:*']), get(url), LIMITS));
    expect(err.kind).toBe(kind);
  });

  it.each(['CONNECT', 'TRACE', 'GE T'])('method %j is refused', async (method) => {
    const s = await serve((_req, res) => res.end());
    const err = await failure(
      outboundFetch(new OutboundPolicy([s.origin]), { method, url: s.origin, headers: [] }, LIMITS),
    );
    expect(err.kind).toBe('protocol');
    expect(s.connections).toBe(0);
  });

  it('a granted port with nothing listening is a connect error', async () => {
    const port = await freePort();
    const err = await failure(
      outboundFetch(
        new OutboundPolicy([`http://127.0.0.1:${port}`]),
        get(`http://127.0.0.1:${port}/`),
        LIMITS,
      ),
    );
    expect(err.kind).toBe('connect');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('https goes through the same checks: a loopback name is refused, a granted address connects', async () => {
    // A plain HTTP server: the TLS handshake fails, which shows the socket was opened.
    const s = await serve((_req, res) => res.end('plain'));
    const url = `https://localhost:${s.port}/`;
    const denied = await failure(
      outboundFetch(new OutboundPolicy([`https://localhost:${s.port}`]), get(url), LIMITS),
    );
    expect(denied.kind).toBe('denied');
    expect(denied.url).toBe(url);
    expect(s.connections).toBe(0);
    const err = await failure(
      outboundFetch(
        new OutboundPolicy([`https://localhost:${s.port}`, `https://127.0.0.1:${s.port}`]),
        get(url),
        LIMITS,
      ),
    );
    expect(err.kind).toBe('connect');
    expect(s.connections).toBe(1);
  });

  it('a bad limit is a RangeError', async () => {
    await expect(
      outboundFetch(new OutboundPolicy([]), get('http://a.test/'), {
        timeoutMs: 0,
        maxResponseBytes: 1,
      }),
    ).rejects.toBeInstanceOf(RangeError);
  });
});
