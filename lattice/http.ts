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
