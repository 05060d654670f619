import { describe, expect, it } from 'vitest';
import { ErrorCode, WeftError } from '../../lattice/errors.ts';
import type { HeaderPair, HttpRequestHead } from '../../lattice/http.ts';
import {
  buildCgiEnv,
  CgiDialect,
  MAX_CGI_REQUEST_ENV_BYTES,
  REQUEST_VARIABLES,
  type CgiEnvOptions,
} from '../../host/wcgi/index.ts';

function head(over: Partial<HttpRequestHead> = {}): HttpRequestHead {
  return {
    method: 'GET',
    path: '/hello/world',
    query: '',
    headers: [['Host', 'example.com']],
    routePrefix: '/hello',
    remoteAddr: '203.0.113.7',
    remotePort: 54321,
    scheme: 'http',
    serverName: 'example.com',
    serverPort: 80,
    protocol: 'HTTP/1.1',
    ...over,
  };
}

const OPTS: CgiEnvOptions = { bodyLength: 0, serverSoftware: 'weft/0.1.0' };

function env(over: Partial<HttpRequestHead> = {}, opts: Partial<CgiEnvOptions> = {}) {
  return buildCgiEnv(head(over), { ...OPTS, ...opts });
}

function withHeaders(headers: HeaderPair[], opts: Partial<CgiEnvOptions> = {}) {
  return env({ headers }, opts);
}

function thrown(fn: () => unknown): WeftError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    return err as WeftError;
  }
  throw new Error('expected a WeftError');
}

describe('buildCgiEnv: fixed meta-variables (RFC 3875 §4.1)', () => {
  it('sets the always-present variables', () => {
    expect(env({ query: 'a=1&b=%20' })).toEqual({
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_SOFTWARE: 'weft/0.1.0',
      SERVER_NAME: 'example.com',
      SERVER_PORT: '80',
      REMOTE_ADDR: '203.0.113.7',
      REMOTE_HOST: '203.0.113.7',
      REMOTE_PORT: '54321',
      REQUEST_METHOD: 'GET',
      SCRIPT_NAME: '/hello',
      PATH_INFO: '/world',
      QUERY_STRING: 'a=1&b=%20',
      REQUEST_URI: '/hello/world?a=1&b=%20',
      REQUEST_SCHEME: 'http',
      HTTP_HOST: 'example.com',
    });
  });

  it('always sets QUERY_STRING, empty when there is no query; REQUEST_URI has no "?"', () => {
    const e = env();
    expect(e['QUERY_STRING']).toBe('');
    expect(e['REQUEST_URI']).toBe('/hello/world');
  });

  it('sets HTTPS=on and REQUEST_SCHEME=https for https only', () => {
    expect(env({ scheme: 'https', serverPort: 443 })).toMatchObject({
      HTTPS: 'on',
      REQUEST_SCHEME: 'https',
      SERVER_PORT: '443',
    });
    expect(env()).not.toHaveProperty('HTTPS');
  });

  it('keeps the method case-sensitive and rejects a non-token method', () => {
    expect(env({ method: 'PATCH' })['REQUEST_METHOD']).toBe('PATCH');
    expect(env({ method: 'get' })['REQUEST_METHOD']).toBe('get');
    expect(thrown(() => env({ method: 'GET\r\nX' })).code).toBe(ErrorCode.BadRequest);
    expect(thrown(() => env({ method: '' })).code).toBe(ErrorCode.BadRequest);
  });

  it('never sets PATH_TRANSLATED, AUTH_TYPE or REMOTE_USER itself', () => {
    const e = withHeaders([['Authorization', 'Basic dTpw']], { passAuthorization: true });
    expect(e).not.toHaveProperty('PATH_TRANSLATED');
    expect(e).not.toHaveProperty('AUTH_TYPE');
    expect(e).not.toHaveProperty('REMOTE_USER');
  });

  it('rejects a query with control characters or spaces, and bad ports', () => {
    expect(thrown(() => env({ query: 'a=\n' })).code).toBe(ErrorCode.BadRequest);
    expect(thrown(() => env({ query: 'a b' })).code).toBe(ErrorCode.BadRequest);
    expect(thrown(() => env({ serverPort: 70000 })).code).toBe(ErrorCode.BadRequest);
    expect(thrown(() => env({ remotePort: 1.5 })).code).toBe(ErrorCode.BadRequest);
    expect(thrown(() => env({ serverName: 'a\0b' })).code).toBe(ErrorCode.BadRequest);
  });
});

describe('buildCgiEnv: SCRIPT_NAME / PATH_INFO (§4.1.5, §4.1.13)', () => {
  it.each([
    // path, routePrefix, SCRIPT_NAME, PATH_INFO
    ['/hello', '/hello', '/hello', ''],
    ['/hello/', '/hello', '/hello', '/'],
    ['/hello/a/b', '/hello', '/hello', '/a/b'],
    ['/', '', '', '/'],
    ['/a/b', '', '', '/a/b'],
    ['/a/b', '/', '', '/a/b'],
    ['/hello/a', '/hello/', '/hello', '/a'],
    ['/hello/caf%C3%A9/a%20b', '/hello', '/hello', '/café/a b'],
    ['/h%C3%A9/x', '/h%C3%A9', '/hé', '/x'],
    ['/hello/a%3Fb%25', '/hello', '/hello', '/a?b%'],
  ])('%j under %j → SCRIPT_NAME %j, PATH_INFO %j', (path, routePrefix, scriptName, pathInfo) => {
    const e = env({ path, routePrefix });
    expect(e['SCRIPT_NAME']).toBe(scriptName);
    expect(e['PATH_INFO']).toBe(pathInfo);
  });

  it('REQUEST_URI keeps the normalized, still-encoded path', () => {
    expect(env({ path: '/hello/caf%C3%A9', query: 'x=%2F' })['REQUEST_URI']).toBe(
      '/hello/caf%C3%A9?x=%2F',
    );
  });

  it.each([
    ['/hello/../etc', '/hello'],
    ['/hello//x', '/hello'],
    ['/hello/./x', '/hello'],
    ['/hello/%2e%2e/x', '/hello'],
    ['/hello/a%2fb', '/hello'],
    ['/hello/%7e', '/hello'], // not canonical: ~ must be raw
    ['/helloworld', '/hello'], // not at a segment boundary
    ['/other/x', '/hello'],
    ['/hello/x', '/hello/../x'],
    ['hello', ''],
  ])('rejects path %j under %j', (path, routePrefix) => {
    expect(thrown(() => env({ path, routePrefix })).code).toBe(ErrorCode.BadRequest);
  });

  it('wasmer dialect: SCRIPT_NAME = PATH_INFO = whole path, /app defaults the manifest overrides', () => {
    const opts = { dialect: CgiDialect.Wasmer };
    expect(env({ path: '/hello/a%20b' }, opts)).toMatchObject({
      SCRIPT_NAME: '/hello/a b',
      PATH_INFO: '/hello/a b',
      DOCUMENT_ROOT: '/app/',
      SCRIPT_FILENAME: '/app/hello/a b',
    });
    const custom = env(
      {},
      { ...opts, actorEnv: { SCRIPT_FILENAME: '/app/index.php', DOCUMENT_ROOT: '/app' } },
    );
    expect(custom['SCRIPT_FILENAME']).toBe('/app/index.php');
    expect(custom['DOCUMENT_ROOT']).toBe('/app');
  });
});

describe('buildCgiEnv: HTTP_* (§4.1.18, §9.2)', () => {
  it.each([
    ['User-Agent', 'curl/8', 'HTTP_USER_AGENT'],
    ['accept', 'text/html', 'HTTP_ACCEPT'],
    ['X-Forwarded-For', '198.51.100.1', 'HTTP_X_FORWARDED_FOR'],
    ['x-request-id', 'abc', 'HTTP_X_REQUEST_ID'],
    ['DNT', '1', 'HTTP_DNT'],
    ['Accept-Language', 'fr-CH, fr;q=0.9', 'HTTP_ACCEPT_LANGUAGE'],
    ['X-Tab', 'a\tb', 'HTTP_X_TAB'],
    ['X-Trim', '  padded \t', 'HTTP_X_TRIM'],
  ])('%s → %s', (name, value, variable) => {
    expect(withHeaders([[name, value]])[variable]).toBe(value.trim());
  });

  it('merges repeated fields with ", " in arrival order, case-insensitively', () => {
    const e = withHeaders([
      ['Accept', 'text/html'],
      ['X-A', '1'],
      ['accept', 'application/json'],
      ['ACCEPT', '*/*'],
    ]);
    expect(e['HTTP_ACCEPT']).toBe('text/html, application/json, */*');
    expect(e['HTTP_X_A']).toBe('1');
  });

  it('joins Cookie with "; "', () => {
    const e = withHeaders([
      ['Cookie', 'a=1'],
      ['cookie', 'b=2; c=3'],
    ]);
    expect(e['HTTP_COOKIE']).toBe('a=1; b=2; c=3');
  });

  it('skips empty elements when merging but keeps a field that is only empty', () => {
    expect(
      withHeaders([
        ['X-E', ''],
        ['X-E', 'v'],
      ])['HTTP_X_E'],
    ).toBe('v');
    expect(withHeaders([['X-E', '']])['HTTP_X_E']).toBe('');
  });

  it('drops names outside A-Za-z0-9- instead of mangling them (no spoofing)', () => {
    const e = withHeaders([
      ['X-Forwarded_For', '6.6.6.6'],
      ['X_Forwarded-For', '6.6.6.6'],
      ['X.Real.IP', '6.6.6.6'],
      ['X Real', '1'],
      [':authority', 'evil'],
      ['X-Ünicode', '1'],
      ['X-Forwarded-For', '198.51.100.1'],
    ]);
    expect(e['HTTP_X_FORWARDED_FOR']).toBe('198.51.100.1');
    expect(Object.keys(e).filter((k) => k.startsWith('HTTP_'))).toEqual(['HTTP_X_FORWARDED_FOR']);
  });

  it('never creates HTTP_PROXY (httpoxy)', () => {
    for (const name of ['Proxy', 'proxy', 'PROXY']) {
      expect(withHeaders([[name, 'http://evil:8080']])).not.toHaveProperty('HTTP_PROXY');
    }
  });

  it('keeps a manifest HTTP_PROXY that a client Proxy header cannot replace', () => {
    const e = withHeaders([['Proxy', 'http://evil:8080']], {
      actorEnv: { HTTP_PROXY: 'http://egress.internal:3128' },
    });
    expect(e['HTTP_PROXY']).toBe('http://egress.internal:3128');
  });

  it('hides Authorization and Proxy-Authorization unless passAuthorization', () => {
    const headers: HeaderPair[] = [
      ['Authorization', 'Basic dTpw'],
      ['Proxy-Authorization', 'Basic cDpx'],
    ];
    const hidden = withHeaders(headers);
    expect(hidden).not.toHaveProperty('HTTP_AUTHORIZATION');
    expect(hidden).not.toHaveProperty('HTTP_PROXY_AUTHORIZATION');
    const passed = withHeaders(headers, { passAuthorization: true });
    expect(passed['HTTP_AUTHORIZATION']).toBe('Basic dTpw');
    expect(passed['HTTP_PROXY_AUTHORIZATION']).toBe('Basic cDpx');
  });

  it('exposes Content-Type / Content-Length as CONTENT_*, never as HTTP_*', () => {
    const e = withHeaders(
      [
        ['Content-Type', 'application/json'],
        ['Content-Length', '2'],
      ],
      { bodyLength: 2 },
    );
    expect(e['CONTENT_TYPE']).toBe('application/json');
    expect(e['CONTENT_LENGTH']).toBe('2');
    expect(e).not.toHaveProperty('HTTP_CONTENT_TYPE');
    expect(e).not.toHaveProperty('HTTP_CONTENT_LENGTH');
  });

  it('drops hop-by-hop fields and the fields Connection names', () => {
    const e = withHeaders([
      ['Connection', 'keep-alive, X-Hop'],
      ['Keep-Alive', 'timeout=5'],
      ['TE', 'trailers'],
      ['Transfer-Encoding', 'chunked'],
      ['Upgrade', 'websocket'],
      ['Trailer', 'X-T'],
      ['Proxy-Connection', 'keep-alive'],
      ['X-Hop', 'secret'],
      ['X-Kept', 'yes'],
    ]);
    const httpVars = Object.keys(e).filter((k) => k.startsWith('HTTP_'));
    expect(httpVars).toEqual(['HTTP_X_KEPT']);
  });

  it.each([
    ['CR', 'a\rb'],
    ['LF', 'a\nInjected: 1'],
    ['CRLF', 'a\r\nb'],
    ['NUL', 'a\0b'],
    ['ESC', 'a\x1bb'],
    ['DEL', 'a\x7fb'],
  ])('rejects a value with %s, naming the header', (_label, value) => {
    const e = thrown(() => withHeaders([['X-Evil', value]]));
    expect(e.code).toBe(ErrorCode.BadRequest);
    expect(e.httpStatus).toBe(400);
    expect(e.message).toContain('X-Evil');
    expect(e.details).toEqual({ header: 'X-Evil' });
  });

  it('rejects a bad value even in a field that would be dropped', () => {
    expect(thrown(() => withHeaders([['Authorization', 'x\ny']])).details).toEqual({
      header: 'Authorization',
    });
    expect(thrown(() => withHeaders([['X_Under', 'x\0']])).code).toBe(ErrorCode.BadRequest);
  });

  it('rejects conflicting Content-Type fields, accepts identical repeats', () => {
    expect(
      thrown(() =>
        withHeaders([
          ['Content-Type', 'text/plain'],
          ['Content-Type', 'application/json'],
        ]),
      ).code,
    ).toBe(ErrorCode.BadRequest);
    expect(
      withHeaders([
        ['Content-Type', 'text/plain'],
        ['content-type', 'text/plain'],
      ])['CONTENT_TYPE'],
    ).toBe('text/plain');
  });

  it('rejects a request environment over the cap with the limit in details', () => {
    const big: HeaderPair[] = [];
    for (let i = 0; i < 70; i++) big.push([`X-H${i}`, 'v'.repeat(1000)]);
    const e = thrown(() => withHeaders(big));
    expect(e.code).toBe(ErrorCode.BadRequest);
    expect(e.message).toBe('request headers too large');
    expect(e.details).toMatchObject({ limitBytes: MAX_CGI_REQUEST_ENV_BYTES });
    expect(e.details?.['sizeBytes']).toBeGreaterThan(MAX_CGI_REQUEST_ENV_BYTES);
    // Just under the cap passes; the cap is configurable.
    expect(() => withHeaders(big.slice(0, 60))).not.toThrow();
    expect(
      thrown(() => withHeaders(big.slice(0, 2), { maxRequestEnvBytes: 1024 })).details,
    ).toMatchObject({ limitBytes: 1024 });
  });

  it('counts the cap in UTF-8 bytes', () => {
    // 'é' from a Latin-1-decoded header is 2 bytes in the guest's environment.
    const value = 'é'.repeat(20_000);
    expect(() => withHeaders([['X-A', value]], { maxRequestEnvBytes: 30_000 })).toThrow(
      'request headers too large',
    );
  });
});

describe('buildCgiEnv: body variables (§4.1.2, §4.1.3)', () => {
  it('no body: no CONTENT_LENGTH, no CONTENT_TYPE', () => {
    const e = env();
    expect(e).not.toHaveProperty('CONTENT_LENGTH');
    expect(e).not.toHaveProperty('CONTENT_TYPE');
  });

  it('CONTENT_LENGTH is the stdin length (de-chunked), not the header', () => {
    const e = withHeaders([['Transfer-Encoding', 'chunked']], { bodyLength: 1234 });
    expect(e['CONTENT_LENGTH']).toBe('1234');
    expect(env({ method: 'POST' }, { bodyLength: 5 })['CONTENT_LENGTH']).toBe('5');
  });

  it('an announced empty body gives CONTENT_LENGTH=0', () => {
    expect(withHeaders([['Content-Length', '0']])['CONTENT_LENGTH']).toBe('0');
  });

  it('CONTENT_TYPE only when the header is present and non-empty', () => {
    expect(withHeaders([['Content-Type', 'text/plain; charset=utf-8']])['CONTENT_TYPE']).toBe(
      'text/plain; charset=utf-8',
    );
    expect(withHeaders([['Content-Type', '']])).not.toHaveProperty('CONTENT_TYPE');
  });

  it('rejects a negative or fractional bodyLength as an internal error', () => {
    expect(thrown(() => env({}, { bodyLength: -1 })).code).toBe(ErrorCode.Internal);
    expect(thrown(() => env({}, { bodyLength: 1.5 })).code).toBe(ErrorCode.Internal);
  });
});

describe('buildCgiEnv: precedence of actorEnv, request and extra', () => {
  it('manifest values stay; request-owned names cannot come from the manifest', () => {
    const actorEnv: Record<string, string> = {
      GREETING: 'hi',
      DOCUMENT_ROOT: '/srv',
      SCRIPT_FILENAME: '/srv/index.php',
      CONTENT_LENGTH: '999',
      CONTENT_TYPE: 'text/evil',
      PATH_TRANSLATED: '/etc/passwd',
      SCRIPT_NAME: '/fake',
      QUERY_STRING: 'fake',
      HTTPS: 'on',
      REMOTE_USER: 'admin',
    };
    const e = withHeaders([['Document-Root', '/client']], { actorEnv });
    expect(e).toMatchObject({
      GREETING: 'hi',
      DOCUMENT_ROOT: '/srv',
      SCRIPT_FILENAME: '/srv/index.php',
      SCRIPT_NAME: '/hello',
      QUERY_STRING: '',
      HTTP_DOCUMENT_ROOT: '/client',
    });
    for (const name of [
      'CONTENT_LENGTH',
      'CONTENT_TYPE',
      'PATH_TRANSLATED',
      'HTTPS',
      'REMOTE_USER',
    ]) {
      expect(e).not.toHaveProperty(name);
    }
  });

  it('a request header overrides a manifest HTTP_* of the same name', () => {
    expect(withHeaders([], { actorEnv: { HTTP_X_A: 'm' } })['HTTP_X_A']).toBe('m');
    expect(withHeaders([['X-A', 'r']], { actorEnv: { HTTP_X_A: 'm' } })['HTTP_X_A']).toBe('r');
  });

  it('extra (host-supplied) is applied last', () => {
    const e = env(
      {},
      {
        actorEnv: { X_WEFT_INVOCATION_ID: 'manifest', REDIRECT_STATUS: '1' },
        extra: { X_WEFT_INVOCATION_ID: 'inv-1', REDIRECT_STATUS: '200', REMOTE_USER: 'alice' },
      },
    );
    expect(e).toMatchObject({
      X_WEFT_INVOCATION_ID: 'inv-1',
      REDIRECT_STATUS: '200',
      REMOTE_USER: 'alice',
    });
  });

  it('rejects configured variables that cannot be NAME=value\\0', () => {
    expect(thrown(() => env({}, { actorEnv: { 'A=B': 'x' } })).code).toBe(
      ErrorCode.ManifestInvalid,
    );
    expect(thrown(() => env({}, { actorEnv: { A: 'x\0' } })).code).toBe(ErrorCode.ManifestInvalid);
    expect(thrown(() => env({}, { extra: { '': 'x' } })).code).toBe(ErrorCode.Internal);
  });

  it('keeps a "__proto__" key as data', () => {
    const e = env({}, { actorEnv: { ['__proto__']: 'x' } });
    expect(Object.getOwnPropertyDescriptor(e, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(e)).toBe(null);
  });

  it('REQUEST_VARIABLES lists every fixed variable the builder sets', () => {
    const e = env({ scheme: 'https' }, { bodyLength: 1 });
    const fixed = Object.keys(e).filter((name) => !name.startsWith('HTTP_'));
    expect(fixed.length).toBeGreaterThan(10);
    expect(fixed.filter((name) => !REQUEST_VARIABLES.has(name))).toEqual([]);
  });
});
