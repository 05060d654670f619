/**
 * What a WCGI actor in AssemblyScript needs of WASI, on the five preview1 calls declared in
 * `wasi_snapshot_preview1.ts`: environment variables (the CGI request), stdin (the request body),
 * stdout (the CGI response), stderr, exit, and an `abort` for the compiler's runtime errors
 * (build with `--use abort=…/wasiAbort`, as actors/build.ts does), so a module imports nothing
 * but WASI and `weft_http`.
 */
import {
  environ_get,
  environ_sizes_get,
  fd_read,
  fd_write,
  proc_exit,
} from './wasi_snapshot_preview1';

const STDOUT: u32 = 1;
const STDERR: u32 = 2;
const STDIN: u32 = 0;
const READ_CHUNK: i32 = 64 * 1024;

/** One iovec and one result word, reused by every call (the actors are single-threaded). */
const scratch = memory.data(16);

/** Write all of `data` (`len` bytes at `ptr`) to `fd`; false once a write fails. */
function writeAll(fd: u32, ptr: usize, len: usize): bool {
  while (len > 0) {
    store<usize>(scratch, ptr);
    store<usize>(scratch, len, sizeof<usize>());
    if (fd_write(fd, scratch, 1, scratch + 8) != 0) return false;
    const n = load<u32>(scratch + 8) as usize;
    if (n == 0) return false;
    ptr += n;
    len -= n;
  }
  return true;
}

/** Write bytes to stdout. */
export function writeBytes(data: Uint8Array): bool {
  return writeAll(STDOUT, data.dataStart, data.byteLength);
}

/** Write text to stdout, as UTF-8. */
export function print(text: string): bool {
  const bytes = String.UTF8.encode(text);
  return writeAll(STDOUT, changetype<usize>(bytes), bytes.byteLength);
}

/** Write text to stderr, as UTF-8 (the host logs it). */
export function printError(text: string): bool {
  const bytes = String.UTF8.encode(text);
  return writeAll(STDERR, changetype<usize>(bytes), bytes.byteLength);
}

/** The value of environment variable `name`, or null when it is not set. */
export function getenv(name: string): string | null {
  const sizes = memory.data(8);
  if (environ_sizes_get(sizes, sizes + 4) != 0) return null;
  const count = load<u32>(sizes);
  const size = load<u32>(sizes + 4);
  const pointers = new ArrayBuffer(count * sizeof<usize>());
  const strings = new ArrayBuffer(size);
  if (environ_get(changetype<usize>(pointers), changetype<usize>(strings)) != 0) return null;
  const prefix = name + '=';
  for (let i: u32 = 0; i < count; i++) {
    const start = load<usize>(changetype<usize>(pointers) + i * sizeof<usize>());
    let end = start;
    while (load<u8>(end) != 0) end++;
    const entry = String.UTF8.decodeUnsafe(start, end - start);
    if (entry.startsWith(prefix)) return entry.substring(prefix.length);
  }
  return null;
}

/** All of stdin, up to `maxBytes` (the rest is left unread). */
export function readStdin(maxBytes: i32): Uint8Array {
  let buf = new Uint8Array(min(READ_CHUNK, maxBytes));
  let total: i32 = 0;
  while (total < maxBytes) {
    if (total == buf.length) {
      const bigger = new Uint8Array(min(buf.length * 2, maxBytes));
      bigger.set(buf);
      buf = bigger;
    }
    store<usize>(scratch, buf.dataStart + total);
    store<usize>(scratch, (buf.length - total) as usize, sizeof<usize>());
    if (fd_read(STDIN, scratch, 1, scratch + 8) != 0) break;
    const n = load<u32>(scratch + 8) as i32;
    if (n == 0) break;
    total += n;
  }
  return buf.subarray(0, total);
}

/** End the program now with `code`. */
export function exit(code: u32): void {
  proc_exit(code);
}

/**
 * The compiler's `abort` (a failed assertion, an index out of range, out of memory): the reason
 * on stderr, then exit 255, which the host reports as the actor failing.
 */
export function wasiAbort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32,
): void {
  printError(
    `abort: ${message !== null ? message : 'no message'} at ${fileName !== null ? fileName : '?'}:${lineNumber}:${columnNumber}\n`,
  );
  proc_exit(255);
}
