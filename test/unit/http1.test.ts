import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, WeftError, type HttpRequestHead } from '../../lattice/index.ts';
import {
  DEFAULT_MAX_RESPONSE_HEAD_BYTES,
  ResponseParser,
  serializeRequest,
  type ResponseParserOptions,
} from '../../host/proxy/http1.ts';

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const asLatin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const EMPTY = new Uint8Array(0);
/** Byte equality whatever the Uint8Array subclass (Buffer or not). */
const sameBytes = (a: Uint8Array, b: Uint8Array): void => expect(Buffer.compare(a, b)).toBe(0);

function head(over: Partial<HttpRequestHead> = {}): HttpRequestHead {
  return {
    method: 'GET',
    path: '/hello',
    query: '',
    headers: [],
    routePrefix: '/hello',
    remoteAddr: '127.0.0.1',
    remotePort: 50000,
    scheme: 'http',
    serverName: 'example.test',
    serverPort: 80,
    protocol: 'HTTP/1.1',
    ...over,
  };
}

function thrown(fn: () => unknown, code: ErrorCode): WeftError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    const e = err as WeftError;
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected a ${code}`);
}

type Opts = Partial<ResponseParserOptions>;

function parser(opts: Opts = {}): ResponseParser {
  return new ResponseParser({ method: 'GET', maxBodyBytes: 1024 * 1024, ...opts });
}

/** Push `chunks` in order; call end() when `eof`; return the parser. */
function feed(chunks: Array<string | Uint8Array>, opts: Opts = {}, eof = false): ResponseParser {
  const p = parser(opts);
  for (const c of chunks) p.push(typeof c === 'string' ? latin1(c) : c);
  if (eof) p.end();
  return p;
}

function parse(raw: string | Uint8Array, opts: Opts = {}) {
  const p = parser(opts);
  expect(p.push(typeof raw === 'string' ? latin1(raw) : raw)).toBe(true);
  return p.result();
}

function bad(raw: string, opts: Opts = {}, eof = false): string {
  return thrown(() => feed([raw], opts, eof), ErrorCode.BadProxyResponse).message;
}

// ---------------------------------------------------------------------------------------------

describe('serializeRequest', () => {
  it('writes the request line, Host first, the fields, extra, then framing', () => {
    const out = serializeRequest(
      head({
        query: 'a=1&b',
        headers: [
          ['Accept', 'text/plain'],
          ['X-Multi', 'one'],
          ['X-Multi', 'two'],
        ],
      }),
      EMPTY,
      [['X-Forwarded-For', '127.0.0.1']],
    );
    expect(asLatin1(out)).toBe(
      'GET /hello?a=1&b HTTP/1.1\r\n' +
        'Host: example.test\r\n' +
        'Accept: text/plain\r\n' +
        'X-Multi: one\r\n' +
        'X-Multi: two\r\n' +
        'X-Forwarded-For: 127.0.0.1\r\n' +
        'Connection: keep-alive\r\n\r\n',
    );
  });

  it('drops hop-by-hop fields and those named by Connection', () => {
    const out = asLatin1(
      serializeRequest(
        head({
          headers: [
            ['Connection', 'keep-alive, X-Secret'],
            ['Keep-Alive', 'timeout=5'],
            ['Proxy-Connection', 'keep-alive'],
            ['TE', 'trailers'],
            ['Trailer', 'X-T'],
            ['Transfer-Encoding', 'chunked'],
            ['Upgrade', 'websocket'],
            ['x-secret', 'hidden'],
            ['X-Kept', 'yes'],
          ],
        }),
        EMPTY,
        [],
      ),
    );
    expect(out).toBe(
      'GET /hello HTTP/1.1\r\nHost: example.test\r\nX-Kept: yes\r\nConnection: keep-alive\r\n\r\n',
    );
  });

  it('takes Host from the head when present, else serverName with a non-default port', () => {
    const fromHeader = asLatin1(
      serializeRequest(head({ headers: [['host', 'app.test:8080']] }), EMPTY, []),
    );
    expect(fromHeader).toContain('\r\nHost: app.test:8080\r\n');
    expect(fromHeader.match(/host:/gi)).toHaveLength(1);

    const cases: Array<[Partial<HttpRequestHead>, string]> = [
      [{ serverPort: 80 }, 'example.test'],
      [{ serverPort: 8080 }, 'example.test:8080'],
      [{ scheme: 'https', serverPort: 443 }, 'example.test'],
      [{ scheme: 'https', serverPort: 80 }, 'example.test:80'],
      [{ serverName: '::1', serverPort: 8080 }, '[::1]:8080'],
    ];
    for (const [over, host] of cases) {
      expect(asLatin1(serializeRequest(head(over), EMPTY, []))).toContain(`\r\nHost: ${host}\r\n`);
    }
  });

  it('rejects more than one Host field', () => {
    const e = thrown(
      () =>
        serializeRequest(
          head({
            headers: [
              ['Host', 'a.test'],
              ['Host', 'b.test'],
            ],
          }),
          EMPTY,
          [],
        ),
      ErrorCode.BadRequest,
    );
    expect(e.message).toMatch(/more than one Host/);
  });

  it('sets Content-Length from the body, replacing the head’s, and appends the body', () => {
    const body = new Uint8Array([0, 1, 2, 0x0d, 0x0a, 255]);
    const out = serializeRequest(
      head({
        method: 'POST',
        headers: [
          ['Content-Length', '999'],
          ['Content-Type', 'application/octet-stream'],
        ],
      }),
      body,
      [],
    );
    const s = asLatin1(out);
    expect(s.match(/content-length/gi)).toHaveLength(1);
    const headEnd = s.indexOf('\r\n\r\n') + 4;
    expect(s.slice(0, headEnd)).toBe(
      'POST /hello HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/octet-stream\r\n' +
        'Content-Length: 6\r\nConnection: keep-alive\r\n\r\n',
    );
    sameBytes(out.subarray(headEnd), body);
    expect(out.length).toBe(headEnd + body.length);
  });

  it.each([
    ['POST', true],
    ['PUT', true],
    ['PATCH', true],
    ['GET', false],
    ['DELETE', false],
    ['HEAD', false],
  ])('%s with an empty body: Content-Length: 0 is %s', (method, expected) => {
    const s = asLatin1(serializeRequest(head({ method }), EMPTY, []));
    expect(s.includes('\r\nContent-Length: 0\r\n')).toBe(expected);
  });

  it('sends Content-Length for a GET with a body', () => {
    const s = asLatin1(serializeRequest(head(), latin1('abc'), []));
    expect(s).toContain('\r\nContent-Length: 3\r\n');
    expect(s.endsWith('\r\n\r\nabc')).toBe(true);
  });

  it('writes Latin-1 values byte for byte', () => {
    const out = serializeRequest(head({ headers: [['X-Name', 'caf\u00e9']] }), EMPTY, []);
    const i = asLatin1(out).indexOf('caf');
    expect([...out.subarray(i, i + 4)]).toEqual([0x63, 0x61, 0x66, 0xe9]);
  });

  it('returns a buffer that owns its ArrayBuffer', () => {
    const out = serializeRequest(head(), latin1('x'), []);
    expect(out.byteOffset).toBe(0);
    expect(out.buffer.byteLength).toBe(out.length);
  });

  describe('rejects anything that could split a line (BAD_REQUEST)', () => {
    it.each([
      ['CR in a value', [['X-A', 'a\rb']]],
      ['LF in a value', [['X-A', 'a\nInjected: 1']]],
      ['CRLF in a value', [['X-A', 'a\r\n\r\nGET /evil HTTP/1.1']]],
      ['NUL in a value', [['X-A', 'a\0b']]],
      ['U+010A in a value (would truncate to LF)', [['X-A', 'a\u010ab']]],
      ['CRLF in a name', [['X-A\r\nInjected', 'v']]],
      ['LF in a name', [['X-A\n', 'v']]],
      ['NUL in a name', [['X\0A', 'v']]],
      ['space in a name', [['X A', 'v']]],
      ['colon in a name', [['X-A: b', 'v']]],
      ['empty name', [['', 'v']]],
      ['LF in the Host field', [['Host', 'a.test\nX: y']]],
    ] as Array<[string, Array<[string, string]>]>)('%s', (_label, headers) => {
      const e = thrown(() => serializeRequest(head({ headers }), EMPTY, []), ErrorCode.BadRequest);
      expect(e.httpStatus).toBe(400);
      // The same checks apply to host-supplied fields.
      const x = thrown(() => serializeRequest(head(), EMPTY, headers), ErrorCode.BadRequest);
      expect(x.message).toMatch(/^invalid (header name|character in the value of header) /);
    });

    it.each([
      ['method', { method: 'GET /x HTTP/1.1\r\nX:' }],
      ['method with a space', { method: 'G T' }],
      ['path with a space', { path: '/a b' }],
      ['path with CRLF', { path: '/a\r\nX: y' }],
      ['path not starting with /', { path: 'a' }],
      ['query with LF', { query: 'a\nb' }],
      ['query with a space', { query: 'a b' }],
      ['serverName with CRLF', { serverName: 'a\r\nX: y' }],
    ] as Array<[string, Partial<HttpRequestHead>]>)('%s', (_label, over) => {
      const e = thrown(() => serializeRequest(head(over), EMPTY, []), ErrorCode.BadRequest);
      expect(e.message).toMatch(/^invalid /);
    });

    it('names the header in details', () => {
      const e = thrown(
        () => serializeRequest(head({ headers: [['X-Bad', 'a\nb']] }), EMPTY, []),
        ErrorCode.BadRequest,
      );
      expect(e.details).toEqual({ header: 'X-Bad' });
    });
  });

  it('refuses extra fields it sets itself (a host bug, not client input)', () => {
    for (const name of ['Host', 'content-length', 'Connection', 'Transfer-Encoding']) {
      const e = thrown(() => serializeRequest(head(), EMPTY, [[name, 'x']]), ErrorCode.Internal);
      expect(e.message).toBe(`extra header "${name}" is set by the codec`);
    }
  });

  it('round-trips through the request line and fields for arbitrary safe values', () => {
    const token = fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/);
    const value = fc.stringMatching(/^[\x20-\x7e\t]{0,30}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(token, value), { maxLength: 8 }), (pairs) => {
        const fields = pairs.filter(([n]) => !['host', 'connection'].includes(n.toLowerCase()));
        const s = asLatin1(serializeRequest(head({ headers: fields }), EMPTY, []));
        // Exactly one blank line, at the end; every line is a request line or "name: value".
        expect(s.indexOf('\r\n\r\n')).toBe(s.length - 4);
        const lines = s.slice(0, -4).split('\r\n');
        expect(lines[0]).toBe('GET /hello HTTP/1.1');
        for (const line of lines.slice(1)) expect(line).toMatch(/^[A-Za-z0-9-]+: /);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('ResponseParser: Content-Length bodies', () => {
  const raw =
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world';

  it('parses a simple response', () => {
    const p = parser();
    expect(p.headComplete).toBe(false);
    expect(p.status).toBeUndefined();
    expect(p.push(latin1(raw))).toBe(true);
    expect(p.headComplete).toBe(true);
    expect(p.status).toBe(200);
    expect(p.bodyBytesSoFar).toBe(11);
    expect(p.leftover.length).toBe(0);
    const r = p.result();
    expect(r.status).toBe(200);
    expect(r.headers).toEqual([['Content-Type', 'text/plain']]);
    expect(text(r.body)).toBe('hello world');
    expect(r.keepAlive).toBe(true);
  });

  it('gives the same result split at every byte boundary', () => {
    const bytes = latin1(raw);
    const expected = parse(raw);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const p = parser();
      expect(p.push(bytes.subarray(0, cut))).toBe(cut === bytes.length);
      expect(p.push(bytes.subarray(cut))).toBe(true);
      expect(p.result()).toEqual(expected);
    }
  });

  it('gives the same result for random split points (property)', () => {
    const bodyArb = fc.uint8Array({ maxLength: 300 });
    fc.assert(
      fc.property(
        bodyArb,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.boolean(),
        fc.boolean(),
        (body, cuts, crlf, chunked) => {
          const eol = crlf ? '\r\n' : '\n';
          let wire: Uint8Array;
          if (chunked) {
            const parts: Uint8Array[] = [
              latin1(`HTTP/1.1 200 OK${eol}Transfer-Encoding: chunked${eol}X-A: 1${eol}${eol}`),
            ];
            for (let i = 0; i < body.length; i += 37) {
              const piece = body.subarray(i, i + 37);
              parts.push(latin1(`${piece.length.toString(16)};ext=1${eol}`), piece, latin1(eol));
            }
            parts.push(latin1(`0${eol}X-Trailer: t${eol}${eol}`));
            wire = Buffer.concat(parts);
          } else {
            wire = Buffer.concat([
              latin1(`HTTP/1.1 200 OK${eol}Content-Length: ${body.length}${eol}X-A: 1${eol}${eol}`),
              body,
            ]);
          }
          // Cut points strictly inside the wire bytes: the response completes on the last push.
          const points = [...new Set(cuts.map((c) => c % wire.length))].sort((a, b) => a - b);
          const p = parser();
          let prev = 0;
          for (const c of points) {
            expect(p.push(wire.subarray(prev, c))).toBe(false);
            prev = c;
          }
          expect(p.push(wire.subarray(prev))).toBe(true);
          const r = p.result();
          expect(r.status).toBe(200);
          expect(r.headers).toEqual([['X-A', '1']]);
          sameBytes(r.body, body);
          expect(r.keepAlive).toBe(true);
          expect(p.leftover.length).toBe(0);
        },
      ),
    );
  });

  it('accepts LF-only line ends', () => {
    const r = parse('HTTP/1.1 201 Created\nX-A: 1\nContent-Length: 2\n\nok');
    expect(r.status).toBe(201);
    expect(r.headers).toEqual([['X-A', '1']]);
    expect(text(r.body)).toBe('ok');
  });

  it('accepts a status line without a reason, and trims field values', () => {
    const r = parse('HTTP/1.1 404\r\nX-A:   spaced \t\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n');
    expect(r.status).toBe(404);
    expect(r.headers).toEqual([
      ['X-A', 'spaced'],
      ['X-Empty', ''],
    ]);
  });

  it('removes whitespace between a field name and the colon (RFC 9112 §5.1)', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length : 2\r\nX-A\t: 1\r\n\r\nok');
    expect(text(r.body)).toBe('ok');
    expect(r.headers).toEqual([['X-A', '1']]);
  });

  it('accepts a list of identical Content-Length values', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok');
    expect(text(r.body)).toBe('ok');
  });

  it('completes at once with Content-Length: 0', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    expect(r.body.length).toBe(0);
    expect(r.keepAlive).toBe(true);
  });

  it('keeps repeated fields and their order, drops hop-by-hop and Connection-named fields', () => {
    const r = parse(
      'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n' +
        'Trailer: X-T\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n' +
        'Set-Cookie: b=2\r\nContent-Length: 0\r\n\r\n',
    );
    expect(r.headers).toEqual([
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
  });

  it('reports bytes past the end as leftover', () => {
    const p = parser();
    expect(p.push(latin1('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200'))).toBe(true);
    expect(asLatin1(p.leftover)).toBe('HTTP/1.1 200');
    expect(p.push(latin1(' OK'))).toBe(true);
    expect(asLatin1(p.leftover)).toBe('HTTP/1.1 200 OK');
    expect(text(p.result().body)).toBe('ok');
  });

  it('reports leftover after a bodiless response', () => {
    const p = parser({ method: 'HEAD' });
    expect(p.push(latin1('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'))).toBe(true);
    expect(asLatin1(p.leftover)).toBe('hello');
  });

  it('end() after completion is fine; push() after end() is a bug', () => {
    const p = feed(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    p.end();
    expect(text(p.result().body)).toBe('ok');
    thrown(() => p.push(latin1('x')), ErrorCode.Internal);
  });

  it('result() before completion is a bug', () => {
    const p = feed(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no']);
    expect(thrown(() => p.result(), ErrorCode.Internal).message).toMatch(/before the response/);
  });

  it('tracks bodyBytesSoFar, status and headComplete as bytes arrive', () => {
    const p = parser();
    p.push(latin1('HTTP/1.1 200 OK\r\nContent-Len'));
    expect(p.headComplete).toBe(false);
    p.push(latin1('gth: 10\r\n\r\n'));
    expect(p.headComplete).toBe(true);
    expect(p.status).toBe(200);
    expect(p.bodyBytesSoFar).toBe(0);
    p.push(latin1('abcd'));
    expect(p.bodyBytesSoFar).toBe(4);
    expect(p.complete).toBe(false);
  });

  it('returns a 5 MiB body split into many chunks byte for byte', () => {
    const size = 5 * 1024 * 1024;
    const body = new Uint8Array(size);
    for (let i = 0; i < size; i++) body[i] = (i * 131 + (i >>> 11)) & 0xff;
    const wire = Buffer.concat([
      latin1(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`),
      body,
    ]);
    const p = parser({ maxBodyBytes: size });
    let done = false;
    for (let i = 0; i < wire.length; i += 65_521) done = p.push(wire.subarray(i, i + 65_521));
    expect(done).toBe(true);
    sameBytes(p.result().body, body);
  });

  it('returns a 5 MiB chunked body byte for byte', () => {
    const size = 5 * 1024 * 1024;
    const body = new Uint8Array(size);
    for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >>> 9)) & 0xff;
    const parts: Uint8Array[] = [latin1('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
    for (let i = 0; i < size; i += 40_000) {
      const piece = body.subarray(i, i + 40_000);
      parts.push(latin1(`${piece.length.toString(16)}\r\n`), piece, latin1('\r\n'));
    }
    parts.push(latin1('0\r\n\r\n'));
    const wire = Buffer.concat(parts);
    const p = parser({ maxBodyBytes: size });
    let done = false;
    for (let i = 0; i < wire.length; i += 16_411) done = p.push(wire.subarray(i, i + 16_411));
    expect(done).toBe(true);
    expect(p.bodyBytesSoFar).toBe(size);
    sameBytes(p.result().body, body);
  });
});

describe('ResponseParser: chunked bodies', () => {
  it('de-chunks, ignoring extensions and dropping trailers', () => {
    const r = parse(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nX-A: 1\r\n\r\n' +
        '5;name=value;flag\r\nhello\r\n' +
        '1 ; spaced-ext="q"\r\n \r\n' +
        'A\r\n0123456789\r\n' +
        '0;last\r\nX-T: t\r\nX-U: u\r\n\r\n',
    );
    expect(text(r.body)).toBe('hello 0123456789');
    expect(r.headers).toEqual([['X-A', '1']]);
    expect(r.keepAlive).toBe(true);
  });

  it('accepts LF-only line ends and uppercase or zero-padded sizes', () => {
    const r = parse('HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n00B\nhello world\n000\n\n');
    expect(text(r.body)).toBe('hello world');
  });

  it('accepts an empty chunked body', () => {
    const r = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(r.body.length).toBe(0);
  });

  it('Transfer-Encoding overrides Content-Length, and the connection is not reused', () => {
    const r = parse(
      'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    );
    expect(text(r.body)).toBe('ok');
    expect(r.keepAlive).toBe(false);
  });

  it('ignores an invalid Content-Length when chunked', () => {
    const r = parse(
      'HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    );
    expect(text(r.body)).toBe('ok');
  });

  it('splits anywhere, even inside the CRLF after chunk data', () => {
    const raw =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e\r\nde\r\n0\r\nT: 1\r\n\r\n';
    const bytes = latin1(raw);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const p = parser();
      p.push(bytes.subarray(0, cut));
      expect(p.push(bytes.subarray(cut))).toBe(true);
      expect(text(p.result().body)).toBe('abcde');
    }
  });

  it.each([
    ['a size that is not hex', 'zz\r\n', /invalid chunk size line "zz"/],
    ['an empty size line', '\r\n', /invalid chunk size line ""/],
    ['a negative size', '-1\r\n', /invalid chunk size line/],
    ['a size with a leading space', ' 5\r\nhello\r\n0\r\n\r\n', /invalid chunk size line/],
    ['a size too large for a number', 'fffffffffffffffff\r\n', /invalid chunk size line/],
    [
      'a control character in an extension',
      '2;a\x01\r\nok\r\n0\r\n\r\n',
      /invalid chunk size line/,
    ],
    ['data longer than the size', '2\r\nokk\r\n0\r\n\r\n', /missing line end after chunk data/],
    ['a trailer without a colon', '0\r\nnot a field\r\n\r\n', /trailer line without a colon/],
  ])('rejects %s', (_label, chunks, message) => {
    expect(bad(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`)).toMatch(message);
  });

  it('bounds the chunk size line', () => {
    const msg = bad(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}`);
    expect(msg).toMatch(/chunk size line larger than 4096 bytes/);
  });

  it('bounds the trailer section', () => {
    const msg = bad(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${'t'.repeat(200)}\r\n`,
      { maxHeaderBytes: 100 },
    );
    expect(msg).toMatch(/trailer section larger than 100 bytes/);
  });

  it.each([
    ['gzip', /unsupported transfer coding "gzip"/],
    ['gzip, chunked', /unsupported transfer coding "gzip"/],
    ['chunked, gzip', /unsupported transfer coding "gzip"/],
    ['chunked, chunked', /invalid Transfer-Encoding "chunked, chunked"/],
    ['', /invalid Transfer-Encoding ""/],
  ])('rejects Transfer-Encoding %j', (te, message) => {
    expect(bad(`HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`)).toMatch(message);
  });
});

describe('ResponseParser: close-delimited bodies', () => {
  it('reads until end(), then completes with keepAlive false', () => {
    const p = parser();
    expect(p.push(latin1('HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nsome'))).toBe(false);
    expect(p.push(latin1(' body'))).toBe(false);
    expect(p.push(EMPTY)).toBe(false);
    p.end();
    expect(p.complete).toBe(true);
    const r = p.result();
    expect(text(r.body)).toBe('some body');
    expect(r.keepAlive).toBe(false);
    expect(r.headers).toEqual([['X-A', '1']]);
  });

  it('an empty close-delimited body', () => {
    const p = feed(['HTTP/1.0 200 OK\r\n\r\n'], {}, true);
    expect(p.result().body.length).toBe(0);
  });
});

describe('ResponseParser: responses without a body', () => {
  it('HEAD: no body despite Content-Length; keepAlive kept', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-A: 1\r\n\r\n', {
      method: 'HEAD',
    });
    expect(r.body.length).toBe(0);
    expect(r.headers).toEqual([['X-A', '1']]);
    expect(r.keepAlive).toBe(true);
  });

  it('HEAD: a Content-Length over maxBodyBytes is fine, no body follows', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n', {
      method: 'HEAD',
      maxBodyBytes: 10,
    });
    expect(r.status).toBe(200);
  });

  it.each([204, 304])('%i: no body, even with framing fields', (status) => {
    const p = parser();
    expect(
      p.push(
        latin1(`HTTP/1.1 ${status} X\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`),
      ),
    ).toBe(true);
    const r = p.result();
    expect(r.status).toBe(status);
    expect(r.body.length).toBe(0);
    expect(r.headers).toEqual([]);
    expect(r.keepAlive).toBe(true);
  });

  it('CONNECT 2xx (a tunnel) is rejected', () => {
    expect(bad('HTTP/1.1 200 OK\r\n\r\n', { method: 'CONNECT' })).toMatch(/CONNECT tunnels/);
  });
});

describe('ResponseParser: interim responses', () => {
  it.each([100, 102, 103, 199])('skips %i', (status) => {
    const r = parse(
      `HTTP/1.1 ${status} Interim\r\nLink: </a.css>; rel=preload\r\n\r\n` +
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    );
    expect(r.status).toBe(200);
    expect(r.headers).toEqual([]);
    expect(text(r.body)).toBe('ok');
  });

  it('skips several, split across pushes; headComplete only for the final head', () => {
    const p = parser();
    p.push(latin1('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'));
    expect(p.headComplete).toBe(false);
    expect(p.status).toBeUndefined();
    expect(p.push(latin1('HTTP/1.1 204 No Content\r\n\r\n'))).toBe(true);
    expect(p.status).toBe(204);
  });

  it('rejects 101 (upgrades are not supported)', () => {
    expect(bad('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n')).toMatch(/101/);
  });

  it('counts interim heads against maxHeaderBytes', () => {
    const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
    const msg = bad(interim.repeat(10), { maxHeaderBytes: 100 });
    expect(msg).toBe('head larger than 100 bytes');
  });
});

describe('ResponseParser: keepAlive', () => {
  it.each([
    ['HTTP/1.1', '', true],
    ['HTTP/1.1', 'Connection: close\r\n', false],
    ['HTTP/1.1', 'Connection: Keep-Alive, CLOSE\r\n', false],
    ['HTTP/1.1', 'Connection: keep-alive\r\n', true],
    ['HTTP/1.0', '', false],
    ['HTTP/1.0', 'Connection: keep-alive\r\n', true],
    ['HTTP/1.0', 'Connection: Keep-Alive\r\nKeep-Alive: timeout=5\r\n', true],
    ['HTTP/1.0', 'Connection: keep-alive, close\r\n', false],
  ])('%s %j → %s', (version, fields, keepAlive) => {
    const r = parse(`${version} 200 OK\r\n${fields}Content-Length: 2\r\n\r\nok`);
    expect(r.keepAlive).toBe(keepAlive);
    expect(r.headers).toEqual([]);
  });

  it('HTTP/1.0 with Transfer-Encoding is faulty framing: parsed, not reused', () => {
    const r = parse(
      'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    );
    expect(text(r.body)).toBe('ok');
    expect(r.keepAlive).toBe(false);
  });
});

describe('ResponseParser: malformed responses (BAD_PROXY_RESPONSE)', () => {
  it.each([
    ['HTTP/1.1 banana\r\n\r\n', 'malformed status line "HTTP/1.1 banana"'],
    ['HTTP/1.1 20 OK\r\n\r\n', 'malformed status line "HTTP/1.1 20 OK"'],
    ['HTTP/1.1 2000 OK\r\n\r\n', 'malformed status line "HTTP/1.1 2000 OK"'],
    ['HTTP/1.1  200 OK\r\n\r\n', 'malformed status line "HTTP/1.1  200 OK"'],
    ['HTTP/1.1\t200 OK\r\n\r\n', 'malformed status line "HTTP/1.1\\t200 OK"'],
    ['http/1.1 200 OK\r\n\r\n', 'malformed status line "http/1.1 200 OK"'],
    ['HTTP/11 200 OK\r\n\r\n', 'malformed status line "HTTP/11 200 OK"'],
    ['ICY 200 OK\r\n\r\n', 'malformed status line "ICY 200 OK"'],
    ['\r\nHTTP/1.1 200 OK\r\n\r\n', 'malformed status line ""'],
    ['HTTP/1.1 200 O\x01K\r\n\r\n', 'malformed status line "HTTP/1.1 200 O\\u0001K"'],
    ['HTTP/1.1 200 OK\rX\r\n\r\n', 'malformed status line "HTTP/1.1 200 OK\\rX"'],
    ['HTTP/2.0 200 OK\r\n\r\n', 'unsupported HTTP version "HTTP/2.0"'],
    ['HTTP/1.1 099 Low\r\n\r\n', 'status code 099 outside 100–599'],
    ['HTTP/1.1 600 High\r\n\r\n', 'status code 600 outside 100–599'],
    ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', 'header line without a colon: "no colon here"'],
    ['HTTP/1.1 200 OK\r\n: empty name\r\n\r\n', 'invalid header name ""'],
    ['HTTP/1.1 200 OK\r\nX Y: z\r\n\r\n', 'invalid header name "X Y"'],
    ['HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n', 'obsolete line folding in a header'],
    ['HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n', 'invalid character in the value of header "X-A"'],
    ['HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n', 'invalid character in the value of header "X-A"'],
    ['HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n', 'invalid Content-Length "x"'],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'invalid Content-Length "-1"'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n', 'invalid Content-Length "1e3"'],
    ['HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n', 'invalid Content-Length ""'],
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n',
      'invalid Content-Length "99999999999999999999"',
    ],
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok',
      'conflicting Content-Length values',
    ],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok', 'conflicting Content-Length values'],
  ])('%j', (raw, message) => {
    expect(bad(raw)).toBe(message);
  });

  it('rejects a head over maxHeaderBytes, with the limit in details', () => {
    const e = thrown(
      () => feed([`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(DEFAULT_MAX_RESPONSE_HEAD_BYTES)}`]),
      ErrorCode.BadProxyResponse,
    );
    expect(e.message).toBe('head larger than 65536 bytes');
    expect(e.details).toEqual({ limitBytes: 65536 });
  });

  it('accepts a head of exactly maxHeaderBytes, rejects one byte more, byte by byte too', () => {
    const exact = 'HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n';
    expect(parse(exact, { maxHeaderBytes: exact.length }).status).toBe(200);
    expect(bad(exact, { maxHeaderBytes: exact.length - 1 })).toBe(
      `head larger than ${exact.length - 1} bytes`,
    );
    const p = parser({ maxHeaderBytes: exact.length - 1 });
    const bytes = latin1(exact);
    const e = thrown(() => {
      for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
    }, ErrorCode.BadProxyResponse);
    expect(e.message).toMatch(/head larger than/);
  });

  it('does not report a head whose framing is invalid as complete', () => {
    const p = parser();
    thrown(
      () => p.push(latin1('HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n')),
      ErrorCode.BadProxyResponse,
    );
    expect(p.headComplete).toBe(false);
    expect(p.status).toBeUndefined();
  });

  it('keeps failing after an error', () => {
    const p = parser();
    const first = thrown(
      () => p.push(latin1('HTTP/1.1 banana\r\n\r\n')),
      ErrorCode.BadProxyResponse,
    );
    expect(thrown(() => p.push(latin1('more')), ErrorCode.BadProxyResponse)).toBe(first);
    expect(thrown(() => p.end(), ErrorCode.BadProxyResponse)).toBe(first);
  });
});

describe('ResponseParser: truncated responses (INSTANCE_CRASHED)', () => {
  it.each([
    [[], 'connection closed before the response head'],
    [['HTTP/1.1 200 OK\r\nX-A'], /^connection closed before the response head was complete/],
    [['HTTP/1.1 100 Continue\r\n\r\n'], /^connection closed before the response head was complete/],
    [
      ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'],
      'connection closed after 3 of 10 body bytes',
    ],
    [
      ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'],
      'connection closed after 0 of 10 body bytes',
    ],
    [
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel'],
      'connection closed inside a chunked body after 3 body bytes',
    ],
    [
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n'],
      'connection closed inside a chunked body after 2 body bytes',
    ],
  ] as Array<[string[], string | RegExp]>)('%j', (chunks, message) => {
    const p = feed(chunks);
    const e = thrown(() => p.end(), ErrorCode.InstanceCrashed);
    if (typeof message === 'string') expect(e.message).toBe(message);
    else expect(e.message).toMatch(message);
    expect(e.httpStatus).toBe(502);
    thrown(() => p.end(), ErrorCode.InstanceCrashed);
  });
});

describe('ResponseParser: body limit (RESPONSE_TOO_LARGE)', () => {
  const limit = { maxBodyBytes: 10 };

  function tooLarge(chunks: string[], eof = false): WeftError {
    const e = thrown(() => feed(chunks, limit, eof), ErrorCode.ResponseTooLarge);
    expect(e.details).toEqual({ limitBytes: 10 });
    expect(e.httpStatus).toBe(502);
    return e;
  }

  it('accepts a body of exactly maxBodyBytes', () => {
    expect(
      parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789', limit).body.length,
    ).toBe(10);
    const p = feed(['HTTP/1.1 200 OK\r\n\r\n0123456789'], limit, true);
    expect(p.result().body.length).toBe(10);
  });

  it('Content-Length over the limit fails before any body byte', () => {
    const e = tooLarge(['HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n']);
    expect(e.message).toBe('response body larger than 10 bytes');
  });

  it('a chunk that would pass the limit fails at its size line', () => {
    const p = parser(limit);
    p.push(latin1('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n'));
    const e = thrown(() => p.push(latin1('5\r\n')), ErrorCode.ResponseTooLarge);
    expect(e.details).toEqual({ limitBytes: 10 });
    expect(p.bodyBytesSoFar).toBe(6);
  });

  it('a close-delimited body fails when it passes the limit', () => {
    const e = tooLarge(['HTTP/1.1 200 OK\r\n\r\n01234', '56789', 'X']);
    expect(e.message).toBe('response body larger than 10 bytes');
  });

  it('maxBodyBytes 0 allows only empty bodies', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { maxBodyBytes: 0 }).status).toBe(
      200,
    );
    thrown(
      () => feed(['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n'], { maxBodyBytes: 0 }),
      ErrorCode.ResponseTooLarge,
    );
  });
});

describe('ResponseParser: options', () => {
  it('rejects invalid limits', () => {
    expect(() => parser({ maxBodyBytes: -1 })).toThrow(RangeError);
    expect(() => parser({ maxBodyBytes: 1.5 })).toThrow(RangeError);
    expect(() => parser({ maxHeaderBytes: 0 })).toThrow(RangeError);
  });
});

describe('ResponseParser, body taken while it arrives', () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  const str = (b: Uint8Array) => new TextDecoder().decode(b);

  it('hands out each de-chunked increment once; the result holds only the rest', () => {
    const p = new ResponseParser({ method: 'GET', maxBodyBytes: 1000 });
    expect(
      p.push(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhel')),
    ).toBe(false);
    expect(p.headComplete).toBe(true);
    expect(p.headers).toEqual([['X-A', '1']]);
    expect(p.declaredLength).toBeUndefined();
    expect(p.untakenBytes).toBe(3);
    expect(str(p.takeBody())).toBe('hel');
    expect(p.takeBody().length).toBe(0);
    expect(p.push(bytes('lo\r\n6\r\n world\r\n'))).toBe(false);
    expect(str(p.takeBody())).toBe('lo world');
    expect(p.push(bytes('1\r\n!\r\n0\r\n\r\n'))).toBe(true);
    expect(str(p.result().body)).toBe('!');
  });

  it('does the same for a Content-Length body, which declares its length', () => {
    const p = new ResponseParser({ method: 'GET', maxBodyBytes: 1000 });
    p.push(bytes('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123'));
    expect(p.declaredLength).toBe(10);
    const first = p.takeBody();
    expect(str(first)).toBe('0123');
    expect(p.push(bytes('456789'))).toBe(true);
    expect(str(p.result().body)).toBe('456789');
    // What was taken is a copy: the parser's own buffer does not change it.
    expect(str(first)).toBe('0123');
  });
});
