/**
 * The HTTP request and response heads as they travel over the lattice. The gateway fills a
 * request head from node:http; `weft call` fills one from its flags; the host turns it into CGI
 * variables (WCGI) or an HTTP/1.1 request (proxy).
 */

/** One header field, name as received; repeated fields stay separate pairs in arrival order. */
export type HeaderPair = [name: string, value: string];

export interface HttpRequestHead {
  /** Request method, case preserved (RFC 3875 §4.1.12). */
  method: string;
  /** The normalized, still percent-encoded path without the query; always starts with `/`. */
  path: string;
  /** Raw query string without the `?`; `''` when there is none. */
  query: string;
  headers: HeaderPair[];
  /** The matched route's prefix (`/hello` for `/hello/...`; `''` for a root wildcard). */
  routePrefix: string;
  /** Address and port of the immediate peer of the gateway. */
  remoteAddr: string;
  remotePort: number;
  scheme: 'http' | 'https';
  /** Host name the request was directed to (from `Host`, without port). */
  serverName: string;
  serverPort: number;
  /** `HTTP/1.1`, `HTTP/1.0`. */
  protocol: string;
}

export interface HttpResponseHead {
  status: number;
  headers: HeaderPair[];
}

/** RFC 9110 §7.6.1 hop-by-hop fields, lower-case (plus the non-standard Proxy-Connection):
 *  never forwarded from one connection to the next. */
export const HOP_BY_HOP_FIELDS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** An RFC 9110 §5.6.2 token: methods and field names. */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** C0 controls except HTAB, and DEL (RFC 9110 §5.5); CR and LF included: response splitting. */
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
export const CTL_EXCEPT_HTAB = /[\x00-\x08\x0a-\x1f\x7f]/;
