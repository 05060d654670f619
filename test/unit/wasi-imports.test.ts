/**
 * WASI imports called directly, against the memory of a real instance (wasi-hello, never
 * started): bounds checks, errnos, struct layouts, poll_oneoff, and a property test that no
 * argument combination makes an import throw or return something that isn't an errno.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ReadOnlyTree,
  WasiContext,
  unknownImports,
  type WasiOptions,
} from '../../host/wasi/index.ts';
import { WASI_PREVIEW1_SIGNATURES } from '../../host/wasi/signatures.ts';
import { uleb128 } from '../../lattice/index.ts';

type Import = (...args: (number | bigint)[]) => number;

const helloUrl = new URL('../fixtures/actors/dist/wasi-hello.wasm', import.meta.url);
const hello = new WebAssembly.Module(readFileSync(helloUrl));
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

const tree = ReadOnlyTree.fromEntries([
  { path: 'index.html', data: bytes('<h1>hello</h1>\n') },
  { path: 'css/site.css', data: bytes('body{}') },
  { path: 'sub/deeper/file.txt', data: bytes('deep') },
]);

const PREOPEN_FD = 3;
const ERRNO = {
  success: 0,
  badf: 8,
  exist: 20,
  fault: 21,
  ilseq: 25,
  inval: 28,
  isdir: 31,
  nametoolong: 37,
  noent: 44,
  nosys: 52,
  notdir: 54,
  notsock: 57,
  rofs: 69,
  spipe: 70,
  notcapable: 76,
} as const;

interface Bound {
  ctx: WasiContext;
  memory: WebAssembly.Memory;
  w: Record<string, Import>;
  view: () => DataView;
  /** Scratch area well inside memory, for in-bounds arguments. */
  scratch: number;
  /** Write a string at `at`; returns its byte length. */
  put: (at: number, s: string | Uint8Array) => number;
}

function bound(opts: Partial<WasiOptions> = {}): Bound {
  const ctx = new WasiContext({
    args: ['test'],
    env: { A: 'b' },
    preopens: [{ guestPath: '/site', tree }],
    ...opts,
  });
  const instance = new WebAssembly.Instance(hello, ctx.imports);
  ctx.bind(instance);
  const memory = instance.exports['memory'] as WebAssembly.Memory;
  const w = ctx.imports['wasi_snapshot_preview1'] as unknown as Record<string, Import>;
  const put = (at: number, s: string | Uint8Array): number => {
    const b = typeof s === 'string' ? bytes(s) : s;
    new Uint8Array(memory.buffer).set(b, at);
    return b.length;
  };
  return { ctx, memory, w, view: () => new DataView(memory.buffer), scratch: 0x8000, put };
}

/** Open `path` under the preopen read-only; returns the new fd. */
function open(b: Bound, path: string, oflags = 0): number {
  const len = b.put(b.scratch, path);
  const rights = (1n << 1n) | (1n << 2n) | (1n << 5n) | (1n << 14n) | (1n << 21n) | (1n << 13n);
  const errno = b.w['path_open']!(
    PREOPEN_FD,
    1,
    b.scratch,
    len,
    oflags,
    rights,
    rights,
    0,
    b.scratch + 512,
  );
  expect(errno).toBe(0);
  return b.view().getUint32(b.scratch + 512, true);
}

function pathOpenErrno(
  b: Bound,
  path: string | Uint8Array,
  oflags = 0,
  rights = 1n << 1n,
  fd = PREOPEN_FD,
): number {
  const len = b.put(b.scratch, path);
  return b.w['path_open']!(fd, 1, b.scratch, len, oflags, rights, 0n, 0, b.scratch + 512);
}

describe('import object', () => {
  it('has all 46 preview1 functions under both module names', () => {
    const names = Object.keys(WASI_PREVIEW1_SIGNATURES);
    expect(names).toHaveLength(46);
    const ctx = new WasiContext({ args: [], env: {} });
    for (const mod of ['wasi_snapshot_preview1', 'wasi_unstable']) {
      const ns = ctx.imports[mod] as Record<string, unknown>;
      const missing = names.filter((name) => typeof ns[name] !== 'function');
      expect(missing).toEqual([]);
    }
  });

  it('links modules importing WASI names preview1 lacks, which then get nosys', () => {
    const ctx = new WasiContext({ args: [], env: {} });
    const mod = new WebAssembly.Module(
      moduleBytes([['wasi_snapshot_preview1', 'path_open2']], { start: false }),
    );
    expect(() => new WebAssembly.Instance(mod, ctx.imports)).not.toThrow();
    const ns = ctx.imports['wasi_snapshot_preview1'] as Record<string, Import>;
    expect(ns['path_open2']!()).toBe(ERRNO.nosys);
  });
});

describe('guest memory', () => {
  it('answers fault (21) for out-of-bounds pointers and never throws', () => {
    const b = bound({ stdin: bytes('input') });
    const { w } = b;
    const size = b.memory.buffer.byteLength;
    const HUGE = 0xfffffff0 | 0;
    const fileFd = open(b, 'index.html');
    // An iovec pointing outside memory, inside memory.
    b.view().setUint32(b.scratch + 64, size - 4, true);
    b.view().setUint32(b.scratch + 68, 8, true);
    const badIov = b.scratch + 64;
    const calls: [string, (number | bigint)[]][] = [
      ['args_sizes_get', [HUGE, 0]],
      ['args_sizes_get', [0, size - 2]],
      ['args_get', [HUGE, 0]],
      ['args_get', [0, size - 1]],
      ['environ_sizes_get', [size, 0]],
      ['environ_get', [0, HUGE]],
      ['clock_res_get', [1, size - 4]],
      ['clock_time_get', [0, 0n, HUGE]],
      ['fd_write', [1, HUGE, 1, 0]],
      ['fd_write', [1, badIov, 1, 0]],
      ['fd_write', [1, 0, 0, HUGE]],
      ['fd_write', [2, badIov, 1, 0]],
      ['fd_read', [0, HUGE, 1, 0]],
      ['fd_read', [0, badIov, 1, 0]],
      ['fd_read', [fileFd, badIov, 1, 0]],
      ['fd_pread', [fileFd, badIov, 1, 0n, 0]],
      ['fd_fdstat_get', [1, size - 8]],
      ['fd_filestat_get', [1, HUGE]],
      ['fd_filestat_get', [fileFd, size - 63]],
      ['fd_prestat_get', [PREOPEN_FD, HUGE]],
      ['fd_prestat_dir_name', [PREOPEN_FD, size - 2, 100]],
      ['fd_readdir', [PREOPEN_FD, HUGE, 100, 0n, 0]],
      ['fd_readdir', [PREOPEN_FD, 0, 100, 0n, size]],
      ['fd_seek', [fileFd, 0n, 0, HUGE]],
      ['fd_tell', [fileFd, size - 7]],
      ['path_open', [PREOPEN_FD, 0, HUGE, 5, 0, 0n, 0n, 0, 0]],
      ['path_open', [PREOPEN_FD, 0, 0, 0, 0, 0n, 0n, 0, HUGE]],
      ['path_filestat_get', [PREOPEN_FD, 0, size - 2, 10, 0]],
      ['path_readlink', [PREOPEN_FD, HUGE, 1, 0, 10, 0]],
      ['path_unlink_file', [PREOPEN_FD, HUGE, 3]],
      ['path_symlink', [HUGE, 3, PREOPEN_FD, 0, 1]],
      ['poll_oneoff', [HUGE, 0, 1, 0]],
      ['poll_oneoff', [0, size - 16, 1, 0]],
      ['random_get', [HUGE, 16]],
      ['random_get', [size - 1, -1]],
    ];
    const results = calls.map(
      ([name, args]) => `${name}(${args.join(', ')}) = ${w[name]!(...args)}`,
    );
    expect(results).toEqual(
      calls.map(([name, args]) => `${name}(${args.join(', ')}) = ${ERRNO.fault}`),
    );
    // The fault happened before anything was consumed.
    const iov = b.scratch + 128;
    b.view().setUint32(iov, b.scratch + 256, true);
    b.view().setUint32(iov + 4, 100, true);
    expect(w['fd_read']!(0, iov, 1, b.scratch + 200)).toBe(0);
    expect(b.view().getUint32(b.scratch + 200, true)).toBe(5);
  });

  it('sees memory growth', () => {
    const b = bound();
    const oldSize = b.memory.buffer.byteLength;
    expect(b.w['random_get']!(oldSize, 16)).toBe(ERRNO.fault);
    b.memory.grow(1);
    expect(b.w['random_get']!(oldSize, 16)).toBe(0);
  });

  it('faults every pointer before a memory is bound', () => {
    const ctx = new WasiContext({ args: ['x'], env: {} });
    const w = ctx.imports['wasi_snapshot_preview1'] as Record<string, Import>;
    expect(w['args_sizes_get']!(0, 4)).toBe(ERRNO.fault);
    expect(w['random_get']!(0, 0)).toBe(0);
  });

  it('caps the iovecs processed per call instead of walking a huge count', () => {
    const b = bound();
    new Uint8Array(b.memory.buffer).fill(0, 0, 16 * 1024); // zero-length iovecs from address 0
    const started = performance.now();
    expect(b.w['fd_write']!(1, 0, 0x7fffffff, b.scratch)).toBe(0);
    expect(b.view().getUint32(b.scratch, true)).toBe(0);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('fills large random_get requests', () => {
    const b = bound();
    const at = 0x10000;
    const len = 0x10000 + 1234;
    if (b.memory.buffer.byteLength < at + len) b.memory.grow(3);
    new Uint8Array(b.memory.buffer).fill(0, at, at + len);
    expect(b.w['random_get']!(at, len)).toBe(0);
    const out = new Uint8Array(b.memory.buffer, at, len);
    const zeros = out.reduce((n, x) => n + (x === 0 ? 1 : 0), 0);
    expect(zeros).toBeLessThan(len / 100);
    expect(out[len - 1] !== 0 || out[len - 2] !== 0 || out[len - 3] !== 0).toBe(true);
  });
});

describe('overlapping buffers', () => {
  it('reads the iovec array before copying into buffers that overlap it', () => {
    // stdin's first 8 bytes, once read into iov[0], would make iov[1] point past memory.
    const stdin = new Uint8Array(16);
    new DataView(stdin.buffer).setUint32(0, 0xfffffff0, true);
    new DataView(stdin.buffer).setUint32(4, 100, true);
    stdin.set([1, 2, 3, 4], 8);
    const b = bound({ stdin });
    const iovs = b.scratch;
    const dst = b.scratch + 64;
    b.view().setUint32(iovs, iovs + 8, true); // iov[0] covers iov[1] itself
    b.view().setUint32(iovs + 4, 8, true);
    b.view().setUint32(iovs + 8, dst, true); // iov[1]: 4 bytes at dst
    b.view().setUint32(iovs + 12, 4, true);
    expect(b.w['fd_read']!(0, iovs, 2, b.scratch + 128)).toBe(ERRNO.success);
    expect(b.view().getUint32(b.scratch + 128, true)).toBe(12);
    expect([...new Uint8Array(b.memory.buffer, dst, 4)]).toEqual([1, 2, 3, 4]);
  });
});

describe('args, environ, clocks', () => {
  it('reports sizes including one NUL per string and writes absolute pointers', () => {
    const b = bound({ args: ['prog', 'ü'], env: { K: 'v', EMPTY: '' } });
    const s = b.scratch;
    expect(b.w['args_sizes_get']!(s, s + 4)).toBe(0);
    expect(b.view().getUint32(s, true)).toBe(2);
    expect(b.view().getUint32(s + 4, true)).toBe(5 + 3);
    expect(b.w['args_get']!(s + 16, s + 64)).toBe(0);
    expect(b.view().getUint32(s + 16, true)).toBe(s + 64);
    expect(b.view().getUint32(s + 20, true)).toBe(s + 69);
    expect([...new Uint8Array(b.memory.buffer, s + 64, 8)]).toEqual([
      ...bytes('prog\0'),
      ...bytes('ü\0'),
    ]);
    expect(b.w['environ_sizes_get']!(s, s + 4)).toBe(0);
    expect(b.view().getUint32(s, true)).toBe(2);
    expect(b.view().getUint32(s + 4, true)).toBe('K=v\0EMPTY=\0'.length);
  });

  it('rejects unknown clock ids with inval and has non-zero resolutions', () => {
    const b = bound();
    expect(b.w['clock_time_get']!(4, 0n, b.scratch)).toBe(ERRNO.inval);
    expect(b.w['clock_res_get']!(-1, b.scratch)).toBe(ERRNO.inval);
    for (const id of [0, 1, 2, 3]) {
      expect(b.w['clock_res_get']!(id, b.scratch)).toBe(0);
      expect(b.view().getBigUint64(b.scratch, true)).toBeGreaterThan(0n);
      expect(b.w['clock_time_get']!(id, 1n, b.scratch)).toBe(0);
    }
  });
});

describe('fds', () => {
  it('reports stdio as a non-tty pipe: filetype unknown, no seek/tell', () => {
    const b = bound();
    for (const fd of [0, 1, 2]) {
      expect(b.w['fd_fdstat_get']!(fd, b.scratch)).toBe(0);
      expect(b.view().getUint8(b.scratch)).toBe(0);
      expect(b.view().getBigUint64(b.scratch + 8, true) & 0b100100n).toBe(0n);
      expect(b.w['fd_seek']!(fd, 0n, 1, b.scratch)).toBe(ERRNO.spipe);
      expect(b.w['fd_tell']!(fd, b.scratch)).toBe(ERRNO.spipe);
    }
  });

  it('reports preopens with full inheriting rights, and badf after the last', () => {
    const b = bound();
    expect(b.w['fd_prestat_get']!(PREOPEN_FD, b.scratch)).toBe(0);
    expect(b.view().getUint8(b.scratch)).toBe(0);
    expect(b.view().getUint32(b.scratch + 4, true)).toBe(5);
    expect(b.w['fd_prestat_dir_name']!(PREOPEN_FD, b.scratch + 16, 5)).toBe(0);
    expect(new TextDecoder().decode(new Uint8Array(b.memory.buffer, b.scratch + 16, 5))).toBe(
      '/site',
    );
    expect(b.w['fd_prestat_dir_name']!(PREOPEN_FD, b.scratch + 16, 4)).toBe(ERRNO.nametoolong);
    expect(b.w['fd_prestat_get']!(PREOPEN_FD + 1, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_prestat_get']!(1, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_fdstat_get']!(PREOPEN_FD, b.scratch)).toBe(0);
    expect(b.view().getUint8(b.scratch)).toBe(3);
    expect(b.view().getBigUint64(b.scratch + 16, true)).toBe(0x3fffffffn);
  });

  it('reads, seeks and preads files', () => {
    const b = bound();
    const fd = open(b, 'css/site.css');
    const iov = b.scratch + 64;
    b.view().setUint32(iov, b.scratch + 256, true);
    b.view().setUint32(iov + 4, 4, true);
    expect(b.w['fd_read']!(fd, iov, 1, b.scratch)).toBe(0);
    expect(b.view().getUint32(b.scratch, true)).toBe(4);
    expect(b.w['fd_tell']!(fd, b.scratch)).toBe(0);
    expect(b.view().getBigUint64(b.scratch, true)).toBe(4n);
    expect(b.w['fd_seek']!(fd, -2n, 2, b.scratch)).toBe(0);
    expect(b.view().getBigUint64(b.scratch, true)).toBe(4n);
    expect(b.w['fd_seek']!(fd, -10n, 1, b.scratch)).toBe(ERRNO.inval);
    expect(b.w['fd_seek']!(fd, 0n, 9, b.scratch)).toBe(ERRNO.inval);
    expect(b.w['fd_pread']!(fd, iov, 1, 1n, b.scratch)).toBe(0);
    expect(new TextDecoder().decode(new Uint8Array(b.memory.buffer, b.scratch + 256, 4))).toBe(
      'ody{',
    );
    expect(b.w['fd_pread']!(fd, iov, 1, 1n << 62n, b.scratch)).toBe(0);
    expect(b.view().getUint32(b.scratch, true)).toBe(0);
    expect(b.w['fd_filestat_get']!(fd, b.scratch)).toBe(0);
    expect(b.view().getUint8(b.scratch + 16)).toBe(4);
    expect(b.view().getBigUint64(b.scratch + 32, true)).toBe(6n);
    expect(b.w['fd_write']!(fd, iov, 1, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_pwrite']!(fd, iov, 1, 0n, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_read']!(PREOPEN_FD, iov, 1, b.scratch)).toBe(ERRNO.isdir);
    expect(b.w['fd_read']!(1, iov, 1, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_write']!(0, iov, 1, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_read']!(99, iov, 1, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_close']!(fd)).toBe(0);
    expect(b.w['fd_close']!(fd)).toBe(ERRNO.badf);
  });

  it('only lets rights be dropped', () => {
    const b = bound();
    const fd = open(b, 'index.html');
    expect(b.w['fd_fdstat_set_rights']!(fd, 1n << 1n, 0n)).toBe(0);
    expect(b.w['fd_fdstat_set_rights']!(fd, (1n << 1n) | (1n << 2n), 0n)).toBe(ERRNO.notcapable);
    expect(b.w['fd_seek']!(fd, 0n, 0, b.scratch)).toBe(ERRNO.notcapable);
    expect(b.w['fd_fdstat_set_rights']!(fd, 0n, 0n)).toBe(0);
    expect(b.w['fd_read']!(fd, b.scratch + 64, 0, b.scratch)).toBe(ERRNO.badf);
  });

  it('renumbers, syncs, advises and refuses socket calls', () => {
    const b = bound();
    const fd = open(b, 'index.html');
    expect(b.w['fd_renumber']!(fd, 99)).toBe(ERRNO.badf);
    expect(b.w['fd_renumber']!(fd, 2)).toBe(0);
    expect(b.w['fd_filestat_get']!(2, b.scratch)).toBe(0);
    expect(b.view().getUint8(b.scratch + 16)).toBe(4);
    expect(b.w['fd_filestat_get']!(fd, b.scratch)).toBe(ERRNO.badf);
    expect(b.w['fd_sync']!(2)).toBe(0);
    expect(b.w['fd_sync']!(1)).toBe(ERRNO.inval);
    expect(b.w['fd_datasync']!(99)).toBe(ERRNO.badf);
    expect(b.w['fd_advise']!(2, 0n, 0n, 1)).toBe(0);
    expect(b.w['fd_advise']!(2, 0n, 0n, 6)).toBe(ERRNO.inval);
    expect(b.w['fd_advise']!(1, 0n, 0n, 1)).toBe(ERRNO.spipe);
    expect(b.w['fd_allocate']!(2, 0n, 10n)).toBe(ERRNO.badf);
    expect(b.w['fd_filestat_set_times']!(2, 0n, 0n, 2)).toBe(ERRNO.rofs);
    expect(b.w['sock_accept']!(1, 0, b.scratch)).toBe(ERRNO.notsock);
    expect(b.w['sock_recv']!(0, 0, 0, 0, 0, 0)).toBe(ERRNO.notsock);
    expect(b.w['sock_send']!(99, 0, 0, 0, 0)).toBe(ERRNO.badf);
    expect(b.w['sock_shutdown']!(-1, 3)).toBe(ERRNO.badf);
    expect(b.w['proc_raise']!(15)).toBe(ERRNO.nosys);
    expect(b.w['sched_yield']!()).toBe(0);
  });
});

describe('path_open and other path calls', () => {
  it('confines paths to the directory fd', () => {
    const b = bound();
    expect(pathOpenErrno(b, '../x')).toBe(ERRNO.notcapable);
    expect(pathOpenErrno(b, 'css/../../index.html')).toBe(ERRNO.notcapable);
    expect(pathOpenErrno(b, '/index.html')).toBe(ERRNO.notcapable);
    expect(pathOpenErrno(b, 'css/../index.html')).toBe(0);
    // A subdirectory fd is a capability for that subdirectory only.
    const sub = open(b, 'sub', 2);
    expect(pathOpenErrno(b, 'deeper/file.txt', 0, 1n << 1n, sub)).toBe(0);
    expect(pathOpenErrno(b, '../index.html', 0, 1n << 1n, sub)).toBe(ERRNO.notcapable);
  });

  it('accepts ., empty components and a trailing / on directories', () => {
    const b = bound();
    const paths = ['.', './', 'css/', 'css//site.css', './css/./site.css', 'sub/deeper/.'];
    expect(paths.map((p) => [p, pathOpenErrno(b, p)])).toEqual(paths.map((p) => [p, 0]));
  });

  it('answers notdir, noent, rofs, exist, isdir, ilseq and inval where they belong', () => {
    const b = bound();
    const CREAT = 1;
    const DIRECTORY = 2;
    const EXCL = 4;
    const TRUNC = 8;
    const WRITE = 1n << 6n;
    expect(pathOpenErrno(b, 'index.html/')).toBe(ERRNO.notdir);
    expect(pathOpenErrno(b, 'index.html/x')).toBe(ERRNO.notdir);
    expect(pathOpenErrno(b, 'index.html', DIRECTORY)).toBe(ERRNO.notdir);
    expect(pathOpenErrno(b, 'missing')).toBe(ERRNO.noent);
    expect(pathOpenErrno(b, 'missing/x', CREAT)).toBe(ERRNO.noent);
    expect(pathOpenErrno(b, '')).toBe(ERRNO.noent);
    expect(pathOpenErrno(b, 'new.txt', CREAT)).toBe(ERRNO.rofs);
    expect(pathOpenErrno(b, 'index.html', TRUNC)).toBe(ERRNO.rofs);
    expect(pathOpenErrno(b, 'index.html', 0, WRITE)).toBe(ERRNO.rofs);
    expect(pathOpenErrno(b, 'index.html', CREAT | EXCL)).toBe(ERRNO.exist);
    expect(pathOpenErrno(b, 'css', 0, WRITE)).toBe(ERRNO.isdir);
    expect(pathOpenErrno(b, new Uint8Array([0x66, 0xff, 0x66]))).toBe(ERRNO.ilseq);
    expect(pathOpenErrno(b, 'a\0b')).toBe(ERRNO.inval);
    expect(pathOpenErrno(b, 'x'.repeat(300))).toBe(ERRNO.nametoolong);
    expect(pathOpenErrno(b, 'index.html', 0, 1n << 1n, 1)).toBe(ERRNO.notdir);
    expect(pathOpenErrno(b, 'index.html', 0, 1n << 1n, 42)).toBe(ERRNO.badf);
    expect(pathOpenErrno(b, 'index.html', 0x10)).toBe(ERRNO.inval);
  });

  it('answers rofs for every change, after the usual lookup errors', () => {
    const b = bound();
    const { w, scratch: s } = b;
    const at = (p: string, off = 0): [number, number] => [s + off, b.put(s + off, p)];
    expect(w['path_create_directory']!(PREOPEN_FD, ...at('newdir'))).toBe(ERRNO.rofs);
    expect(w['path_create_directory']!(PREOPEN_FD, ...at('css'))).toBe(ERRNO.exist);
    expect(w['path_remove_directory']!(PREOPEN_FD, ...at('css'))).toBe(ERRNO.rofs);
    expect(w['path_remove_directory']!(PREOPEN_FD, ...at('index.html'))).toBe(ERRNO.notdir);
    expect(w['path_unlink_file']!(PREOPEN_FD, ...at('index.html'))).toBe(ERRNO.rofs);
    expect(w['path_unlink_file']!(PREOPEN_FD, ...at('css'))).toBe(ERRNO.isdir);
    expect(w['path_unlink_file']!(PREOPEN_FD, ...at('nope'))).toBe(ERRNO.noent);
    expect(w['path_unlink_file']!(PREOPEN_FD, ...at('../x'))).toBe(ERRNO.notcapable);
    expect(w['path_rename']!(PREOPEN_FD, ...at('index.html'), PREOPEN_FD, ...at('b', 100))).toBe(
      ERRNO.rofs,
    );
    expect(w['path_link']!(PREOPEN_FD, 0, ...at('index.html'), PREOPEN_FD, ...at('css', 100))).toBe(
      ERRNO.exist,
    );
    expect(w['path_symlink']!(...at('index.html'), PREOPEN_FD, ...at('ln', 100))).toBe(ERRNO.rofs);
    expect(w['path_filestat_set_times']!(PREOPEN_FD, 0, ...at('index.html'), 0n, 0n, 2)).toBe(
      ERRNO.rofs,
    );
    expect(w['path_readlink']!(PREOPEN_FD, ...at('index.html'), s + 100, 10, s + 200)).toBe(
      ERRNO.inval,
    );
    expect(w['path_filestat_get']!(PREOPEN_FD, 0, ...at('sub/deeper'), s + 100)).toBe(0);
    expect(b.view().getUint8(s + 116)).toBe(3);
  });
});

describe('fd_readdir', () => {
  interface Dirent {
    next: bigint;
    name: string;
    type: number;
  }
  function parse(buf: Uint8Array, used: number): { entries: Dirent[]; partial: boolean } {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const entries: Dirent[] = [];
    let at = 0;
    while (at + 24 <= used) {
      const len = view.getUint32(at + 16, true);
      if (at + 24 + len > used) return { entries, partial: true };
      entries.push({
        next: view.getBigUint64(at, true),
        type: view.getUint8(at + 20),
        name: new TextDecoder().decode(buf.subarray(at + 24, at + 24 + len)),
      });
      at += 24 + len;
    }
    return { entries, partial: at < used };
  }

  it('lists ., .. and the children, with cookies that resume after each entry', () => {
    const b = bound();
    const s = b.scratch;
    expect(b.w['fd_readdir']!(PREOPEN_FD, s, 1024, 0n, s + 2048)).toBe(0);
    const used = b.view().getUint32(s + 2048, true);
    expect(used).toBeLessThan(1024);
    const { entries } = parse(new Uint8Array(b.memory.buffer, s, 1024), used);
    expect(entries.map((e) => e.name)).toEqual(['.', '..', 'css', 'index.html', 'sub']);
    expect(entries.map((e) => e.type)).toEqual([3, 3, 3, 4, 3]);
    expect(b.w['fd_readdir']!(PREOPEN_FD, s, 1024, entries[2]!.next, s + 2048)).toBe(0);
    const rest = parse(
      new Uint8Array(b.memory.buffer, s, 1024),
      b.view().getUint32(s + 2048, true),
    );
    expect(rest.entries.map((e) => e.name)).toEqual(['index.html', 'sub']);
    expect(b.w['fd_readdir']!(PREOPEN_FD, s, 1024, 99n, s + 2048)).toBe(0);
    expect(b.view().getUint32(s + 2048, true)).toBe(0);
  });

  it('fills a small buffer completely, cutting the last entry', () => {
    const b = bound();
    const s = b.scratch;
    expect(b.w['fd_readdir']!(PREOPEN_FD, s, 60, 0n, s + 2048)).toBe(0);
    expect(b.view().getUint32(s + 2048, true)).toBe(60);
    const { entries, partial } = parse(new Uint8Array(b.memory.buffer, s, 60), 60);
    expect(entries.map((e) => e.name)).toEqual(['.', '..']);
    expect(partial).toBe(true);
    expect(b.w['fd_readdir']!(1, s, 60, 0n, s + 2048)).toBe(ERRNO.notdir);
  });
});

describe('poll_oneoff', () => {
  const SUB = 48;
  function clockSub(
    v: DataView,
    at: number,
    userdata: bigint,
    id: number,
    timeoutNs: bigint,
    abs = false,
  ): void {
    new Uint8Array(v.buffer, at, SUB).fill(0);
    v.setBigUint64(at, userdata, true);
    v.setUint8(at + 8, 0);
    v.setUint32(at + 16, id, true);
    v.setBigUint64(at + 24, timeoutNs, true);
    v.setUint16(at + 40, abs ? 1 : 0, true);
  }
  function fdSub(v: DataView, at: number, userdata: bigint, type: 1 | 2, fd: number): void {
    new Uint8Array(v.buffer, at, SUB).fill(0);
    v.setBigUint64(at, userdata, true);
    v.setUint8(at + 8, type);
    v.setUint32(at + 16, fd, true);
  }

  it('rejects zero subscriptions', () => {
    const b = bound();
    expect(b.w['poll_oneoff']!(b.scratch, b.scratch + 512, 0, b.scratch + 1024)).toBe(ERRNO.inval);
  });

  it('blocks for a relative clock timeout', () => {
    const b = bound();
    const s = b.scratch;
    clockSub(b.view(), s, 7n, 1, 30_000_000n);
    const started = performance.now();
    expect(b.w['poll_oneoff']!(s, s + 512, 1, s + 1024)).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(30);
    expect(b.view().getUint32(s + 1024, true)).toBe(1);
    expect(b.view().getBigUint64(s + 512, true)).toBe(7n);
    expect(b.view().getUint16(s + 520, true)).toBe(0);
    expect(b.view().getUint8(s + 522)).toBe(0);
  });

  it('blocks until an absolute realtime deadline', () => {
    const b = bound();
    const s = b.scratch;
    const deadline = BigInt(Date.now() + 40) * 1_000_000n;
    clockSub(b.view(), s, 1n, 0, deadline, true);
    expect(b.w['poll_oneoff']!(s, s + 512, 1, s + 1024)).toBe(0);
    expect(BigInt(Date.now()) * 1_000_000n).toBeGreaterThanOrEqual(deadline - 1_000_000n);
  });

  it('returns fd readiness at once, with per-subscription errors in the events', () => {
    const b = bound({ stdin: bytes('12345') });
    const s = b.scratch;
    const v = b.view();
    clockSub(v, s, 1n, 1, 10_000_000_000n); // 10 s: must not be waited for
    fdSub(v, s + SUB, 2n, 1, 0);
    fdSub(v, s + 2 * SUB, 3n, 2, 1);
    fdSub(v, s + 3 * SUB, 4n, 1, 99);
    clockSub(v, s + 4 * SUB, 5n, 2, 1n); // CPU-time clocks can't be waited on
    const started = performance.now();
    expect(b.w['poll_oneoff']!(s, s + 1024, 5, s + 2048)).toBe(0);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(v.getUint32(s + 2048, true)).toBe(4);
    const events = [0, 1, 2, 3].map((i) => ({
      userdata: v.getBigUint64(s + 1024 + i * 32, true),
      error: v.getUint16(s + 1024 + i * 32 + 8, true),
      type: v.getUint8(s + 1024 + i * 32 + 10),
      nbytes: v.getBigUint64(s + 1024 + i * 32 + 16, true),
    }));
    expect(events).toEqual([
      { userdata: 2n, error: 0, type: 1, nbytes: 5n },
      { userdata: 3n, error: 0, type: 2, nbytes: BigInt(64 * 1024 * 1024) },
      { userdata: 4n, error: ERRNO.badf, type: 1, nbytes: 0n },
      { userdata: 5n, error: ERRNO.inval, type: 0, nbytes: 0n },
    ]);
  });

  it('treats relative timeouts of 0 and 1 ns as immediate', () => {
    const b = bound();
    const s = b.scratch;
    clockSub(b.view(), s, 1n, 0, 0n);
    clockSub(b.view(), s + SUB, 2n, 1, 1n);
    expect(b.w['poll_oneoff']!(s, s + 512, 2, s + 1024)).toBe(0);
    expect(b.view().getUint32(s + 1024, true)).toBe(2);
  });
});

const str = (s: string): number[] => [...uleb128(s.length), ...bytes(s)];
const vec = (items: number[][]): number[] => [...uleb128(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb128(body.length), ...body];

// A hand-assembled module: `imports` as functions of type () → (), a 1-page memory, and an
// exported function `hello`; `_start` only if asked.
function moduleBytes(imports: [string, string][], opts: { start: boolean }): Uint8Array {
  const funcs = opts.start ? 2 : 1;
  const exports = [
    [...str('memory'), 0x02, 0],
    [...str('hello'), 0x00, imports.length],
  ];
  if (opts.start) exports.push([...str('_start'), 0x00, imports.length + 1]);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, 0, 0]])),
    ...section(2, vec(imports.map(([m, n]) => [...str(m), ...str(n), 0x00, 0]))),
    ...section(3, vec(Array.from({ length: funcs }, () => [0]))),
    ...section(5, vec([[0x00, 1]])),
    ...section(7, vec(exports)),
    ...section(10, vec(Array.from({ length: funcs }, () => [2, 0, 0x0b]))),
  ]);
}

describe('module checks', () => {
  it('names the exports of a module without _start', () => {
    const mod = new WebAssembly.Module(
      moduleBytes([['wasi_snapshot_preview1', 'fd_write']], { start: false }),
    );
    const ctx = new WasiContext({ args: [], env: {} });
    const instance = new WebAssembly.Instance(mod, ctx.imports);
    expect(() => ctx.start(instance)).toThrow(/no _start export.*memory, hello/);
  });

  it('runs a module whose _start just returns', () => {
    const mod = new WebAssembly.Module(moduleBytes([], { start: true }));
    const ctx = new WasiContext({ args: [], env: {} });
    expect(ctx.start(new WebAssembly.Instance(mod, ctx.imports))).toBe(0);
  });

  it('lists imports from modules other than WASI', () => {
    const mod = new WebAssembly.Module(
      moduleBytes(
        [
          ['wasi_snapshot_preview1', 'fd_write'],
          ['env', 'foo'],
          ['wasi_unstable', 'fd_read'],
          ['env', 'bar'],
        ],
        { start: true },
      ),
    );
    expect(unknownImports(mod)).toEqual(['env.foo', 'env.bar']);
    expect(unknownImports(hello)).toEqual([]);
  });
});

describe('worker threads', () => {
  it('runs guests, sleep included, inside a Worker', async () => {
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { readFileSync } = require('node:fs');
      import(workerData.index).then(({ WasiContext }) => {
        const mod = new WebAssembly.Module(readFileSync(workerData.wasm));
        const ctx = new WasiContext({ args: ['wasi-clock', 'sleep', '20'], env: {} });
        const started = performance.now();
        const code = ctx.start(new WebAssembly.Instance(mod, ctx.imports));
        const ms = performance.now() - started;
        parentPort.postMessage({ code, out: new TextDecoder().decode(ctx.stdout()), ms });
      }).catch((err) => parentPort.postMessage({ error: String((err && err.stack) || err) }));
    `;
    const worker = new Worker(source, {
      eval: true,
      workerData: {
        index: new URL('../../host/wasi/index.ts', import.meta.url).href,
        wasm: fileURLToPath(new URL('../fixtures/actors/dist/wasi-clock.wasm', import.meta.url)),
      },
    });
    try {
      const [msg] = (await once(worker, 'message')) as [
        { code: number; out: string; ms: number; error?: string },
      ];
      expect(msg.error).toBeUndefined();
      expect(msg.code).toBe(0);
      expect(msg.out).toMatch(/^slept_ns=\d+\n$/);
      expect(msg.ms).toBeGreaterThanOrEqual(20);
    } finally {
      await worker.terminate();
    }
  });
});

const isErrno = (x: unknown): boolean =>
  Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 76;

describe('property: imports never throw and always return an errno', () => {
  it('holds for random arguments of the right types', () => {
    const b = bound({ stdin: bytes('some input'), stdoutLimitBytes: 1 << 30 });
    const size = b.memory.buffer.byteLength;
    const i32 = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      fc.integer({ min: 0, max: size + 64 }),
      fc.integer({ min: -2, max: 8 }),
    );
    const i64 = fc.oneof(
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.bigInt({ min: -2n, max: 400n }),
    );
    const names = Object.keys(WASI_PREVIEW1_SIGNATURES).filter((n) => n !== 'proc_exit');
    const call = fc
      .constantFrom(...names)
      .chain((name) =>
        fc.tuple(
          fc.constant(name),
          fc.tuple(...WASI_PREVIEW1_SIGNATURES[name]!.params.map((p) => (p === 'i32' ? i32 : i64))),
        ),
      );
    fc.assert(
      fc.property(call, ([name, args]) => {
        if (name === 'poll_oneoff') {
          // Subscriptions come from memory; zero them so none is a long clock wait (zeroed
          // subscriptions are realtime clocks with timeout 0: immediate).
          const inPtr = (args[0] as number) >>> 0;
          const end = inPtr + ((args[2] as number) >>> 0) * 48;
          if (end <= size) new Uint8Array(b.memory.buffer).fill(0, inPtr, end);
        }
        expect(b.w[name]!(...args)).toSatisfy(isErrno);
      }),
      { numRuns: 5_000 },
    );
  });
});
