import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, WeftError } from '../../lattice/errors.ts';
import { decodeRequestPath, normalizeRequestPath, splitTarget } from '../../lattice/http-path.ts';

function rejection(path: string): { code: string; reason: unknown } {
  try {
    normalizeRequestPath(path);
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    const e = err as WeftError;
    return { code: e.code, reason: e.details?.['reason'] };
  }
  throw new Error(`expected ${JSON.stringify(path)} to be rejected`);
}

describe('splitTarget', () => {
  it.each([
    ['/p', '/p', ''],
    ['/p?q=1&r', '/p', 'q=1&r'],
    ['/p?', '/p', ''],
    ['/p?a?b', '/p', 'a?b'],
    ['/?x', '/', 'x'],
    ['http://h/p?q', '/p', 'q'],
    ['https://h:8443/a/b', '/a/b', ''],
    ['http://h', '/', ''],
    ['http://h?q', '/', 'q'],
    ['/p#frag', '/p', ''],
    ['/p?q#frag', '/p', 'q'],
    ['*', '*', ''],
    ['', '', ''],
  ])('%j → path %j, query %j', (url, path, query) => {
    expect(splitTarget(url)).toEqual({ path, query });
  });
});

describe('normalizeRequestPath', () => {
  it.each([
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/b/', '/a/b/'],
    ['//', '/'],
    ['//a//b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/./', '/'],
    ['/a/.', '/a/'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/..', '/a/'],
    ['/a/..', '/'],
    ['/a/../', '/'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/%2E%2e/b', '/b'],
    ['/a/b/%2E%2e/', '/a/'],
    ['/a/%2E./b', '/b'],
    ['/a/.%2e/b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['/a/...', '/a/...'],
    ['/a/..b', '/a/..b'],
    ['/%7euser/%41', '/~user/A'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a%20b', '/a%20b'],
    ['/a%3fb', '/a%3Fb'],
    ['/%21/!', '/%21/!'],
    ["/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;="],
    ['/a|b^c', '/a%7Cb%5Ec'],
    ['/[x]{y}"<>`', '/%5Bx%5D%7By%7D%22%3C%3E%60'],
  ])('%j → %j', (raw, normalized) => {
    expect(normalizeRequestPath(raw)).toBe(normalized);
  });

  it.each([
    ['/..', 'above-root'],
    ['/../a', 'above-root'],
    ['/a/../..', 'above-root'],
    ['/a/../../b', 'above-root'],
    ['/%2e%2e/etc/passwd', 'above-root'],
    ['/a/%2E%2e/%2e%2E/', 'above-root'],
    ['/a%2fb', 'encoded-separator'],
    ['/a%2Fb', 'encoded-separator'],
    ['/..%2f..%2fetc', 'encoded-separator'],
    ['/a%5cb', 'encoded-separator'],
    ['/a\\b', 'bad-char'],
    ['/a%00b', 'encoded-control'],
    ['/a%0d%0aSet-Cookie:x', 'encoded-control'],
    ['/a%7f', 'encoded-control'],
    ['/a%c2%85', 'encoded-control'], // U+0085 NEL
    ['/a\u0000b', 'bad-char'],
    ['/a\tb', 'bad-char'],
    ['/a b', 'bad-char'],
    ['/a?b', 'bad-char'],
    ['/a#b', 'bad-char'],
    ['/café', 'bad-char'],
    ['/a%', 'bad-escape'],
    ['/a%4', 'bad-escape'],
    ['/a%zz', 'bad-escape'],
    ['/a%ff', 'bad-utf8'],
    ['/a%c3', 'bad-utf8'],
    ['*', 'not-origin-form'],
    ['', 'not-origin-form'],
    ['a/b', 'not-origin-form'],
    ['host:443', 'not-origin-form'],
  ])('%j → BadRequest (%s)', (raw, reason) => {
    expect(rejection(raw)).toEqual({ code: ErrorCode.BadRequest, reason });
  });

  it('puts the reason and (truncated) path in details', () => {
    const long = `/${'a'.repeat(1000)}/%2f`;
    try {
      normalizeRequestPath(long);
      expect.unreachable();
    } catch (err) {
      const e = err as WeftError;
      expect(e.httpStatus).toBe(400);
      expect(String(e.details?.['path']).length).toBeLessThan(300);
    }
  });

  // Raw path characters: pchar, '/', '%', and some junk that must be encoded or rejected.
  const pathChar = fc.constantFrom(
    ...'/./.././/%2e%2E%2f%41%c3%a9%7e%20ab~!:@|^'.split(''),
    '%2e',
    '%2E',
    '%2e%2e',
    '..',
    '.',
    '//',
  );
  const rawPath = fc.array(pathChar, { maxLength: 24 }).map((parts) => `/${parts.join('')}`);

  it('is idempotent, and its output has no dot or empty segments and stays under /', () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        let out: string;
        try {
          out = normalizeRequestPath(raw);
        } catch (err) {
          expect((err as WeftError).code).toBe(ErrorCode.BadRequest);
          return;
        }
        expect(normalizeRequestPath(out)).toBe(out);
        expect(out.startsWith('/')).toBe(true);
        const segments = decodeRequestPath(out).split('/').slice(1);
        const inner = out.endsWith('/') ? segments.slice(0, -1) : segments;
        for (const s of inner) expect(['', '.', '..']).not.toContain(s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('decodeRequestPath', () => {
  it('decodes every escape and keeps separators', () => {
    expect(decodeRequestPath('/caf%C3%A9/a%20b/%21')).toBe('/café/a b/!');
    expect(decodeRequestPath('/plain/path')).toBe('/plain/path');
    expect(decodeRequestPath('')).toBe('');
  });
  it('applies the same per-segment checks', () => {
    expect(() => decodeRequestPath('/a%2fb')).toThrow(WeftError);
    expect(() => decodeRequestPath('/a%00')).toThrow(WeftError);
    expect(() => decodeRequestPath('/a\nb')).toThrow(WeftError);
  });
});
