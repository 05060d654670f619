/**
 * CGI/1.1 meta-variables (RFC 3875 §4.1) for one WCGI request.
 *
 * Security model: everything in the request head is client input (the gateway normalized the path
 * but the host checks again, since a head may also come from `weft call`). The client controls
 * only request-derived variables: the fixed CGI names below, and `HTTP_*` names produced from
 * header names that are plain `A-Za-z0-9-` (so `X-Foo_Bar` cannot pose as `X-Foo-Bar`). It can
 * never produce `HTTP_PROXY` (httpoxy), credentials (`HTTP_AUTHORIZATION`, unless the app opts in),
 * a value with CR/LF/NUL or another control character, or an environment larger than a fixed cap.
 *
 * Precedence, lowest first (a later layer overwrites an earlier one):
 * 1. dialect defaults (`wasmer`: `DOCUMENT_ROOT=/app/`, `SCRIPT_FILENAME=/app<path>`);
 * 2. `actorEnv`, the manifest's `env` — except the request-owned CGI names (`REQUEST_VARIABLES`),
 *    which are removed from it, so a manifest can neither fake `CONTENT_LENGTH` nor leave a stale
 *    `PATH_TRANSLATED`; its other keys (`DOCUMENT_ROOT`, `SCRIPT_FILENAME`, `GREETING`, even
 *    `HTTP_PROXY`) stay unless the request sets the same name, and only an `HTTP_*` name can be
 *    set by a request;
 * 3. request-derived variables;
 * 4. `extra`, supplied by the host itself (trusted): e.g. `X_WEFT_INVOCATION_ID`, `REDIRECT_STATUS`,
 *    `AUTH_TYPE`/`REMOTE_USER` once the gateway authenticates.
 */

import { Buffer } from 'node:buffer';
import {
  decodeRequestPath,
  CTL_EXCEPT_HTAB,
  ErrorCode,
  HOP_BY_HOP_FIELDS,
  HTTP_TOKEN,
  normalizeRequestPath,
  WeftError,
  type HttpRequestHead,
} from '../../lattice/index.ts';

/**
 * Cap on the request-derived part of the environment, counted as the guest sees it: UTF-8
 * `NAME=value\0` per variable (RFC 3875 §9.6: no fixed buffers, but bounded). 64 KiB.
 */
export const MAX_CGI_REQUEST_ENV_BYTES = 64 * 1024;

/**
 * How the request path maps to SCRIPT_NAME / PATH_INFO.
 * - `rfc3875`: SCRIPT_NAME = route prefix, PATH_INFO = decoded remainder (RFC 3875 §4.1.5, §4.1.13).
 * - `wasmer`: like Wasmer's WCGI runner, SCRIPT_NAME = PATH_INFO = the whole decoded path, with
 *   defaults `DOCUMENT_ROOT=/app/` and `SCRIPT_FILENAME=/app<path>` that the manifest may override.
 */
export const CgiDialect = { Rfc3875: 'rfc3875', Wasmer: 'wasmer' } as const;
export type CgiDialect = (typeof CgiDialect)[keyof typeof CgiDialect];

export interface CgiEnvOptions {
  /** Octets the guest will find on stdin, after removing transfer-codings (RFC 3875 §4.1.2). */
  bodyLength: number;
  /** `product/version`, e.g. `weft/0.1.0` (RFC 3875 §4.1.17). */
  serverSoftware: string;
  /** The manifest's `env` for this actor; see the precedence rules in the module comment. */
  actorEnv?: Record<string, string> | undefined;
  /** Export `HTTP_AUTHORIZATION` and `HTTP_PROXY_AUTHORIZATION` (RFC 3875 §9.2). Default false. */
  passAuthorization?: boolean | undefined;
  /** Host-supplied variables, applied last (trusted). */
  extra?: Record<string, string> | undefined;
  /** Default `rfc3875`. */
  dialect?: CgiDialect | undefined;
  /** Default `MAX_CGI_REQUEST_ENV_BYTES`. */
  maxRequestEnvBytes?: number | undefined;
}

/**
 * The meta-variables a request sets or, when absent from this request, leaves unset. They are
 * removed from `actorEnv`. RFC 3875 §4.1 plus the common extensions REQUEST_URI, REQUEST_SCHEME,
 * HTTPS, REMOTE_PORT.
 */
export const REQUEST_VARIABLES: ReadonlySet<string> = new Set([
  'AUTH_TYPE',
  'CONTENT_LENGTH',
  'CONTENT_TYPE',
  'GATEWAY_INTERFACE',
  'PATH_INFO',
  'PATH_TRANSLATED',
  'QUERY_STRING',
  'REMOTE_ADDR',
  'REMOTE_HOST',
  'REMOTE_IDENT',
  'REMOTE_PORT',
  'REMOTE_USER',
  'REQUEST_METHOD',
  'REQUEST_SCHEME',
  'REQUEST_URI',
  'HTTPS',
  'SCRIPT_NAME',
  'SERVER_NAME',
  'SERVER_PORT',
  'SERVER_PROTOCOL',
  'SERVER_SOFTWARE',
]);

/** Header names that become HTTP_* variables: letters, digits and '-' only (anti-spoofing). */
const HEADER_NAME_FOR_ENV = /^[A-Za-z0-9-]+$/;
/** RFC 9110 §9.1 method = token. */
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const CTL_OR_SPACE = /[\x00-\x20\x7f]/;

/**
 * Build the CGI environment for one request. Throws WeftError BAD_REQUEST (the gateway answers
 * 400) for a header value with CR, LF, NUL or another control character (details `{ header }`), a
 * path that is not in normalized form or not under `routePrefix`, an invalid method, query or port,
 * conflicting Content-Type fields, or a request environment over `maxRequestEnvBytes`
 * ('request headers too large', details `{ limitBytes, sizeBytes }`).
 */
export function buildCgiEnv(head: HttpRequestHead, opts: CgiEnvOptions): Record<string, string> {
  const dialect = opts.dialect ?? CgiDialect.Rfc3875;
  const limitBytes = opts.maxRequestEnvBytes ?? MAX_CGI_REQUEST_ENV_BYTES;
  if (!Number.isSafeInteger(opts.bodyLength) || opts.bodyLength < 0) {
    throw new WeftError(ErrorCode.Internal, 'bodyLength must be a non-negative integer', {
      details: { bodyLength: opts.bodyLength },
    });
  }

  const req = new Map<string, string>();

  // RFC 3875 §4.1.12: method is case-sensitive; it must be a token.
  if (!HTTP_TOKEN.test(head.method))
    throw badRequest('invalid request method', { method: printableName(head.method) });
  checkRequestText('protocol', head.protocol);
  checkRequestText('serverName', head.serverName);
  checkRequestText('remoteAddr', head.remoteAddr);
  checkPort('serverPort', head.serverPort);
  checkPort('remotePort', head.remotePort);
  // RFC 3875 §4.1.7: QUERY_STRING is passed raw (still URL-encoded).
  if (CTL_OR_SPACE.test(head.query) || head.query.includes('#')) {
    throw badRequest('invalid query string', { reason: 'bad-char' });
  }
  const { scriptName, pathInfo, fullPath } = splitScriptPath(head.path, head.routePrefix);

  req.set('GATEWAY_INTERFACE', 'CGI/1.1'); // §4.1.4
  req.set('SERVER_PROTOCOL', head.protocol); // §4.1.16
  req.set('SERVER_SOFTWARE', opts.serverSoftware); // §4.1.17
  req.set('SERVER_NAME', head.serverName); // §4.1.14
  req.set('SERVER_PORT', String(head.serverPort)); // §4.1.15: even the default port
  // §4.1.8/§8.2: the immediate peer, never taken from X-Forwarded-For.
  req.set('REMOTE_ADDR', head.remoteAddr);
  req.set('REMOTE_HOST', head.remoteAddr); // §4.1.9: the address when not resolved (we never resolve)
  req.set('REMOTE_PORT', String(head.remotePort));
  req.set('REQUEST_METHOD', head.method);
  if (dialect === CgiDialect.Wasmer) {
    req.set('SCRIPT_NAME', fullPath);
    req.set('PATH_INFO', fullPath);
  } else {
    req.set('SCRIPT_NAME', scriptName); // §4.1.13: always set, may be ''
    // §4.1.5: optional when empty; set anyway so scripts can read it without a fallback.
    req.set('PATH_INFO', pathInfo);
  }
  // PATH_TRANSLATED (§4.1.6, SHOULD when PATH_INFO is non-empty) is never set: a guest's files are
  // a virtual tree with no document root we could map onto, and PHP-style runtimes may pick the
  // script to run from PATH_TRANSLATED, i.e. from the client's path.
  req.set('QUERY_STRING', head.query); // §4.1.7: always set
  // Not RFC 3875; PHP-style apps expect it. The normalized path, not the client's raw bytes.
  req.set('REQUEST_URI', head.query === '' ? head.path : `${head.path}?${head.query}`);
  req.set('REQUEST_SCHEME', head.scheme);
  // §9.4 + common practice: the script is no TLS endpoint; tell it the client used TLS.
  if (head.scheme === 'https') req.set('HTTPS', 'on');

  const { httpVars, contentType, framedBody } = mapHeaders(head, opts.passAuthorization === true);
  // §4.1.2/§4.2: CONTENT_LENGTH iff the request has a body — a non-empty stdin, or a message whose
  // framing (Content-Length / Transfer-Encoding, RFC 9112 §6.1) announced one, even an empty one.
  // The value is what stdin holds (de-chunked), not the client's header.
  if (opts.bodyLength > 0 || framedBody) req.set('CONTENT_LENGTH', String(opts.bodyLength));
  if (contentType !== undefined) req.set('CONTENT_TYPE', contentType); // §4.1.3: no default
  for (const [name, value] of httpVars) req.set(name, value);

  // UTF-8 takes at most 3 bytes per UTF-16 unit: count exactly only when that bound is over.
  let sizeBytes = 0;
  for (const [name, value] of req) sizeBytes += name.length + value.length + 2;
  if (sizeBytes * 3 > limitBytes) {
    sizeBytes = 0;
    for (const [name, value] of req)
      sizeBytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
  }
  if (sizeBytes > limitBytes) {
    throw new WeftError(ErrorCode.BadRequest, 'request headers too large', {
      details: { limitBytes, sizeBytes },
    });
  }

  // A prototype-less object: even a "__proto__" key is kept as data, and building it costs a
  // fraction of Map + Object.fromEntries.
  const env = Object.create(null) as Record<string, string>;
  if (dialect === CgiDialect.Wasmer) {
    // Wasmer's rfc-3875 dialect hard-codes these; here they are defaults the manifest overrides
    // (cgi.md §5, Wasmer PR #3718). fullPath is normalized: it cannot leave /app.
    env['DOCUMENT_ROOT'] = '/app/';
    env['SCRIPT_FILENAME'] = `/app${fullPath}`;
  }
  if (opts.actorEnv) {
    for (const name of Object.keys(opts.actorEnv)) {
      const value = opts.actorEnv[name]!;
      checkConfiguredVariable('actorEnv', name, value);
      if (!REQUEST_VARIABLES.has(name)) env[name] = value;
    }
  }
  for (const [name, value] of req) env[name] = value;
  if (opts.extra) {
    for (const name of Object.keys(opts.extra)) {
      const value = opts.extra[name]!;
      checkConfiguredVariable('extra', name, value);
      env[name] = value;
    }
  }
  return env;
}

// ---------------------------------------------------------------------------------------------

interface ScriptPath {
  /** Decoded route prefix. */
  scriptName: string;
  /** Decoded remainder: '' or '/'-prefixed. */
  pathInfo: string;
  /** Decoded whole path. */
  fullPath: string;
}

/** RFC 3875 §4.1.5 / §4.1.13 split, after checking the path is normalized (§9.8). */
function splitScriptPath(path: string, routePrefix: string): ScriptPath {
  if (normalizeRequestPath(path) !== path) {
    throw badRequest('request path is not in normalized form', { reason: 'not-normalized' });
  }
  // A root route is '' (a lone '/' or a trailing '/' is accepted and trimmed).
  const prefix = routePrefix.endsWith('/') ? routePrefix.replace(/\/+$/, '') : routePrefix;
  if (prefix !== '' && normalizeRequestPath(prefix) !== prefix) {
    throw badRequest('route prefix is not in normalized form', { reason: 'bad-route-prefix' });
  }
  // The prefix must end at a segment boundary: '/hello' matches '/hello' and '/hello/x', not '/helloworld'.
  const rest = path.slice(prefix.length);
  if (!path.startsWith(prefix) || (rest !== '' && !rest.startsWith('/'))) {
    throw badRequest('request path is outside the route prefix', {
      reason: 'outside-route-prefix',
    });
  }
  return {
    scriptName: decodeRequestPath(prefix),
    pathInfo: decodeRequestPath(rest),
    fullPath: decodeRequestPath(path),
  };
}

interface MappedHeaders {
  httpVars: Map<string, string>;
  contentType: string | undefined;
  framedBody: boolean;
}

/** RFC 3875 §4.1.18 / §9.2: request header fields → HTTP_* variables. */
function mapHeaders(head: HttpRequestHead, passAuthorization: boolean): MappedHeaders {
  // Validate every value first, including fields that are dropped below: the request is malformed
  // either way, and NUL cannot be carried in a WASI environment string (cgi.md §7).
  const fields: Array<{ lower: string; value: string; name: string }> = [];
  const connectionListed = new Set<string>();
  for (const [name, rawValue] of head.headers) {
    // CR, LF, NUL and every other control but HTAB (RFC 9110 §5.5).
    if (CTL_EXCEPT_HTAB.test(rawValue)) {
      throw badRequest(`invalid character in header value: ${printableName(name)}`, {
        header: printableName(name),
      });
    }
    const value = rawValue.replace(/^[ \t]+|[ \t]+$/g, ''); // RFC 9110 §5.5: no leading/trailing OWS
    const lower = name.toLowerCase();
    fields.push({ lower, value, name });
    if (lower === 'connection') {
      for (const token of value.split(',')) connectionListed.add(token.trim().toLowerCase());
    }
  }

  const merged = new Map<string, string[]>();
  const contentTypes = new Set<string>();
  let framedBody = false;
  for (const { lower, value, name } of fields) {
    if (lower === 'content-length' || lower === 'transfer-encoding') framedBody = true;
    // §9.2: exposed as CONTENT_TYPE / CONTENT_LENGTH, not as HTTP_*.
    if (lower === 'content-type') {
      if (value !== '') contentTypes.add(value);
      continue;
    }
    if (lower === 'content-length') continue;
    // cgi.md §2: drop, don't mangle, names outside A-Za-z0-9- (X-Foo_Bar would shadow X-Foo-Bar).
    if (!HEADER_NAME_FOR_ENV.test(name)) continue;
    // httpoxy: a client's `Proxy:` must never become HTTP_PROXY (cgi.md §8).
    if (lower === 'proxy') continue;
    // §9.2: no credentials unless the app opts in.
    if (!passAuthorization && (lower === 'authorization' || lower === 'proxy-authorization'))
      continue;
    // §9.2 MAY: hop-by-hop fields and the fields Connection names (RFC 9110 §7.6.1) concern the
    // gateway's connection, not the script.
    if (HOP_BY_HOP_FIELDS.has(lower) || connectionListed.has(lower)) continue;
    const varName = `HTTP_${name.toUpperCase().replaceAll('-', '_')}`;
    const values = merged.get(varName);
    if (values === undefined) merged.set(varName, [value]);
    else values.push(value);
  }
  if (contentTypes.size > 1) {
    throw badRequest('conflicting Content-Type header fields', { header: 'Content-Type' });
  }

  const httpVars = new Map<string, string>();
  for (const [varName, values] of merged) {
    // §4.1.18: repeats merged into one value with the same semantics; empty list elements carry
    // nothing (RFC 9110 §5.6.1). Cookie uses '; ' (RFC 9113 §8.2.3, RFC 6265 §5.4).
    const sep = varName === 'HTTP_COOKIE' ? '; ' : ', ';
    httpVars.set(varName, values.filter((v) => v !== '').join(sep));
  }
  const [contentType] = contentTypes;
  return { httpVars, contentType, framedBody };
}

function checkRequestText(field: string, value: string): void {
  if (CTL_OR_SPACE.test(value) || value === '') {
    throw badRequest(`invalid ${field} in request head`, { field });
  }
}

function checkPort(field: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw badRequest(`invalid ${field} in request head`, { field });
  }
}

/** Names and values from the manifest or the host must be representable as `NAME=value\0`. */
function checkConfiguredVariable(source: 'actorEnv' | 'extra', name: string, value: string): void {
  if (name === '' || /[=\0]/.test(name) || value.includes('\0')) {
    throw new WeftError(
      source === 'actorEnv' ? ErrorCode.ManifestInvalid : ErrorCode.Internal,
      `invalid environment variable in ${source}`,
      { details: { source, variable: printableName(name) } },
    );
  }
}

/** A header name safe to put in a message and in details (client input). */
function printableName(name: string): string {
  const clean = name.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

function badRequest(message: string, details: Record<string, unknown>): WeftError {
  return new WeftError(ErrorCode.BadRequest, message, { details });
}
