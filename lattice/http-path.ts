/**
 * Request-target splitting and request-path normalization, shared by the gateway (routing) and the
 * host (SCRIPT_NAME / PATH_INFO for WCGI).
 *
 * Security model: the gateway routes on, and the host splits SCRIPT_NAME/PATH_INFO from, the output
 * of `normalizeRequestPath` (RFC 3875 §9.8: normalize before splitting). Every check is made on the
 * percent-decoded form of each segment, so an encoded dot segment (`%2e%2e`, `%2E.`) is resolved
 * exactly like a plain one, and a decoded path can contain no `.`/`..`/empty segment, no `/` or `\`
 * inside a segment, no control character and no invalid UTF-8. Anything that cannot be made safe
 * is rejected with WEFT_ERR_BAD_REQUEST (400), never repaired by guessing.
 *
 * Canonical form (the output of `normalizeRequestPath`), RFC 3986 §6.2.2:
 * - starts with `/`; no empty, `.` or `..` segments; a trailing `/` is kept (also after a final
 *   `.`/`..`, RFC 3986 §5.2.4: `/a/b/..` → `/a/`);
 * - percent-encoded unreserved characters are decoded (`%7E` → `~`, `%41` → `A`, `%2E` → `.`);
 * - every other escape is kept, with upper-case hex digits (`%c3%a9` → `%C3%A9`); reserved
 *   characters keep their form (`%21` and `!` stay distinct, RFC 3986 §6.2.2.2);
 * - raw printable ASCII that is not allowed in a path segment (`"`, `<`, `>`, `[`, `]`, `^`, `` ` ``,
 *   `{`, `|`, `}`) is percent-encoded.
 * The function is idempotent: `normalizeRequestPath(normalizeRequestPath(p)) === normalizeRequestPath(p)`.
 */

import { ErrorCode, WeftError } from './errors.ts';

/** Split result of a raw request-target. */
export interface RequestTarget {
  /** Path part, still percent-encoded; `*` for the asterisk-form. */
  path: string;
  /** Raw query without the `?`; `''` when there is none. */
  query: string;
}

/**
 * Split a raw request-target (`req.url` from node:http) into path and query (RFC 9112 §3.2).
 * - origin-form `/p?q` → `{ path: '/p', query: 'q' }`;
 * - absolute-form `http://h:8080/p?q` → `{ path: '/p', query: 'q' }` (the authority is dropped: the
 *   gateway takes the host from `Host`); an empty path becomes `/`;
 * - asterisk-form `*` → `{ path: '*', query: '' }` (OPTIONS *; `normalizeRequestPath` rejects it);
 * - a `#fragment` is not part of a request-target; it is dropped, as the WHATWG URL parser does.
 * Anything else (authority-form `host:443`, `''`) is returned as the path and rejected later by
 * `normalizeRequestPath`. Never throws.
 */
export function splitTarget(url: string): RequestTarget {
  if (url === '*') return { path: '*', query: '' };
  let rest = url;
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  // RFC 3986 §3: scheme "://" authority; the authority ends at the first "/", "?" (or "#").
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(rest);
  if (absolute !== null) {
    rest = rest.slice(absolute[0].length);
    if (!rest.startsWith('/')) rest = `/${rest}`;
  }
  const q = rest.indexOf('?');
  return q === -1
    ? { path: rest, query: '' }
    : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}

/**
 * Normalize a raw request path (no query) for routing; see the module comment for the canonical
 * form. Throws WeftError BAD_REQUEST (details `{ reason, path }`) when the path:
 * - does not start with `/` (`*`, authority-form, empty) — reason `not-origin-form`;
 * - contains a raw control character, space, non-ASCII character, `\`, `?` or `#` — `bad-char`
 *   (RFC 3986 §2: a request-target is ASCII; non-ASCII bytes must be percent-encoded);
 * - has a malformed escape (`%`, `%4`, `%zz`) — `bad-escape`;
 * - encodes `/` (`%2F`) or `\` (`%5C`) — `encoded-separator` (RFC 3875 §4.1.5 allows rejecting it;
 *   a decoded PATH_INFO could otherwise not be told apart from a real separator);
 * - encodes a control character (`%00`–`%1F`, `%7F`, U+0080–U+009F) — `encoded-control`;
 * - encodes bytes that are not UTF-8 — `bad-utf8` (PATH_INFO is handed to the guest as text);
 * - has a `..` that would climb above `/` — `above-root`.
 */
export function normalizeRequestPath(rawPath: string): string {
  if (!rawPath.startsWith('/')) {
    throw badPath('request path must start with "/"', 'not-origin-form', rawPath);
  }
  const out: string[] = [];
  const segments = rawPath.split('/');
  let trailingSlash = false;
  // segments[0] is the '' before the leading '/'.
  for (let i = 1; i < segments.length; i++) {
    const { canonical, decoded } = parseSegment(segments[i] ?? '', rawPath);
    const last = i === segments.length - 1;
    // RFC 3986 §5.2.4 remove_dot_segments, on the decoded segment so %2e%2e counts as "..";
    // empty segments ("//") are collapsed.
    if (decoded === '' || decoded === '.') {
      trailingSlash = last;
      continue;
    }
    if (decoded === '..') {
      if (out.length === 0) {
        throw badPath('request path climbs above "/"', 'above-root', rawPath);
      }
      out.pop();
      trailingSlash = last;
      continue;
    }
    out.push(canonical);
    trailingSlash = false;
  }
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailingSlash ? '/' : ''}`;
}

/**
 * Percent-decode a path (normally one produced by `normalizeRequestPath`) into text, as CGI wants for
 * SCRIPT_NAME and PATH_INFO (RFC 3875 §4.1.5, §4.1.13). Applies the same per-segment checks as
 * `normalizeRequestPath` (so no decoded segment contains `/`, `\`, NUL or another control character
 * and the result is valid UTF-8) but does not resolve dot segments: callers check normalization.
 * Throws WeftError BAD_REQUEST like `normalizeRequestPath`.
 */
export function decodeRequestPath(path: string): string {
  if (!path.includes('%')) {
    // Fast path still validates the raw characters.
    for (const segment of path.split('/')) parseSegment(segment, path);
    return path;
  }
  return path
    .split('/')
    .map((segment) => parseSegment(segment, path).decoded)
    .join('/');
}

// ---------------------------------------------------------------------------------------------

interface Segment {
  /** Canonically re-encoded segment (see the module comment). */
  canonical: string;
  /** Fully decoded text. */
  decoded: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

/** RFC 3986 §3.3 pchar without pct-encoded: unreserved / sub-delims / ":" / "@". */
function isRawPchar(c: number): boolean {
  return isUnreserved(c) || "!$&'()*+,;=:@".includes(String.fromCharCode(c));
}

function hex2(c: number): string {
  return `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
}

function parseSegment(raw: string, rawPath: string): Segment {
  let canonical = '';
  let plain = true; // no escapes: decoded === raw
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const digits = raw.slice(i + 1, i + 3);
      if (!HEX.test(digits)) {
        throw badPath('malformed percent-encoding in request path', 'bad-escape', rawPath);
      }
      const b = Number.parseInt(digits, 16);
      if (b === 0x2f || b === 0x5c) {
        throw badPath('encoded "/" or "\\" in request path', 'encoded-separator', rawPath);
      }
      if (b < 0x20 || b === 0x7f) {
        throw badPath('encoded control character in request path', 'encoded-control', rawPath);
      }
      canonical += isUnreserved(b) ? String.fromCharCode(b) : hex2(b);
      bytes.push(b);
      plain = false;
      i += 2;
      continue;
    }
    if (c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x3f || c === 0x23) {
      throw badPath(
        'request path contains a character that must be percent-encoded',
        'bad-char',
        rawPath,
      );
    }
    canonical += isRawPchar(c) ? raw[i] : hex2(c);
    bytes.push(c);
  }
  if (plain) return { canonical, decoded: raw };
  let decoded: string;
  try {
    decoded = UTF8.decode(Uint8Array.from(bytes));
  } catch {
    throw badPath('percent-encoded bytes in request path are not UTF-8', 'bad-utf8', rawPath);
  }
  // C1 controls, which only exist after UTF-8 decoding.
  if (/[\u0080-\u009f]/.test(decoded)) {
    throw badPath('encoded control character in request path', 'encoded-control', rawPath);
  }
  return { canonical, decoded };
}

function badPath(message: string, reason: string, path: string): WeftError {
  // Cap the echoed path: it is client input and ends up in logs and error bodies.
  return new WeftError(ErrorCode.BadRequest, message, {
    details: { reason, path: path.length > 256 ? `${path.slice(0, 256)}…` : path },
  });
}
