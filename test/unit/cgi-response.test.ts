import { describe, expect, it } from 'vitest';
import { ErrorCode, WeftError } from '../../lattice/errors.ts';
import {
  cgiErrorReason,
  CgiErrorReason,
  DEFAULT_MAX_CGI_HEADER_BYTES,
  parseCgiResponse,
} from '../../host/wcgi/index.ts';

const enc = new TextEncoder();
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function parse(out: string | Uint8Array, method = 'GET', maxHeaderBytes?: number) {
  const bytes = typeof out === 'string' ? enc.encode(out) : out;
  return parseCgiResponse(bytes, { method, maxHeaderBytes });
}

function rejected(out: string | Uint8Array, method = 'GET', maxHeaderBytes?: number): WeftError {
  try {
    parse(out, method, maxHeaderBytes);
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    const e = err as WeftError;
    expect(e.code).toBe(ErrorCode.BadCgiResponse);
    expect(e.httpStatus).toBe(502);
    return e;
  }
  throw new Error('expected a BadCgiResponse');
}

describe('parseCgiResponse: separators (§6.2, §7.2)', () => {
  it.each([
    ['LF', 'Content-Type: text/plain\nX-A: 1\n\nhello'],
    ['CRLF', 'Content-Type: text/plain\r\nX-A: 1\r\n\r\nhello'],
    ['CRLF then LF', 'Content-Type: text/plain\r\nX-A: 1\r\n\nhello'],
    ['LF then CRLF', 'Content-Type: text/plain\nX-A: 1\n\r\nhello'],
    ['mixed', 'Content-Type: text/plain\r\nX-A: 1\n\r\nhello'],
  ])('%s', (_label, out) => {
    const r = parse(out);
    expect(r.status).toBe(200);
    expect(r.headers).toEqual([
      ['Content-Type', 'text/plain'],
      ['X-A', '1'],
    ]);
    expect(text(r.body)).toBe('hello');
  });

  it('the separator is the first empty line; later ones belong to the body', () => {
    const r = parse('Content-Type: text/plain\n\nline1\n\nStatus: 500\r\n\r\n');
    expect(r.status).toBe(200);
    expect(text(r.body)).toBe('line1\n\nStatus: 500\r\n\r\n');
  });

  it('an empty body is fine', () => {
    const r = parse('Content-Type: text/plain\n\n');
    expect(r.body.length).toBe(0);
  });
});

describe('parseCgiResponse: body bytes', () => {
  it('preserves binary bodies exactly, \\r\\n\\r\\n and NUL included, as a subarray (no copy)', () => {
    const headerBytes = enc.encode('Content-Type: application/octet-stream\r\n\r\n');
    const body = new Uint8Array(1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 37) & 0xff;
    body.set([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0a, 0x0a], 100);
    const stdout = new Uint8Array(headerBytes.length + body.length);
    stdout.set(headerBytes);
    stdout.set(body, headerBytes.length);
    const r = parseCgiResponse(stdout, { method: 'GET' });
    expect(r.body).toEqual(body);
    expect(r.body.buffer).toBe(stdout.buffer);
    expect(r.body.byteOffset).toBe(headerBytes.length);
  });

  it('works on a stdout that is itself a subarray of a larger buffer', () => {
    const big = enc.encode('JUNKContent-Type: text/plain\n\nbodyJUNK');
    const r = parseCgiResponse(big.subarray(4, big.length - 4), { method: 'GET' });
    expect(text(r.body)).toBe('body');
    expect(r.headers).toEqual([['Content-Type', 'text/plain']]);
  });

  it('HEAD: headers kept, body discarded (§4.3.3)', () => {
    const r = parse('Content-Type: text/plain\nX-A: 1\n\nbody that must go', 'HEAD');
    expect(r.status).toBe(200);
    expect(r.headers).toEqual([
      ['Content-Type', 'text/plain'],
      ['X-A', '1'],
    ]);
    expect(r.body.length).toBe(0);
  });

  it.each([204, 205, 304])('status %i has no body', (status) => {
    const r = parse(`Status: ${status}\nContent-Type: text/plain\n\nbody`);
    expect(r.status).toBe(status);
    expect(r.body.length).toBe(0);
  });
});

describe('parseCgiResponse: Status and Location (§6.3.2, §6.3.3)', () => {
  it.each([
    ['Status: 404 Not Found\nContent-Type: text/plain\n\n', 404],
    ['Status: 404\nContent-Type: text/plain\n\n', 404],
    ['status:201 Created\n\n', 201],
    ['STATUS: \t 503 Busy \t\n\n', 503],
    ['Content-Type: text/plain\nStatus: 418 I am a teapot\n\n', 418],
    ['Status: 200 OK with  spaces\tand tab\n\n', 200],
  ])('%j → %i', (out, status) => {
    const r = parse(out);
    expect(r.status).toBe(status);
    expect(r.headers.some(([n]) => n.toLowerCase() === 'status')).toBe(false);
  });

  it('client redirect: absolute Location without Status → 302', () => {
    const r = parse('Location: https://example.com/next?x=1#frag\n\n');
    expect(r.status).toBe(302);
    expect(r.headers).toEqual([['Location', 'https://example.com/next?x=1#frag']]);
  });

  it('local redirect: Location /path without Status → 302 too (no internal re-dispatch)', () => {
    const r = parse('Location: /other/path?q\n\n');
    expect(r.status).toBe(302);
    expect(r.headers).toEqual([['Location', '/other/path?q']]);
  });

  it('client redirect with document: Status wins over the 302 default', () => {
    const r = parse('Status: 301 Moved\nLocation: https://e.com/\nContent-Type: text/html\n\n<a>');
    expect(r.status).toBe(301);
    expect(r.headers).toEqual([
      ['Location', 'https://e.com/'],
      ['Content-Type', 'text/html'],
    ]);
    expect(text(r.body)).toBe('<a>');
  });

  it('Location with Content-Type but no Status is still 302 (lenient)', () => {
    expect(parse('Location: https://e.com/\nContent-Type: text/html\n\nmoved').status).toBe(302);
  });

  it.each([
    ['HTTP/1.1 404 X\nContent-Type: text/plain\n\n', 404],
    ['HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n', 200],
    ['HTTP/1.1 201\n\n', 201],
    ['HTTP/2 503 Service Unavailable\n\n', 503],
  ])('accepts a leading status line %j', (out, status) => {
    expect(parse(out).status).toBe(status);
  });

  it.each([
    'Status: abc\n\n',
    'Status: 20\n\n',
    'Status: 2000\n\n',
    'Status: 200OK\n\n',
    'Status: -200\n\n',
    'Status: 99 Low\n\n',
    'Status: 600 High\n\n',
    'Status: 100 Continue\n\n',
    'Status: 101 Switching Protocols\n\n',
    'HTTP/1.1 999 X\n\n',
    'HTTP/1.1 abc\n\n',
    'HTTP/1.1 200 OK\rX-Injected: 1\n\n',
  ])('rejects a bad status %j', (out) => {
    expect(cgiErrorReason(rejected(out))).toBe(CgiErrorReason.BadStatus);
  });

  it('a status line is only recognized first', () => {
    expect(cgiErrorReason(rejected('Content-Type: text/plain\nHTTP/1.1 200 OK\n\n'))).toBe(
      CgiErrorReason.NoColon,
    );
  });

  it.each([
    'Status: 200\nStatus: 404\n\n',
    'HTTP/1.1 200 OK\nStatus: 404\n\n',
    'Location: /a\nlocation: /b\n\n',
    'Content-Type: text/plain\ncontent-type: text/html\n\n',
  ])('rejects a duplicated CGI field %j', (out) => {
    expect(cgiErrorReason(rejected(out))).toBe(CgiErrorReason.DuplicateCgiField);
  });

  it('a field with an empty value is as if absent (§6.3)', () => {
    const r = parse('Status:\nContent-Type: text/plain\nX-Empty:   \nLocation:\n\n');
    expect(r.status).toBe(200);
    expect(r.headers).toEqual([['Content-Type', 'text/plain']]);
    // ...so it neither counts as a CGI field...
    expect(cgiErrorReason(rejected('Content-Type:\nX-A: 1\n\n'))).toBe(CgiErrorReason.NoCgiField);
    // ...nor as a duplicate.
    expect(parse('Content-Type:\nContent-Type: text/plain\n\n').headers).toEqual([
      ['Content-Type', 'text/plain'],
    ]);
  });
});

describe('parseCgiResponse: strict output', () => {
  it('keeps other fields in order, repeated ones separately, names as written', () => {
    const r = parse(
      'Content-Type: text/html\nSet-Cookie: a=1\nx-custom:  v  \nset-cookie: b=2; Path=/\nCache-Control: no-store\n\n',
    );
    expect(r.headers).toEqual([
      ['Content-Type', 'text/html'],
      ['Set-Cookie', 'a=1'],
      ['x-custom', 'v'],
      ['set-cookie', 'b=2; Path=/'],
      ['Cache-Control', 'no-store'],
    ]);
  });

  it('keeps HTAB inside a value', () => {
    expect(parse('Content-Type: text/plain\nX-T: a\tb\n\n').headers).toContainEqual([
      'X-T',
      'a\tb',
    ]);
  });

  it('drops hop-by-hop, Connection-named, Content-Length and X-CGI-* fields from the script', () => {
    const r = parse(
      [
        'Content-Type: text/plain',
        'Connection: close, X-Secret, Content-Type',
        'Keep-Alive: timeout=5',
        'Transfer-Encoding: chunked',
        'Upgrade: websocket',
        'TE: trailers',
        'Trailer: X-T',
        'Proxy-Connection: keep-alive',
        'Content-Length: 999999',
        'X-CGI-Debug: 1',
        'X-Secret: s',
        'X-Kept: k',
        '',
        'body',
      ].join('\n'),
    );
    expect(r.headers).toEqual([
      ['Content-Type', 'text/plain'],
      ['X-Kept', 'k'],
    ]);
    expect(text(r.body)).toBe('body');
  });

  it('decodes the header block as Latin-1 so node:http writes the same bytes back', () => {
    // UTF-8 "é" (C3 A9) in a filename, and a Latin-1 obs-text byte E9.
    const out = new Uint8Array([
      ...enc.encode('Content-Type: text/plain\nContent-Disposition: attachment; filename="caf'),
      0xc3,
      0xa9,
      ...enc.encode('"\nX-Obs: '),
      0xe9,
      ...enc.encode('\n\n'),
    ]);
    const r = parseCgiResponse(out, { method: 'GET' });
    const disposition = r.headers.find(([n]) => n === 'Content-Disposition')?.[1] ?? '';
    expect(latin1(disposition)).toEqual(
      new Uint8Array([...enc.encode('attachment; filename="caf'), 0xc3, 0xa9, 0x22]),
    );
    expect(r.headers).toContainEqual(['X-Obs', '\u00e9']);
  });
});

describe('parseCgiResponse: bad output → BadCgiResponse with a reason', () => {
  it.each([
    ['empty output', '', CgiErrorReason.Empty],
    ['EOF before the blank line', 'Content-Type: text/plain\n', CgiErrorReason.NoHeaderEnd],
    ['no newline at all', 'Content-Type: text/plain', CgiErrorReason.NoHeaderEnd],
    ['CR-only line ends', 'Content-Type: text/plain\r\r', CgiErrorReason.NoHeaderEnd],
    ['garbage', 'Hello, world!\n\n', CgiErrorReason.NoColon],
    ['HTML without a colon', '<html><body>oops</body></html>\n\n', CgiErrorReason.NoColon],
    ['HTML with a colon', '<a href="http://x">x</a>\n\n', CgiErrorReason.BadName],
    ['a line without ":"', 'Content-Type: text/plain\nNoColonHere\n\n', CgiErrorReason.NoColon],
    ['space before ":"', 'Content-Type : text/plain\n\n', CgiErrorReason.SpaceBeforeColon],
    ['tab before ":"', 'Content-Type\t: text/plain\n\n', CgiErrorReason.SpaceBeforeColon],
    [
      'continuation line',
      'Content-Type: text/plain\nX-A: 1\n  more\n\n',
      CgiErrorReason.ContinuationLine,
    ],
    ['empty name', ': value\nContent-Type: text/plain\n\n', CgiErrorReason.BadName],
    ['non-token name', 'Content-Type: text/plain\nX(A): 1\n\n', CgiErrorReason.BadName],
    [
      'injected CR in a value',
      'Content-Type: text/plain\nX-A: a\rSet-Cookie: x=1\n\n',
      CgiErrorReason.BadValue,
    ],
    ['CR CR LF line end', 'Content-Type: text/plain\r\r\n\r\n', CgiErrorReason.BadValue],
    ['NUL in a value', 'Content-Type: text/plain\nX-A: a\0b\n\n', CgiErrorReason.BadValue],
    ['ESC in a value', 'Content-Type: text/plain\nX-A: \x1b[31m\n\n', CgiErrorReason.BadValue],
    ['DEL in a value', 'Content-Type: text/plain\nX-A: \x7f\n\n', CgiErrorReason.BadValue],
    ['no CGI field', 'X-A: 1\nCache-Control: no-store\n\nbody', CgiErrorReason.NoCgiField],
    ['body without headers', '\nbody', CgiErrorReason.NoCgiField],
    ['CRLF body without headers', '\r\nbody', CgiErrorReason.NoCgiField],
  ])('%s', (_label, out, reason) => {
    const e = rejected(out);
    expect(e.details?.['reason']).toBe(reason);
    expect(cgiErrorReason(e)).toBe(reason);
  });

  it('reports the 1-based line and the field in details', () => {
    const e = rejected('Content-Type: text/plain\nX-Ok: 1\nX-Bad: a\rb\n\n');
    expect(e.details).toEqual({ reason: CgiErrorReason.BadValue, line: 3, field: 'X-Bad' });
    expect(e.message).toMatch(/^bad CGI response: /);
  });

  it('rejects a header block over the default 64 KiB cap', () => {
    const huge = `Content-Type: text/plain\nX-Big: ${'a'.repeat(DEFAULT_MAX_CGI_HEADER_BYTES)}\n\nbody`;
    const e = rejected(huge);
    expect(e.details).toEqual({
      reason: CgiErrorReason.HeaderTooLarge,
      limitBytes: DEFAULT_MAX_CGI_HEADER_BYTES,
    });
  });

  it('applies maxHeaderBytes to the header block including the blank line', () => {
    const out = 'Content-Type: text/plain\n\nbody'; // header block = 26 bytes
    expect(parse(out, 'GET', 26).status).toBe(200);
    expect(cgiErrorReason(rejected(out, 'GET', 25))).toBe(CgiErrorReason.HeaderTooLarge);
    // A body far larger than the cap is fine.
    const r = parse(`Content-Type: text/plain\n\n${'x'.repeat(200_000)}`, 'GET', 64);
    expect(r.body.length).toBe(200_000);
  });

  it('rejects a nonsensical maxHeaderBytes as a programming error', () => {
    expect(() => parse('Content-Type: text/plain\n\n', 'GET', 0)).toThrow(RangeError);
  });

  it('cgiErrorReason ignores other errors', () => {
    expect(cgiErrorReason(new Error('x'))).toBeUndefined();
    expect(
      cgiErrorReason(
        new WeftError(ErrorCode.BadRequest, 'x', { details: { reason: 'empty-output' } }),
      ),
    ).toBeUndefined();
    expect(cgiErrorReason('nope')).toBeUndefined();
  });
});
