/**
 * weft_http for AssemblyScript: outbound HTTP for weft actors, the import module "weft_http"
 * (AssemblyScript imports a `declare`d function from the module named after its file). The C
 * header `actors/include/weft_http.h` is the reference for the calls; this file declares them
 * with their core types and wraps them in `HttpRequest`.
 *
 * The host makes the request and checks it against the actor's `capabilities.outboundHttp`
 * first: scheme, host and port, then every address the name resolves to (loopback, link-local,
 * private and metadata addresses only when granted themselves), and again on each redirect.
 * `send` and `read` block the guest; the host suspends it and serves others meanwhile.
 *
 *     const req = new HttpRequest('GET', 'https://api.example.com/data');
 *     req.setHeader('accept', 'application/json');
 *     const status = req.send(); // the HTTP status, or a negative WEFT_HTTP_E* code
 *     if (status < 0) printError(`${lastError()}\n`);
 *     const body = req.readBody(); // null on failure: req.failure has the code
 *     req.close();
 *
 * Strings go to the host as UTF-8. A failed call returns (or records in `failure`) a negative
 * `WEFT_HTTP_E*` code; `lastError()` gives the host's reason as text: which rule denied which
 * URL, what timed out.
 */

// The raw imports. Pointers and lengths are byte offsets into the module's memory.
declare function request(method: usize, methodLen: usize, url: usize, urlLen: usize): i32;
declare function header(req: i32, name: usize, nameLen: usize, value: usize, valueLen: usize): i32;
declare function write(req: i32, data: usize, len: usize): i32;
declare function send(req: i32): i32;
declare function headers(req: i32, buf: usize, len: usize): i32;
declare function read(req: i32, buf: usize, len: usize): i32;
declare function close(req: i32): i32;
declare function error(buf: usize, len: usize): i32;

/** Not granted by capabilities.outboundHttp. */
export const WEFT_HTTP_EDENIED: i32 = -1;
/** Not an absolute http(s) URL. */
export const WEFT_HTTP_EBADURL: i32 = -2;
/** No complete response within the invocation's time. */
export const WEFT_HTTP_ETIMEOUT: i32 = -3;
/** The response body is over limits.maxResponseBytes (or the request body over maxRequestBytes). */
export const WEFT_HTTP_ETOOLARGE: i32 = -4;
/** Could not connect, or the connection failed. */
export const WEFT_HTTP_ECONNECT: i32 = -5;
/** A bad method or header (at send), or not a valid response. */
export const WEFT_HTTP_EPROTOCOL: i32 = -6;
/** Over limits.maxOutboundRequests for this invocation. */
export const WEFT_HTTP_ELIMIT: i32 = -7;
/** No such request, or the call is out of order. */
export const WEFT_HTTP_EBADHANDLE: i32 = -8;
/** A pointer or length outside the guest's memory. */
export const WEFT_HTTP_EFAULT: i32 = -9;

/** Body bytes read per call by `readBody`, to start with (the buffer doubles as needed). */
const READ_CHUNK: i32 = 64 * 1024;

/** The reason of the last failed call, as the host gave it (empty when none failed). */
export function lastError(): string {
  let buf = new Uint8Array(256);
  let n = error(buf.dataStart, buf.byteLength);
  if (n >= buf.length) {
    // The reason is longer: call again with room for all of it (and its NUL).
    buf = new Uint8Array(n + 1);
    n = error(buf.dataStart, buf.byteLength);
  }
  if (n < 0) return '';
  return String.UTF8.decodeUnsafe(buf.dataStart, min(n, buf.length - 1));
}

/**
 * One outbound request: built (`setHeader`, `write`), sent (`send`), its response read
 * (`responseHeaders`, `read`, `readBody`), then released (`close`). A call made out of that
 * order answers `WEFT_HTTP_EBADHANDLE`.
 */
export class HttpRequest {
  /** The host's handle (>= 0), or the code of the failure to start the request. */
  readonly handle: i32;
  /** The code of the last failure of a call that returns no code itself (0: none). */
  failure: i32 = 0;

  /** Start a request (nothing is sent yet); `ok` says whether the host took it. */
  constructor(method: string, url: string) {
    const m = String.UTF8.encode(method);
    const u = String.UTF8.encode(url);
    this.handle = request(changetype<usize>(m), m.byteLength, changetype<usize>(u), u.byteLength);
    if (this.handle < 0) this.failure = this.handle;
  }

  /** True when the host took the request (`handle` is not a failure code). */
  get ok(): bool {
    return this.handle >= 0;
  }

  /** Add a request header (Host, Connection and other hop-by-hop fields are the host's). */
  setHeader(name: string, value: string): i32 {
    const n = String.UTF8.encode(name);
    const v = String.UTF8.encode(value);
    return header(
      this.handle,
      changetype<usize>(n),
      n.byteLength,
      changetype<usize>(v),
      v.byteLength,
    );
  }

  /** Append bytes to the request body; returns how many, or a failure code. */
  write(data: Uint8Array): i32 {
    return write(this.handle, data.dataStart, data.byteLength);
  }

  /** Append text to the request body, as UTF-8. */
  writeString(text: string): i32 {
    const b = String.UTF8.encode(text);
    return write(this.handle, changetype<usize>(b), b.byteLength);
  }

  /** End the request body and wait for the response head; returns the HTTP status. */
  send(): i32 {
    return send(this.handle);
  }

  /**
   * The response's header fields as "name: value\n" lines (names lower-case), or null on failure
   * (`failure` has the code).
   */
  responseHeaders(): string | null {
    let buf = new Uint8Array(4096);
    let n = headers(this.handle, buf.dataStart, buf.byteLength);
    if (n > buf.length) {
      buf = new Uint8Array(n);
      n = headers(this.handle, buf.dataStart, buf.byteLength);
    }
    if (n < 0) {
      this.failure = n;
      return null;
    }
    return String.UTF8.decodeUnsafe(buf.dataStart, n);
  }

  /** The value of response header `name` (lower-case), or null when it has none. */
  responseHeader(name: string): string | null {
    const all = this.responseHeaders();
    if (all === null) return null;
    const prefix = name + ': ';
    const lines = all.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].startsWith(prefix)) return lines[i].substring(prefix.length);
    }
    return null;
  }

  /** Read the next body bytes into `buf`; returns how many, 0 at the body's end. */
  read(buf: Uint8Array): i32 {
    return read(this.handle, buf.dataStart, buf.byteLength);
  }

  /** The rest of the body, or null on failure (`failure` has the code). */
  readBody(): Uint8Array | null {
    let buf = new Uint8Array(READ_CHUNK);
    let total: i32 = 0;
    let n: i32 = 0;
    do {
      total += n;
      if (total == buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      n = read(this.handle, buf.dataStart + total, buf.length - total);
    } while (n > 0);
    if (n < 0) {
      this.failure = n;
      return null;
    }
    return buf.subarray(0, total);
  }

  /** Read the rest of the body and drop it; returns 0, or a failure code. */
  discardBody(): i32 {
    const buf = new Uint8Array(READ_CHUNK);
    let n: i32 = 0;
    do {
      n = read(this.handle, buf.dataStart, buf.byteLength);
    } while (n > 0);
    return n;
  }

  /** Release the request (and its connection, if the body was not read to the end). */
  close(): i32 {
    return close(this.handle);
  }
}
