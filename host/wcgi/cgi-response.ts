/**
 * Parse a CGI response (RFC 3875 §6) from a WCGI guest's stdout: lenient on input, strict on output.
 *
 * Security model: stdout is untrusted (a script may echo client input into a header). Nothing of
 * the header block is forwarded as bytes: each field is parsed, checked and returned as a
 * name/value pair for node:http to serialize. A name that is not an RFC 9110 token, or a value
 * with CR, LF, NUL or another control character but HTAB, rejects the whole response (response
 * splitting, cgi.md §8) — the gateway answers 502 instead of forwarding partial garbage (§3.1).
 * Connection-level fields and Content-Length are the server's business and are dropped.
 *
 * Input accepted:
 * - line ends LF or CRLF, mixed; the header block ends at the first empty line (§6.2, §7.2);
 * - a first line `HTTP/1.x NNN reason` is taken as the status (as if `Status: NNN`);
 * - `Status: NNN reason` (§6.3.3), or just `Status: NNN`; the reason phrase is dropped;
 * - `Location:` without Status → 302, for an absolute URI (client redirect, §6.2.3) and also for a
 *   local `/path` (§6.2.2 asks for an internal re-dispatch; weft does not re-dispatch: one request,
 *   one instance, and a POST body cannot be replayed — the client follows the 302 instead);
 * - a field with an empty value is as if absent (§6.3).
 *
 * The header block is decoded as Latin-1, so each byte is one char: node:http writes header strings
 * as Latin-1, which gives back the script's exact bytes (obs-text, or UTF-8 in a filename).
 */

import { Buffer } from 'node:buffer';
import {
  CTL_EXCEPT_HTAB,
  ErrorCode,
  HOP_BY_HOP_FIELDS,
  HTTP_TOKEN,
  WeftError,
  type HeaderPair,
  type HttpResponseHead,
} from '../../lattice/index.ts';

/** Default cap on the header block, blank line included (§9.6: bounded, not fixed). 64 KiB. */
export const DEFAULT_MAX_CGI_HEADER_BYTES = 64 * 1024;

/** Why a CGI response was rejected; in `details.reason` of the BAD_CGI_RESPONSE error. */
export const CgiErrorReason = {
  /** No output at all (§6.1 requires a non-empty response). */
  Empty: 'empty-output',
  /** EOF before the blank line that ends the header block. */
  NoHeaderEnd: 'no-header-end',
  /** Header block over `maxHeaderBytes`. */
  HeaderTooLarge: 'header-too-large',
  /** A header line without ':'. */
  NoColon: 'line-without-colon',
  /** Whitespace between field name and ':' (§6.3). */
  SpaceBeforeColon: 'space-before-colon',
  /** A line starting with SP/HTAB: continuation lines are not allowed (§6.3). */
  ContinuationLine: 'continuation-line',
  /** Field name not an RFC 9110 token. */
  BadName: 'bad-field-name',
  /** Field value with CR, LF, NUL or another control character but HTAB. */
  BadValue: 'bad-field-value',
  /** Status not `3DIGIT [SP reason]`, or outside 200–599. */
  BadStatus: 'bad-status',
  /** Content-Type, Location or Status more than once (§6.3). */
  DuplicateCgiField: 'duplicate-cgi-field',
  /** None of Content-Type, Location, Status (§6.3). */
  NoCgiField: 'no-cgi-field',
} as const;
export type CgiErrorReason = (typeof CgiErrorReason)[keyof typeof CgiErrorReason];

export interface ParseCgiResponseOptions {
  /** The request method: `HEAD` discards the body (§4.3.3). */
  method: string;
  /** Default `DEFAULT_MAX_CGI_HEADER_BYTES`. */
  maxHeaderBytes?: number | undefined;
}

export interface CgiResponse extends HttpResponseHead {
  /** A subarray of stdout (no copy); empty for HEAD and for 204/205/304. */
  body: Uint8Array;
}

/** The `details.reason` of a BAD_CGI_RESPONSE error from `parseCgiResponse`, else undefined. */
export function cgiErrorReason(err: unknown): CgiErrorReason | undefined {
  if (!(err instanceof WeftError) || err.code !== ErrorCode.BadCgiResponse) return undefined;
  const reason = err.details?.['reason'];
  return typeof reason === 'string' && REASONS.has(reason) ? (reason as CgiErrorReason) : undefined;
}

/**
 * Parse a guest's complete stdout. Throws WeftError BAD_CGI_RESPONSE (502) with
 * `details: { reason: CgiErrorReason, line?, field?, limitBytes? }` (`line` is 1-based) when the
 * output is not a valid CGI response; never returns partial headers.
 */
export function parseCgiResponse(stdout: Uint8Array, opts: ParseCgiResponseOptions): CgiResponse {
  const maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_CGI_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes <= 0) {
    throw new RangeError(`maxHeaderBytes must be a positive integer, got ${maxHeaderBytes}`);
  }
  if (stdout.length === 0) fail(CgiErrorReason.Empty, 'the script wrote nothing to stdout');

  // §6.2/§7.2: find the first empty line ("\n\n", "\r\n\r\n", "\r\n\n", "\n\r\n"), only within the cap.
  const window = stdout.subarray(0, Math.min(stdout.length, maxHeaderBytes));
  const lines: string[] = [];
  let lineStart = 0;
  let bodyStart = -1;
  for (;;) {
    const lf = window.indexOf(0x0a, lineStart);
    if (lf === -1) break;
    // A lone CR is not a line end; it stays in the line and is rejected as a control character.
    const end = lf > lineStart && window[lf - 1] === 0x0d ? lf - 1 : lf;
    if (end === lineStart) {
      bodyStart = lf + 1;
      break;
    }
    lines.push(
      Buffer.from(window.buffer, window.byteOffset + lineStart, end - lineStart).toString('latin1'),
    );
    lineStart = lf + 1;
  }
  if (bodyStart === -1) {
    if (stdout.length > maxHeaderBytes) {
      fail(CgiErrorReason.HeaderTooLarge, 'the header block is too large', {
        limitBytes: maxHeaderBytes,
      });
    }
    fail(CgiErrorReason.NoHeaderEnd, 'the output ended before the blank line ending the headers');
  }

  let status: number | undefined;
  let location: string | undefined;
  let contentType: string | undefined;
  const kept: Array<{ name: string; lower: string; value: string }> = [];
  const connectionListed = new Set<string>();

  for (const [index, line] of lines.entries()) {
    const lineNo = index + 1;
    // Lenient: an NPH-style status line first (DESIGN.md WCGI), used only as the status.
    if (index === 0 && line.startsWith('HTTP/')) {
      const m = /^HTTP\/\d(?:\.\d)? (\d{3})(?: .*)?$/.exec(line);
      if (m === null || CTL_EXCEPT_HTAB.test(line)) {
        fail(CgiErrorReason.BadStatus, 'malformed status line', { line: lineNo });
      }
      status = statusCode(m[1] ?? '', lineNo);
      continue;
    }
    // §6.3: no continuation lines (obs-fold).
    if (line.startsWith(' ') || line.startsWith('\t')) {
      fail(CgiErrorReason.ContinuationLine, 'continuation lines are not allowed', { line: lineNo });
    }
    const colon = line.indexOf(':');
    if (colon === -1) fail(CgiErrorReason.NoColon, 'a header line has no ":"', { line: lineNo });
    const name = line.slice(0, colon);
    // §6.3: whitespace is allowed after ':' but not before it.
    if (name.endsWith(' ') || name.endsWith('\t')) {
      fail(CgiErrorReason.SpaceBeforeColon, 'whitespace before ":" in a header line', {
        line: lineNo,
      });
    }
    if (!HTTP_TOKEN.test(name))
      fail(CgiErrorReason.BadName, 'a header name is not a token', { line: lineNo });
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (CTL_EXCEPT_HTAB.test(value)) {
      fail(CgiErrorReason.BadValue, `control character in the value of ${name}`, {
        line: lineNo,
        field: name,
      });
    }
    // §6.3: a field with an empty value is as if absent (so it neither counts nor duplicates).
    if (value === '') continue;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'status':
        if (status !== undefined) duplicate(name, lineNo);
        status = statusValue(value, lineNo);
        continue;
      case 'location':
        if (location !== undefined) duplicate(name, lineNo);
        location = value;
        break;
      case 'content-type':
        if (contentType !== undefined) duplicate(name, lineNo);
        contentType = value;
        break;
      case 'connection':
        for (const token of value.split(',')) connectionListed.add(token.trim().toLowerCase());
        continue;
      default:
        // §6.3.4: no client-connection fields from the script; the server frames the body itself.
        if (DROPPED.has(lower)) continue;
        // §6.3.5: X-CGI-* are server extensions; weft knows none, so none reach the client.
        if (lower.startsWith('x-cgi-')) continue;
    }
    kept.push({ name, lower, value });
  }

  // §6.3: at least one CGI field.
  if (status === undefined && location === undefined && contentType === undefined) {
    fail(CgiErrorReason.NoCgiField, 'the response has none of Content-Type, Location, Status');
  }

  const headers: HeaderPair[] = [];
  for (const { name, lower, value } of kept) {
    // RFC 9110 §7.6.1: fields named by Connection are hop-by-hop (never the CGI fields).
    if (connectionListed.has(lower) && lower !== 'content-type' && lower !== 'location') continue;
    headers.push([name, value]);
  }

  // §6.3.3 default 200; a redirect without Status is a 302 (§6.2.3; local ones too, see above).
  const finalStatus = status ?? (location !== undefined ? 302 : 200);
  // §4.3.3: HEAD has no body; RFC 9110 §15.3.5, §15.3.6, §15.4.5: neither have 204, 205, 304.
  const noBody = opts.method === 'HEAD' || NO_BODY_STATUS.has(finalStatus);
  const body = noBody ? stdout.subarray(stdout.length) : stdout.subarray(bodyStart);
  return { status: finalStatus, headers, body };
}

// ---------------------------------------------------------------------------------------------

const REASONS: ReadonlySet<string> = new Set(Object.values(CgiErrorReason));
/** RFC 9110 §5.1 field-name = token. */
/** Connection-level (RFC 9110 §7.6.1) and framing fields the server sets itself (§6.3.4). */
const DROPPED: ReadonlySet<string> = new Set([
  ...Array.from(HOP_BY_HOP_FIELDS).filter((f) => f !== 'connection'),
  'content-length',
]);
const NO_BODY_STATUS = new Set([204, 205, 304]);

/** `3DIGIT [SP reason-phrase]` (§6.3.3); lenient on HTAB and a missing reason. */
function statusValue(value: string, line: number): number {
  const m = /^(\d{3})(?:[ \t].*)?$/.exec(value);
  if (m === null) fail(CgiErrorReason.BadStatus, 'Status is not "3DIGIT reason"', { line });
  return statusCode(m[1] ?? '', line);
}

/**
 * 200–599. A 1xx code is interim (RFC 9110 §15.2) and cannot be the one final response a script
 * produces, so it is rejected too.
 */
function statusCode(digits: string, line: number): number {
  const code = Number(digits);
  if (!(code >= 200 && code <= 599)) {
    fail(CgiErrorReason.BadStatus, `Status ${digits} is outside 200–599`, { line });
  }
  return code;
}

function duplicate(name: string, line: number): never {
  fail(CgiErrorReason.DuplicateCgiField, `${name} appears more than once`, { line, field: name });
}

function fail(reason: CgiErrorReason, message: string, extra: Record<string, unknown> = {}): never {
  throw new WeftError(ErrorCode.BadCgiResponse, `bad CGI response: ${message}`, {
    details: { reason, ...extra },
  });
}
