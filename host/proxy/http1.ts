/**
 * HTTP/1.1 client-side codec (RFC 9112) for proxy actors: the host forwards a request to a Wasm
 * guest that runs its own HTTP server, over an in-process byte stream, and reads one response back.
 * No sockets and no timers here — bytes in, bytes out; the caller owns the stream and the deadline.
 *
 * Security model: the request head is client input and the response is written by an untrusted
 * guest.
 * - Request: nothing the client sends can end a line early. Method, path, query, header names and
 *   values are checked before anything is written (CR, LF, NUL, and any char above U+00FF, which a
 *   Latin-1 write would truncate to one byte — U+010A would become LF). Connection-level fields
 *   and framing (Content-Length, Transfer-Encoding, Host) are dropped and set by this codec, so the
 *   guest sees exactly one body framing: Content-Length of the (already de-chunked) body.
 * - Response: parsed strictly enough that the host and the guest agree on where it ends
 *   (RFC 9112 §6.3): chunked is the only transfer coding accepted and overrides Content-Length;
 *   differing Content-Length values are an error; the head, each chunk-size line, the trailers and
 *   the body are bounded. Headers are returned as checked name/value pairs (no raw bytes), minus
 *   hop-by-hop and framing fields, for the gateway to re-frame. Malformed input is a
 *   WEFT_ERR_BAD_PROXY_RESPONSE (502), never a partial response.
 */

import { Buffer } from 'node:buffer';
import {
  CTL_EXCEPT_HTAB,
  ErrorCode,
  HOP_BY_HOP_FIELDS,
  HTTP_TOKEN,
  WeftError,
  type HeaderPair,
  type HttpRequestHead,
  type HttpResponseHead,
} from '../../lattice/index.ts';

/** Default cap on a response head (status line, fields, blank line; interim heads included). 64 KiB. */
export const DEFAULT_MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/** Cap on one chunk-size line, extensions included (they are ignored, so need not be long). 4 KiB. */
export const MAX_CHUNK_LINE_BYTES = 4 * 1024;

// ---------------------------------------------------------------------------------------------
// Request

/**
 * Serialize a request for a proxy actor as one buffer: request line `METHOD path?query HTTP/1.1`,
 * `Host` (the head's `Host` field, else `serverName[:serverPort]`, port omitted when it is the
 * scheme's default), the head's fields minus hop-by-hop ones (RFC 9110 §7.6.1: Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade and those named by
 * Connection) and minus Host and Content-Length, then `extra` (host-supplied, e.g. forwarding
 * fields), then `Content-Length` when the body is non-empty or the method is POST/PUT/PATCH, and
 * `Connection: keep-alive`; then the body. `body` must already be de-chunked.
 *
 * The head is Latin-1 (one byte per char, as node:http decoded it). The result owns its
 * ArrayBuffer (one allocation), so it may be transferred.
 *
 * Throws WEFT_ERR_BAD_REQUEST (400) for a method that is not a token, a path or query with a
 * space, control or non-Latin-1 character, a header name that is not a token, a value with CR, LF,
 * NUL or a non-Latin-1 character (details `{ header }`), or more than one Host field;
 * WEFT_ERR_INTERNAL for an `extra` field that this function sets itself or that is hop-by-hop.
 */
export function serializeRequest(
  head: HttpRequestHead,
  body: Uint8Array,
  extra: HeaderPair[],
): Uint8Array {
  if (!HTTP_TOKEN.test(head.method)) badRequest(`invalid method ${quote(head.method)}`);
  if (!head.path.startsWith('/') || !TARGET_CHARS.test(head.path)) {
    badRequest(`invalid request path ${quote(head.path)}`);
  }
  if (!TARGET_CHARS.test(head.query)) badRequest(`invalid query string ${quote(head.query)}`);

  const connectionListed = new Set<string>();
  let host: string | undefined;
  for (const [name, value] of head.headers) {
    checkRequestField(name, value);
    const lower = name.toLowerCase();
    if (lower === 'connection') addTokens(connectionListed, value);
    else if (lower === 'host') {
      if (host !== undefined) badRequest('more than one Host header', { header: name });
      host = value.trim();
    }
  }
  host ??= hostFromServer(head);
  checkRequestField('Host', host);

  let out = `${head.method} ${head.path}${head.query === '' ? '' : `?${head.query}`} HTTP/1.1\r\n`;
  // RFC 9112 §3.2: a client SHOULD send Host as the first field after the request line.
  out += `Host: ${host}\r\n`;
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (REQUEST_DROPPED.has(lower) || connectionListed.has(lower)) continue;
    out += `${name}: ${value}\r\n`;
  }
  for (const [name, value] of extra) {
    checkRequestField(name, value);
    if (REQUEST_DROPPED.has(name.toLowerCase())) {
      throw new WeftError(ErrorCode.Internal, `extra header ${quote(name)} is set by the codec`);
    }
    out += `${name}: ${value}\r\n`;
  }
  if (body.length > 0 || BODY_METHODS.has(head.method)) out += `Content-Length: ${body.length}\r\n`;
  out += 'Connection: keep-alive\r\n\r\n';

  // Every char is ≤ U+00FF (checked above), so the Latin-1 byte length is the string length.
  const bytes = Buffer.allocUnsafeSlow(out.length + body.length);
  bytes.write(out, 0, 'latin1');
  bytes.set(body, out.length);
  return bytes;
}

/** Fields the request serializer drops from the head and sets itself (or never forwards). */
const REQUEST_DROPPED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_FIELDS,
  'content-length',
  'host',
]);
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);
/** Path and query: visible ASCII or Latin-1 obs-text; no space or control, so no request-line split. */
const TARGET_CHARS = /^[\x21-\x7e\x80-\xff]*$/;
/** CR, LF, NUL end or cut a line; chars above U+00FF would be truncated by the Latin-1 write. */
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_VALUE = /[\r\n\0]|[^\x00-\xff]/;

function checkRequestField(name: string, value: string): void {
  if (!HTTP_TOKEN.test(name)) badRequest(`invalid header name ${quote(name)}`, { header: name });
  if (UNSAFE_VALUE.test(value)) {
    badRequest(`invalid character in the value of header ${quote(name)}`, { header: name });
  }
}

function hostFromServer(head: HttpRequestHead): string {
  // RFC 3986 §3.2.2: an IPv6 literal is bracketed in an authority.
  const name =
    head.serverName.includes(':') && !head.serverName.startsWith('[')
      ? `[${head.serverName}]`
      : head.serverName;
  const defaultPort = head.scheme === 'https' ? 443 : 80;
  return head.serverPort > 0 && head.serverPort !== defaultPort
    ? `${name}:${head.serverPort}`
    : name;
}

function badRequest(message: string, details?: Record<string, unknown>): never {
  throw new WeftError(ErrorCode.BadRequest, message, details === undefined ? {} : { details });
}

// ---------------------------------------------------------------------------------------------
// Response

export interface ResponseParserOptions {
  /** The request's method: a response to `HEAD` has no body (RFC 9110 §9.3.2). */
  method: string;
  /** Cap on the response head, interim (1xx) heads included. Default 64 KiB. */
  maxHeaderBytes?: number | undefined;
  /** Cap on the body after de-chunking; over it → WEFT_ERR_RESPONSE_TOO_LARGE. */
  maxBodyBytes: number;
}

/** One complete response from a proxy actor. */
export interface Http1Response extends HttpResponseHead {
  /** The final status, 200–599 (interim 1xx heads are skipped). */
  status: number;
  /** Fields in arrival order, names as received, minus hop-by-hop and framing fields. */
  headers: HeaderPair[];
  /** The body, de-chunked; empty for HEAD, 204 and 304. */
  body: Uint8Array;
  /** Whether the connection may carry another request (RFC 9112 §9.3). */
  keepAlive: boolean;
}

type Phase =
  | 'head'
  | 'body-length'
  | 'body-close'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-data-end'
  | 'trailers'
  | 'done';

/**
 * Incremental parser for ONE HTTP/1.x response. Feed bytes with `push()` until it returns true;
 * call `end()` on EOF (which completes a close-delimited body); then read `result()`.
 *
 * Accepted: LF or CRLF line ends; status line `HTTP/1.x NNN [reason]` with NNN in 100–599; 1xx
 * interim responses other than 101 are skipped; no body for HEAD, 204, 304 (RFC 9112 §6.3); body
 * framed by `Transfer-Encoding: chunked` (which overrides Content-Length; chunk extensions ignored,
 * trailers read and dropped), by Content-Length (a list of identical values is accepted), or by
 * the connection closing.
 *
 * The parser keeps views of the pushed chunks (body pieces, `leftover`) and concatenates once at
 * the end, so a chunk must not be modified after it was pushed.
 *
 * Errors (thrown by `push`/`end`, then again by any later call):
 * - WEFT_ERR_BAD_PROXY_RESPONSE (502): malformed status line or field, status outside 100–599,
 *   101 (upgrades are not supported), head over `maxHeaderBytes` (details `{ limitBytes }`),
 *   invalid or conflicting Content-Length, a transfer coding other than chunked, malformed chunk;
 * - WEFT_ERR_RESPONSE_TOO_LARGE (502): body over `maxBodyBytes` (details `{ limitBytes }`);
 * - WEFT_ERR_INSTANCE_CRASHED (502): `end()` before the response is complete.
 */
export class ResponseParser {
  /**
   * Bytes received after the end of the response. Empty unless the guest sent more than one
   * response's worth; on a keep-alive connection the caller treats that as a protocol error.
   */
  get leftover(): Uint8Array {
    return this.#leftover;
  }

  readonly #method: string;
  readonly #maxHeaderBytes: number;
  readonly #maxBodyBytes: number;

  #leftover: Uint8Array = EMPTY;
  #phase: Phase = 'head';
  #error: unknown;
  #ended = false;

  /** The current, unfinished line (Latin-1) and the byte budget of its section. */
  #line = '';
  #sectionBytes = 0;
  #headLines: string[] = [];

  #status: number | undefined;
  #headers: HeaderPair[] = [];
  #keepAlive = true;

  /** Content-Length bodies: preallocated and filled in place. */
  #fixed: Uint8Array | undefined;
  /** Chunked and close-delimited bodies: views of the pushed chunks, joined once at the end. */
  #pieces: Uint8Array[] = [];
  #bodyBytes = 0;
  /** Body bytes already handed out by `takeBody()`. */
  #taken = 0;
  #chunkRemaining = 0;
  #sawCr = false;
  #result: Http1Response | undefined;

  constructor(opts: ResponseParserOptions) {
    const maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_RESPONSE_HEAD_BYTES;
    if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes <= 0) {
      throw new RangeError(`maxHeaderBytes must be a positive integer, got ${maxHeaderBytes}`);
    }
    if (!Number.isSafeInteger(opts.maxBodyBytes) || opts.maxBodyBytes < 0) {
      throw new RangeError(
        `maxBodyBytes must be a non-negative integer, got ${String(opts.maxBodyBytes)}`,
      );
    }
    this.#method = opts.method;
    this.#maxHeaderBytes = maxHeaderBytes;
    this.#maxBodyBytes = opts.maxBodyBytes;
  }

  /** True once the final (non-1xx) head has been parsed. */
  get headComplete(): boolean {
    return this.#status !== undefined;
  }

  /** The final status once `headComplete`, else undefined. */
  get status(): number | undefined {
    return this.#status;
  }

  /** Body bytes received so far, after de-chunking. */
  get bodyBytesSoFar(): number {
    return this.#bodyBytes;
  }

  /** The final head's fields (as in `result()`) once `headComplete`. */
  get headers(): HeaderPair[] {
    return this.#headers;
  }

  /** The body's length when the head declared it (Content-Length), else undefined. */
  get declaredLength(): number | undefined {
    return this.#fixed?.length;
  }

  /** Body bytes received and not yet taken by `takeBody()`. */
  get untakenBytes(): number {
    return this.#bodyBytes - this.#taken;
  }

  /**
   * The body bytes received since the last call, as a new array, for a caller that passes the
   * body on while it arrives; `result().body` then holds only what was not taken.
   */
  takeBody(): Uint8Array<ArrayBuffer> {
    const from = this.#taken;
    this.#taken = this.#bodyBytes;
    if (this.#fixed !== undefined) return this.#fixed.slice(from, this.#bodyBytes);
    const out = new Uint8Array(this.#bodyBytes - from);
    let pos = 0;
    for (const piece of this.#pieces) {
      out.set(piece, pos);
      pos += piece.length;
    }
    this.#pieces = [];
    return out;
  }

  /** True once the whole response has been read. */
  get complete(): boolean {
    return this.#phase === 'done';
  }

  /** Feed the next bytes of the stream. Returns true when the response is complete. */
  push(chunk: Uint8Array): boolean {
    if (this.#error !== undefined) throw this.#error;
    if (this.#ended) throw new WeftError(ErrorCode.Internal, 'ResponseParser: push() after end()');
    if (this.#phase === 'done') {
      if (chunk.length > 0) {
        this.#leftover =
          this.#leftover.length === 0 ? chunk : Buffer.concat([this.#leftover, chunk]);
      }
      return true;
    }
    try {
      this.#consume(chunk);
    } catch (err) {
      this.#error = err;
      throw err;
    }
    return this.complete;
  }

  /** The stream reached EOF: completes a close-delimited body, else throws INSTANCE_CRASHED. */
  end(): void {
    if (this.#error !== undefined) throw this.#error;
    this.#ended = true;
    switch (this.#phase) {
      case 'done':
        return;
      case 'body-close':
        this.#keepAlive = false;
        this.#phase = 'done';
        return;
      case 'head':
        return this.#crashed(
          this.#sectionBytes === 0
            ? 'connection closed before the response head'
            : `connection closed before the response head was complete (${this.#sectionBytes} bytes received)`,
        );
      case 'body-length':
        return this.#crashed(
          `connection closed after ${this.#bodyBytes} of ${this.#fixed?.length ?? 0} body bytes`,
        );
      case 'chunk-size':
      case 'chunk-data':
      case 'chunk-data-end':
      case 'trailers':
        return this.#crashed(
          `connection closed inside a chunked body after ${this.#bodyBytes} body bytes`,
        );
    }
  }

  /** The response; only once `push()` returned true or `end()` completed it. */
  result(): Http1Response {
    if (this.#phase !== 'done' || this.#status === undefined) {
      throw new WeftError(
        ErrorCode.Internal,
        'ResponseParser: result() before the response is complete',
      );
    }
    this.#result ??= {
      status: this.#status,
      headers: this.#headers,
      body:
        this.#fixed?.subarray(this.#taken) ??
        joinPieces(this.#pieces, this.#bodyBytes - this.#taken),
      keepAlive: this.#keepAlive,
    };
    this.#pieces = [];
    return this.#result;
  }

  #consume(data: Uint8Array): void {
    let pos = 0;
    while (this.#phase !== 'done' && pos < data.length) {
      switch (this.#phase) {
        case 'head':
          pos = this.#consumeHead(data, pos);
          break;
        case 'body-length': {
          const body = this.#fixed as Uint8Array;
          const n = Math.min(body.length - this.#bodyBytes, data.length - pos);
          body.set(data.subarray(pos, pos + n), this.#bodyBytes);
          this.#bodyBytes += n;
          pos += n;
          if (this.#bodyBytes === body.length) this.#phase = 'done';
          break;
        }
        case 'body-close':
          this.#addPiece(data.subarray(pos));
          pos = data.length;
          break;
        case 'chunk-size':
          pos = this.#consumeChunkSize(data, pos);
          break;
        case 'chunk-data': {
          const n = Math.min(this.#chunkRemaining, data.length - pos);
          this.#addPiece(data.subarray(pos, pos + n));
          this.#chunkRemaining -= n;
          pos += n;
          if (this.#chunkRemaining === 0) {
            this.#phase = 'chunk-data-end';
            this.#sawCr = false;
          }
          break;
        }
        case 'chunk-data-end': {
          // RFC 9112 §7.1: chunk-data CRLF; a bare LF is accepted like everywhere else.
          const b = data[pos];
          if (b === CR && !this.#sawCr) this.#sawCr = true;
          else if (b === LF) this.#phase = 'chunk-size';
          else fail('missing line end after chunk data');
          pos += 1;
          break;
        }
        case 'trailers':
          pos = this.#consumeTrailers(data, pos);
          break;
      }
    }
    if (pos < data.length) this.#leftover = data.subarray(pos);
  }

  #consumeHead(data: Uint8Array, pos: number): number {
    for (;;) {
      const [next, line] = this.#readLine(data, pos, this.#maxHeaderBytes, 'head');
      pos = next;
      if (line === undefined) return pos;
      if (line !== '') {
        this.#headLines.push(line);
        continue;
      }
      // The blank line (an empty first line is rejected below as a malformed status line).
      const lines = this.#headLines;
      this.#headLines = [];
      this.#onHead(lines);
      return pos;
    }
  }

  #onHead(lines: string[]): void {
    const statusLine = lines[0] ?? '';
    const m = STATUS_LINE.exec(statusLine);
    if (m === null || CTL_EXCEPT_HTAB.test(statusLine)) {
      fail(`malformed status line ${quote(statusLine)}`);
    }
    if (m[1] !== '1') fail(`unsupported HTTP version ${quote(statusLine.slice(0, 8))}`);
    const http10 = m[2] === '0';
    const status = Number(m[3]);
    if (status < 100 || status > 599) fail(`status code ${m[3]} outside 100–599`);
    // RFC 9110 §15.2.2: 101 switches this connection to another protocol; not supported.
    if (status === 101) fail('status 101: protocol upgrades are not supported');

    const fields: Array<{ name: string; lower: string; value: string }> = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      // RFC 9112 §5.2: a proxy may reject obs-fold with a 502.
      if (line.startsWith(' ') || line.startsWith('\t')) fail('obsolete line folding in a header');
      const colon = line.indexOf(':');
      if (colon === -1) fail(`header line without a colon: ${quote(line)}`);
      // RFC 9112 §5.1: a proxy removes whitespace between the field name and the colon.
      const name = line.slice(0, colon).replace(/[ \t]+$/, '');
      if (!HTTP_TOKEN.test(name)) fail(`invalid header name ${quote(name)}`);
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (CTL_EXCEPT_HTAB.test(value))
        fail(`invalid character in the value of header ${quote(name)}`);
      fields.push({ name, lower: name.toLowerCase(), value });
    }

    // RFC 9110 §15.2: 1xx responses are interim; the final one follows on the same stream. The
    // head budget is not reset, so a guest cannot stream interim heads forever.
    if (status < 200) return;
    this.#sectionBytes = 0;

    const connection = new Set<string>();
    const transferCodings: string[] = [];
    const contentLengths: string[] = [];
    let hasTransferEncoding = false;
    for (const { lower, value } of fields) {
      if (lower === 'connection') addTokens(connection, value);
      else if (lower === 'transfer-encoding') {
        hasTransferEncoding = true;
        for (const c of value.split(',')) {
          const coding = c.trim().toLowerCase();
          if (coding !== '') transferCodings.push(coding);
        }
      } else if (lower === 'content-length') {
        for (const v of value.split(',')) contentLengths.push(v.trim());
      }
    }

    // RFC 9112 §9.3: "close" always ends the connection; otherwise HTTP/1.1 persists, and
    // HTTP/1.0 only with "keep-alive" (§C.2.2).
    let keepAlive = !connection.has('close') && (!http10 || connection.has('keep-alive'));

    const headers: HeaderPair[] = [];
    for (const { name, lower, value } of fields) {
      if (RESPONSE_DROPPED.has(lower) || connection.has(lower)) continue;
      headers.push([name, value]);
    }
    // The head is accepted only once its framing is known to be valid.
    const accept = (phase: Phase, keepAliveAfter: boolean): void => {
      this.#status = status;
      this.#headers = headers;
      this.#keepAlive = keepAliveAfter;
      this.#phase = phase;
    };

    // RFC 9112 §6.3, in order: no body for HEAD, 204, 304 (and a tunnel for CONNECT 2xx).
    if (this.#method === 'CONNECT' && status < 300) fail('CONNECT tunnels are not supported');
    if (this.#method === 'HEAD' || status === 204 || status === 304) {
      accept('done', keepAlive);
      return;
    }
    if (hasTransferEncoding) {
      // §6.1: only chunked is supported (another coding would reach the client undecoded, the
      // field being hop-by-hop), and chunked at most once, as the final coding.
      for (const coding of transferCodings) {
        if (coding !== 'chunked') fail(`unsupported transfer coding ${quote(coding)}`);
      }
      if (transferCodings.length !== 1) {
        fail(`invalid Transfer-Encoding ${quote(transferCodings.join(', '))}`);
      }
      // §6.3: Transfer-Encoding overrides Content-Length; the pair hints at smuggling, so the
      // connection is not reused. §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing too.
      if (contentLengths.length > 0 || http10) keepAlive = false;
      accept('chunk-size', keepAlive);
      return;
    }
    if (contentLengths.length > 0) {
      const length = contentLength(contentLengths);
      if (length > this.#maxBodyBytes) this.#tooLarge();
      this.#fixed = new Uint8Array(length);
      accept(length === 0 ? 'done' : 'body-length', keepAlive);
      return;
    }
    // §6.3 rule 8: read until the server closes the connection, which then cannot be reused.
    accept('body-close', false);
  }

  #consumeChunkSize(data: Uint8Array, pos: number): number {
    const [next, line] = this.#readLine(data, pos, MAX_CHUNK_LINE_BYTES, 'chunk size line');
    if (line === undefined) return next;
    this.#sectionBytes = 0;
    // RFC 9112 §7.1: chunk-size [ chunk-ext ]; extensions (and BWS before them) are ignored.
    const semi = line.indexOf(';');
    const digits = (semi === -1 ? line : line.slice(0, semi)).replace(/[ \t]+$/, '');
    if (!HEX.test(digits) || CTL_EXCEPT_HTAB.test(line)) {
      fail(`invalid chunk size line ${quote(line)}`);
    }
    const size = Number.parseInt(digits, 16);
    if (!Number.isSafeInteger(size)) fail(`invalid chunk size line ${quote(line)}`);
    if (size === 0) {
      this.#phase = 'trailers';
      return next;
    }
    if (size > this.#maxBodyBytes - this.#bodyBytes) this.#tooLarge();
    this.#chunkRemaining = size;
    this.#phase = 'chunk-data';
    return next;
  }

  #consumeTrailers(data: Uint8Array, pos: number): number {
    for (;;) {
      const [next, line] = this.#readLine(data, pos, this.#maxHeaderBytes, 'trailer section');
      pos = next;
      if (line === undefined) return pos;
      if (line === '') {
        this.#phase = 'done';
        return pos;
      }
      // RFC 9112 §7.1.2: trailer fields may be discarded; only their shape is checked.
      if (line.indexOf(':') <= 0) fail(`trailer line without a colon: ${quote(line)}`);
    }
  }

  /**
   * Read up to and including the next LF. Returns the position after what was consumed and the
   * line without its CRLF/LF, or undefined when `data` ran out first (the part is kept). The
   * section's bytes so far must stay within `limit`.
   */
  #readLine(
    data: Uint8Array,
    pos: number,
    limit: number,
    section: string,
  ): [next: number, line: string | undefined] {
    const lf = data.indexOf(LF, pos);
    const next = lf === -1 ? data.length : lf + 1;
    this.#sectionBytes += next - pos;
    if (this.#sectionBytes > limit) {
      fail(`${section} larger than ${limit} bytes`, { limitBytes: limit });
    }
    const end = lf === -1 ? data.length : lf;
    if (end > pos) this.#line += latin1(data, pos, end);
    if (lf === -1) return [next, undefined];
    let line = this.#line;
    this.#line = '';
    // A lone CR elsewhere is no line end: it stays, and is rejected as a control character.
    if (line.endsWith('\r')) line = line.slice(0, -1);
    return [next, line];
  }

  #addPiece(piece: Uint8Array): void {
    if (piece.length > this.#maxBodyBytes - this.#bodyBytes) this.#tooLarge();
    this.#pieces.push(piece);
    this.#bodyBytes += piece.length;
  }

  #tooLarge(): never {
    throw new WeftError(
      ErrorCode.ResponseTooLarge,
      `response body larger than ${this.#maxBodyBytes} bytes`,
      { details: { limitBytes: this.#maxBodyBytes } },
    );
  }

  #crashed(message: string): never {
    this.#error = new WeftError(ErrorCode.InstanceCrashed, message);
    throw this.#error;
  }
}

// ---------------------------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);
const CR = 0x0d;
const LF = 0x0a;
/** RFC 9110 §5.6.2 token (field names, methods). */
const HEX = /^[0-9A-Fa-f]+$/;
/** `HTTP/d.d SP 3DIGIT [SP reason]`; lenient on a missing reason (RFC 9112 §4). */
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: .*)?$/;
/** Hop-by-hop (RFC 9110 §7.6.1) and framing fields: the gateway frames the response itself. */
const RESPONSE_DROPPED: ReadonlySet<string> = new Set([...HOP_BY_HOP_FIELDS, 'content-length']);

/** RFC 9110 §8.6: 1*DIGIT; a list of identical values is accepted as that value. */
function contentLength(values: string[]): number {
  let length: number | undefined;
  for (const v of values) {
    if (!/^\d+$/.test(v)) fail(`invalid Content-Length ${quote(v)}`);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) fail(`invalid Content-Length ${quote(v)}`);
    if (length !== undefined && n !== length) fail('conflicting Content-Length values');
    length = n;
  }
  return length ?? 0;
}

function addTokens(into: Set<string>, value: string): void {
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '') into.add(t);
  }
}

function joinPieces(pieces: Uint8Array[], total: number): Uint8Array {
  if (pieces.length === 0) return EMPTY;
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  return Buffer.concat(pieces, total);
}

function latin1(data: Uint8Array, start: number, end: number): string {
  return Buffer.from(data.buffer, data.byteOffset + start, end - start).toString('latin1');
}

/** JSON-quoted (controls escaped) and cut to 100 chars, for messages. */
function quote(s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

function fail(message: string, details?: Record<string, unknown>): never {
  throw new WeftError(
    ErrorCode.BadProxyResponse,
    message,
    details === undefined ? {} : { details },
  );
}
