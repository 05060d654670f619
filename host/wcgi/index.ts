/**
 * WCGI: the pure CGI/1.1 (RFC 3875) logic of a WCGI host — request head → meta-variables, guest
 * stdout → response head and body. No I/O here; the executor runs the instance with these.
 * See shared/reference/cgi.md.
 */

/**
 * `buildCgiEnv(head, opts)`: the CGI environment (`NAME` → value) for one request.
 * SCRIPT_NAME = route prefix and PATH_INFO = decoded remainder (dialect `rfc3875`, default), or
 * both the whole decoded path (dialect `wasmer`). QUERY_STRING always set (raw); CONTENT_LENGTH
 * only when the request has a body (value `opts.bodyLength`, octets after de-chunking);
 * PATH_TRANSLATED never set. Headers become HTTP_* (repeats joined with ', ', Cookie with '; ');
 * dropped: names outside `A-Za-z0-9-`, `Proxy` (httpoxy), Authorization/Proxy-Authorization
 * (unless `passAuthorization`), Content-Length/Content-Type (exposed as CONTENT_*), hop-by-hop
 * fields and those named by Connection. Precedence: dialect defaults < `actorEnv` (minus
 * `REQUEST_VARIABLES`) < request-derived < `extra`.
 * Throws WEFT_ERR_BAD_REQUEST (400): control character (CR, LF, NUL, …) in a header value (details
 * `{ header }`), path not normalized or outside the route prefix, invalid method/query/port,
 * conflicting Content-Type, request environment over `maxRequestEnvBytes` (default 64 KiB;
 * 'request headers too large', details `{ limitBytes, sizeBytes }`). WEFT_ERR_MANIFEST_INVALID /
 * WEFT_ERR_INTERNAL for an `actorEnv` / `extra` entry not representable as `NAME=value\0`.
 */
export { buildCgiEnv } from './cgi-env.ts';

/** Options of `buildCgiEnv`; see each field. */
export type { CgiEnvOptions } from './cgi-env.ts';

/** `rfc3875` (RFC split, default) | `wasmer` (SCRIPT_NAME = PATH_INFO = whole path, `/app` defaults). */
export { CgiDialect } from './cgi-env.ts';

/** Request-owned CGI names: set only from the request, removed from `actorEnv`. */
export { REQUEST_VARIABLES } from './cgi-env.ts';

/** Default cap, in bytes (UTF-8 `NAME=value\0`), on the request-derived environment: 64 KiB. */
export { MAX_CGI_REQUEST_ENV_BYTES } from './cgi-env.ts';

/**
 * `parseCgiResponse(stdout, { method, maxHeaderBytes? })` → `{ status, headers, body }`.
 * Accepts LF/CRLF/mixed line ends, `Status:`, a leading `HTTP/1.x NNN` status line; `Location`
 * without Status → 302 (local paths too: no internal re-dispatch); default 200. Drops
 * hop-by-hop fields, fields named by Connection, Content-Length, X-CGI-*. `body` is a subarray of
 * `stdout` (no copy), empty for HEAD and for 204/205/304. Throws WEFT_ERR_BAD_CGI_RESPONSE (502)
 * with `details.reason` (a `CgiErrorReason`) for any malformed output.
 */
export { parseCgiResponse } from './cgi-response.ts';

/** Options and result of `parseCgiResponse`. */
export type { CgiResponse, ParseCgiResponseOptions } from './cgi-response.ts';

/** Reasons a CGI response is rejected (`details.reason`), as a const object and union type. */
export { CgiErrorReason } from './cgi-response.ts';

/** `cgiErrorReason(err)`: the `CgiErrorReason` of a BAD_CGI_RESPONSE error, else undefined. */
export { cgiErrorReason } from './cgi-response.ts';

/** Default cap on the CGI header block (blank line included): 64 KiB. */
export { DEFAULT_MAX_CGI_HEADER_BYTES } from './cgi-response.ts';
