/**
 * fetch-as: actors/fetch in AssemblyScript. A WCGI actor that calls out over HTTP through the
 * weft_http capability (actors/assemblyscript/weft_http.ts) and answers with what came back.
 *
 *   GET  /fetch-as?path=/hello%3Fname%3Dx   GET $UPSTREAM + path (UPSTREAM from the manifest's env)
 *   GET  /fetch-as?url=http%3A%2F%2F...     GET that absolute URL
 *   POST /fetch-as?...                      the same with POST, the request body sent upstream
 *   &count=N                                N requests one after another (1..10000), the last
 *                                           body answered; a failure stops the loop
 * Every request carries `user-agent: weft-fetch-as`. Success: the upstream status (as Status:),
 * its content-type, its body, and the header x-fetch-made: requests made. Failure: 502
 * text/plain "weft_http error E after K request(s): REASON\n" (E is the negative WEFT_HTTP_E*
 * code), which shows what the host's policy said.
 *
 * Built by actors/build.ts with asc (`--runtime stub --exportStart _start`): the top level below
 * is the program, run as the WASI command's `_start`.
 */
import { getenv, print, readStdin, writeBytes } from '../assemblyscript/wasi';
import { HttpRequest, lastError } from '../assemblyscript/weft_http';

const MAX_BODY: i32 = 4 << 20;
const MAX_COUNT: i32 = 10000;

function hexValue(c: u8): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decode %XX and '+' (a space), as form and query encoding write them; the result as UTF-8. */
function urlDecode(s: string): string {
  const src = Uint8Array.wrap(String.UTF8.encode(s));
  const out = new Uint8Array(src.length);
  let o = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c == 0x25 && i + 2 < src.length) {
      const hi = hexValue(src[i + 1]);
      const lo = hexValue(src[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = ((hi << 4) | lo) as u8;
        i += 2;
        continue;
      }
    }
    out[o++] = c == 0x2b ? 0x20 : c;
  }
  return String.UTF8.decodeUnsafe(out.dataStart, o);
}

/** The value of query parameter `name`, decoded, or null when absent. */
function queryParam(query: string, name: string): string | null {
  const pairs = query.split('&');
  const prefix = name + '=';
  for (let i = 0; i < pairs.length; i++) {
    if (pairs[i].startsWith(prefix)) return urlDecode(pairs[i].substring(prefix.length));
  }
  return null;
}

function fail(code: i32, made: i32): void {
  print(
    `Status: 502 Bad Gateway\nContent-Type: text/plain\n\nweft_http error ${code} after ${made} request(s): ${lastError()}\n`,
  );
}

function main(): void {
  const qs = getenv('QUERY_STRING');
  const query = qs !== null ? qs : '';
  const m = getenv('REQUEST_METHOD');
  const method = m !== null ? m : 'GET';

  let url: string;
  const absolute = queryParam(query, 'url');
  const path = queryParam(query, 'path');
  if (absolute !== null) {
    url = absolute;
  } else if (path !== null) {
    const up = getenv('UPSTREAM');
    url = (up !== null ? up : '') + path;
  } else {
    print('Status: 400 Bad Request\nContent-Type: text/plain\n\nexpected ?url= or ?path=\n');
    return;
  }
  const countText = queryParam(query, 'count');
  let count: i32 = countText !== null ? I32.parseInt(countText) : 1;
  if (count < 1 || count > MAX_COUNT) count = 1;

  const body = method == 'POST' ? readStdin(MAX_BODY) : new Uint8Array(0);

  let made: i32 = 0;
  for (let i: i32 = 0; i < count; i++) {
    const req = new HttpRequest(method, url);
    if (!req.ok) {
      fail(req.handle, made);
      return;
    }
    req.setHeader('user-agent', 'weft-fetch-as');
    if (body.length > 0) req.write(body);
    const status = req.send();
    if (status < 0) {
      req.close();
      fail(status, made);
      return;
    }
    made++;
    if (i + 1 < count) {
      const drained = req.discardBody();
      req.close();
      if (drained < 0) {
        fail(drained, made);
        return;
      }
      continue;
    }
    const type = req.responseHeader('content-type');
    // Read the whole body before answering, so that a failure can still be a 502.
    const got = req.readBody();
    req.close();
    if (got === null) {
      fail(req.failure, made);
      return;
    }
    print(
      `Status: ${status}\nContent-Type: ${type !== null ? type : 'application/octet-stream'}\nX-Fetch-Made: ${made}\n\n`,
    );
    writeBytes(got);
  }
}

main();
