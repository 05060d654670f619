/**
 * The import object for one context. The 46 functions are arrow functions closing over the
 * context's state and calling shared module-level implementations: one object literal per
 * context (cheap: V8 allocates it from a boilerplate), no `bind()`, no per-call allocation.
 *
 * `wasi_unstable` (snapshot 0) gets the same functions. Its ABI is identical except for a few
 * layouts (`whence` order, `filestat.nlink` as u32, the clock subscription's extra field), so a
 * 2019-era module that seeks, stats or polls may misread those results.
 *
 * Names a module imports from the WASI namespaces that preview1 doesn't define (WASIX additions,
 * say) resolve to a stub answering `nosys`, as the reference asks, so such a module still links
 * and fails only if it calls them. That lookup goes through a Proxy whose handler is shared.
 */
import { args_get, args_sizes_get, environ_get, environ_sizes_get } from './args.ts';
import { clock_res_get, clock_time_get } from './clocks.ts';
import { Errno } from './constants.ts';
import {
  fd_advise,
  fd_allocate,
  fd_close,
  fd_datasync,
  fd_fdstat_get,
  fd_fdstat_set_flags,
  fd_fdstat_set_rights,
  fd_filestat_get,
  fd_filestat_set_size,
  fd_filestat_set_times,
  fd_pread,
  fd_prestat_dir_name,
  fd_prestat_get,
  fd_pwrite,
  fd_read,
  fd_readdir,
  fd_renumber,
  fd_seek,
  fd_sync,
  fd_tell,
  fd_write,
} from './fs.ts';
import {
  path_create_directory,
  path_filestat_get,
  path_filestat_set_times,
  path_link,
  path_open,
  path_readlink,
  path_remove_directory,
  path_rename,
  path_symlink,
  path_unlink_file,
} from './path.ts';
import { poll_oneoff } from './poll.ts';
import { proc_exit, proc_raise, sched_yield } from './proc.ts';
import { random_get } from './random.ts';
import { sock_accept, sock_recv, sock_send, sock_shutdown } from './sockets.ts';
import type { WasiState } from './state.ts';

/** Import module names served by a context; both get the same functions. */
export const WASI_MODULE_NAMES: readonly string[] = ['wasi_snapshot_preview1', 'wasi_unstable'];

type n = number;
type b = bigint;

function preview1(s: WasiState): Record<string, (...args: never[]) => number | never> {
  return {
    args_get: (a: n, b: n) => args_get(s, a, b),
    args_sizes_get: (a: n, b: n) => args_sizes_get(s, a, b),
    environ_get: (a: n, b: n) => environ_get(s, a, b),
    environ_sizes_get: (a: n, b: n) => environ_sizes_get(s, a, b),
    clock_res_get: (id: n, ret: n) => clock_res_get(s, id, ret),
    clock_time_get: (id: n, precision: b, ret: n) => clock_time_get(s, id, precision, ret),
    fd_advise: (fd: n, offset: b, len: b, advice: n) => fd_advise(s, fd, offset, len, advice),
    fd_allocate: (fd: n, offset: b, len: b) => fd_allocate(s, fd, offset, len),
    fd_close: (fd: n) => fd_close(s, fd),
    fd_datasync: (fd: n) => fd_datasync(s, fd),
    fd_fdstat_get: (fd: n, ret: n) => fd_fdstat_get(s, fd, ret),
    fd_fdstat_set_flags: (fd: n, flags: n) => fd_fdstat_set_flags(s, fd, flags),
    fd_fdstat_set_rights: (fd: n, base: b, inh: b) => fd_fdstat_set_rights(s, fd, base, inh),
    fd_filestat_get: (fd: n, ret: n) => fd_filestat_get(s, fd, ret),
    fd_filestat_set_size: (fd: n, size: b) => fd_filestat_set_size(s, fd, size),
    fd_filestat_set_times: (fd: n, atim: b, mtim: b, flags: n) =>
      fd_filestat_set_times(s, fd, atim, mtim, flags),
    fd_pread: (fd: n, iovs: n, len: n, offset: b, ret: n) =>
      fd_pread(s, fd, iovs, len, offset, ret),
    fd_prestat_get: (fd: n, ret: n) => fd_prestat_get(s, fd, ret),
    fd_prestat_dir_name: (fd: n, path: n, len: n) => fd_prestat_dir_name(s, fd, path, len),
    fd_pwrite: (fd: n, iovs: n, len: n, offset: b, ret: n) =>
      fd_pwrite(s, fd, iovs, len, offset, ret),
    fd_read: (fd: n, iovs: n, len: n, ret: n) => fd_read(s, fd, iovs, len, ret),
    fd_readdir: (fd: n, buf: n, len: n, cookie: b, ret: n) =>
      fd_readdir(s, fd, buf, len, cookie, ret),
    fd_renumber: (from: n, to: n) => fd_renumber(s, from, to),
    fd_seek: (fd: n, offset: b, whence: n, ret: n) => fd_seek(s, fd, offset, whence, ret),
    fd_sync: (fd: n) => fd_sync(s, fd),
    fd_tell: (fd: n, ret: n) => fd_tell(s, fd, ret),
    fd_write: (fd: n, iovs: n, len: n, ret: n) => fd_write(s, fd, iovs, len, ret),
    path_create_directory: (fd: n, p: n, l: n) => path_create_directory(s, fd, p, l),
    path_filestat_get: (fd: n, flags: n, p: n, l: n, ret: n) =>
      path_filestat_get(s, fd, flags, p, l, ret),
    path_filestat_set_times: (fd: n, flags: n, p: n, l: n, atim: b, mtim: b, fst: n) =>
      path_filestat_set_times(s, fd, flags, p, l, atim, mtim, fst),
    path_link: (ofd: n, oflags: n, op: n, ol: n, nfd: n, np: n, nl: n) =>
      path_link(s, ofd, oflags, op, ol, nfd, np, nl),
    path_open: (fd: n, df: n, p: n, l: n, of: n, rb: b, ri: b, ff: n, ret: n) =>
      path_open(s, fd, df, p, l, of, rb, ri, ff, ret),
    path_readlink: (fd: n, p: n, l: n, buf: n, len: n, ret: n) =>
      path_readlink(s, fd, p, l, buf, len, ret),
    path_remove_directory: (fd: n, p: n, l: n) => path_remove_directory(s, fd, p, l),
    path_rename: (fd: n, op: n, ol: n, nfd: n, np: n, nl: n) =>
      path_rename(s, fd, op, ol, nfd, np, nl),
    path_symlink: (op: n, ol: n, fd: n, np: n, nl: n) => path_symlink(s, op, ol, fd, np, nl),
    path_unlink_file: (fd: n, p: n, l: n) => path_unlink_file(s, fd, p, l),
    poll_oneoff: (inp: n, out: n, nsubs: n, ret: n) => poll_oneoff(s, inp, out, nsubs, ret),
    proc_exit: (code: n) => proc_exit(s, code),
    proc_raise: (sig: n) => proc_raise(s, sig),
    sched_yield: () => sched_yield(s),
    random_get: (buf: n, len: n) => random_get(s, buf, len),
    sock_accept: (fd: n, flags: n, ret: n) => sock_accept(s, fd, flags, ret),
    sock_recv: (fd: n, data: n, len: n, flags: n, ret: n, roflags: n) =>
      sock_recv(s, fd, data, len, flags, ret, roflags),
    sock_send: (fd: n, data: n, len: n, flags: n, ret: n) =>
      sock_send(s, fd, data, len, flags, ret),
    sock_shutdown: (fd: n, how: n) => sock_shutdown(s, fd, how),
  };
}

const nosys = (): number => Errno.nosys;

const stubUnknown: ProxyHandler<Record<string, unknown>> = {
  get(target, key) {
    if (Object.hasOwn(target, key)) return target[key as string];
    return typeof key === 'string' ? nosys : undefined;
  },
};

export function createImports(s: WasiState): WebAssembly.Imports {
  const ns = new Proxy(preview1(s), stubUnknown) as WebAssembly.ModuleImports;
  return { wasi_snapshot_preview1: ns, wasi_unstable: ns };
}
