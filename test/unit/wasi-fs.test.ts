/**
 * Writable mounts: `MemoryTree` and `HostDir`, driven by test/fixtures/actors/wasi-fsops.c (the
 * same program against both) and by direct import calls; escapes from a `HostDir` are each
 * refused with nothing outside it touched. Host directories live under `os.tmpdir()`.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HostDir,
  MemoryTree,
  ReadOnlyTree,
  WasiContext,
  type WasiPreopen,
  type WasiTree,
} from '../../host/wasi/index.ts';
import { bytes, loadFixture, text } from '../helpers/wasm-fixtures.ts';

const load = loadFixture;

interface Run {
  code: number;
  out: string;
  lines: string[];
}

function fsops(preopens: WasiPreopen[], ...args: string[]): Run {
  const ctx = new WasiContext({ args: ['wasi-fsops', ...args], env: {}, preopens });
  const code = ctx.start(new WebAssembly.Instance(load('wasi-fsops'), ctx.imports));
  const out = text(ctx.stdout());
  return { code, out, lines: out.split('\n').filter((l) => l !== '') };
}

/** `op` commands against one mount at /data: the printed answer. */
function op(tree: WasiTree, ...args: string[]): string {
  return fsops([{ guestPath: '/data', tree }], ...args).out.trim();
}

// wasi-libc's errno values are WASI's.
const E = {
  acces: 2,
  exist: 20,
  ilseq: 25,
  inval: 28,
  loop: 32,
  noent: 44,
  nospc: 51,
  notdir: 54,
  rofs: 69,
  xdev: 75,
  notcapable: 76,
} as const;

const LS_COMMON = [
  'ls d dir 0',
  'ls d/b.txt file 6',
  'ls d/chain link 0',
  'ls d/dang link 0',
  'ls d/e1 dir 0',
  'ls d/e1/sub dir 0',
  'ls d/loop1 link 0',
  'ls d/loop2 link 0',
  'ls d/sd link 0',
  'ls d/self link 0',
  'ls d/sub dir 0',
  'ls d/sub/f file 1',
  'ls d/target.txt file 0',
];
/** A MemoryTree keeps the escaping links the guest made (refused when followed); a HostDir
 *  refuses to make them. */
const LS_MEMORY = [
  ...LS_COMMON,
  'ls d/abs link 0',
  'ls d/up link 0',
  'ls d/updir link 0',
].toSorted();

const oks = (r: Run): string[] => r.lines.filter((l) => l.startsWith('ok '));

describe('MemoryTree', () => {
  it('passes the wasi-fsops suite', () => {
    const r = fsops(
      [
        { guestPath: '/data', tree: MemoryTree.empty() },
        { guestPath: '/other', tree: MemoryTree.empty() },
      ],
      'suite',
      '/data',
      '/other',
    );
    expect(r.lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(r.lines.at(-1)).toBe('done failures=0');
    expect(r.code).toBe(0);
    expect(oks(r).length).toBeGreaterThan(100);
    expect(r.lines.filter((l) => l.startsWith('ls '))).toEqual(LS_MEMORY);
  });

  it('lists 1,000 files while some are deleted between readdir calls, skipping no survivor', () => {
    const r = fsops([{ guestPath: '/data', tree: MemoryTree.empty() }], 'churn', '/data', '1000');
    expect(r.out).toBe('churn bad=0 deleted=240 dots=2 left=760\n');
    expect(r.code).toBe(0);
  });

  it('is shared by the contexts it is mounted in, and read back with toEntries', () => {
    const tree = MemoryTree.empty();
    expect(op(tree, 'mkdir', '/data/dir')).toBe('ok');
    expect(op(tree, 'write', '/data/dir/f.txt', 'from the first run')).toBe('ok');
    expect(op(tree, 'symlink', 'dir/f.txt', '/data/link')).toBe('ok');
    expect(op(tree, 'cat', '/data/link')).toBe('ok from the first run');
    expect(tree.toEntries()).toEqual([
      { path: 'dir', dir: true },
      { path: 'link', symlink: 'dir/f.txt' },
      { path: 'dir/f.txt', data: bytes('from the first run') },
    ]);
    expect(tree.usedBytes).toBe(18);
    const copy = MemoryTree.fromEntries(tree.toEntries());
    expect(op(copy, 'cat', '/data/link')).toBe('ok from the first run');
  });

  it('copies the bytes it is built from', () => {
    const data = bytes('original');
    const tree = MemoryTree.fromEntries([
      { path: 'a/b.txt', data },
      { path: 'empty', dir: true },
    ]);
    data.set(bytes('CHANGED!'));
    expect(op(tree, 'cat', '/data/a/b.txt')).toBe('ok original');
    expect(op(tree, 'stat', '/data/empty')).toBe('ok size=0 type=dir');
  });

  it('refuses following links placed outside the tree', () => {
    const tree = MemoryTree.fromEntries([
      { path: 'sub/secret', data: bytes('inside') },
      { path: 'abs', symlink: '/etc/passwd' },
      { path: 'sub/up', symlink: '../../outside' },
      { path: 'c1', symlink: 'sub/c2' },
      { path: 'sub/c2', symlink: 'up' },
      { path: 'l1', symlink: 'l2' },
      { path: 'l2', symlink: 'l1' },
      { path: 'ok', symlink: 'sub/../sub/secret' },
    ]);
    expect(op(tree, 'cat', '/data/abs')).toBe(`errno=${E.notcapable}`);
    expect(op(tree, 'cat', '/data/sub/up')).toBe(`errno=${E.notcapable}`);
    expect(op(tree, 'cat', '/data/c1')).toBe(`errno=${E.notcapable}`);
    expect(op(tree, 'cat', '/data/l1')).toBe(`errno=${E.loop}`);
    expect(op(tree, 'cat', '/data/ok')).toBe('ok inside');
    expect(op(tree, 'readlink', '/data/abs')).toBe('ok /etc/passwd');
    expect(op(tree, 'lstat', '/data/abs')).toBe('ok size=11 type=link');
  });

  it('answers nospc past maxBytes and maxNodes, and gives back the bytes of removed files', () => {
    const tree = MemoryTree.empty({ maxBytes: 10, maxNodes: 4 });
    expect(op(tree, 'write', '/data/a', '0123456789')).toBe('ok');
    // The file is made, the byte isn't written.
    expect(op(tree, 'write', '/data/b', 'x')).toBe(`errno=${E.nospc}`);
    expect(op(tree, 'stat', '/data/b')).toBe('ok size=0 type=file');
    expect(op(tree, 'mkdir', '/data/d')).toBe('ok');
    expect(op(tree, 'mkdir', '/data/e')).toBe(`errno=${E.nospc}`);
    expect(tree.usedBytes).toBe(10);
    expect(op(tree, 'unlink', '/data/a')).toBe('ok');
    expect(tree.usedBytes).toBe(0);
    expect(op(tree, 'write', '/data/b', 'abc')).toBe('ok');
    expect(() =>
      MemoryTree.fromEntries([{ path: 'x', data: new Uint8Array(11) }], { maxBytes: 10 }),
    ).toThrow(RangeError);
    expect(() => MemoryTree.empty({ maxBytes: -1 })).toThrow(TypeError);
    expect(() => MemoryTree.fromEntries([{ path: 'l', symlink: '' }])).toThrow(TypeError);
  });

  it('keeps answering rofs on a ReadOnlyTree mounted beside it, and xdev between mounts', () => {
    const ro = ReadOnlyTree.fromEntries([{ path: 'f', data: bytes('ro') }]);
    const mem = MemoryTree.fromEntries([{ path: 'g', data: bytes('mem') }]);
    const other = MemoryTree.empty();
    const preopens = [
      { guestPath: '/ro', tree: ro },
      { guestPath: '/mem', tree: mem },
      { guestPath: '/other', tree: other },
    ];
    const run = (...args: string[]): string => fsops(preopens, ...args).out.trim();
    expect(run('write', '/ro/new', 'x')).toBe(`errno=${E.rofs}`);
    expect(run('rename', '/ro/f', '/mem/f')).toBe(`errno=${E.rofs}`);
    expect(run('link', '/mem/g', '/other/g')).toBe(`errno=${E.xdev}`);
    expect(run('rename', '/mem/g', '/other/g')).toBe(`errno=${E.xdev}`);
    expect(run('link', '/mem/g', '/mem/h')).toBe('ok');
  });
});

/** Everything under `root` except `skip`, by lstat, with file contents: to compare before/after. */
function inventory(root: string, skip: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).toSorted()) {
      const path = join(dir, name);
      if (path === skip) continue;
      const st = lstatSync(path, { bigint: true });
      let detail = `${st.mode} ${st.mtimeNs} ${st.nlink}`;
      if (st.isSymbolicLink()) detail += ` -> ${readlinkSync(path)}`;
      else if (st.isFile()) detail += ` ${readFileSync(path, 'latin1')}`;
      out.push(`${path.slice(root.length)} ${detail}`);
      if (st.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

describe('HostDir', () => {
  let parent: string;
  let inside: string;

  beforeEach(() => {
    parent = mkdtempSync(join(tmpdir(), 'weft-hostdir-'));
    inside = join(parent, 'in');
    mkdirSync(inside);
    writeFileSync(join(parent, 'outside'), 'SECRET');
    mkdirSync(join(parent, 'outside-dir'));
    writeFileSync(join(parent, 'outside-dir', 'x'), 'also secret');
  });

  afterEach(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  it('passes the wasi-fsops suite, as a MemoryTree does', () => {
    const r = fsops(
      [
        { guestPath: '/data', tree: HostDir.open(inside) },
        { guestPath: '/other', tree: MemoryTree.empty() },
      ],
      'suite',
      '/data',
      '/other',
    );
    expect(r.lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(r.lines.at(-1)).toBe('done failures=0');
    expect(r.lines.filter((l) => l.startsWith('ls '))).toEqual(LS_COMMON);
    const memory = fsops(
      [
        { guestPath: '/data', tree: MemoryTree.empty() },
        { guestPath: '/other', tree: MemoryTree.empty() },
      ],
      'suite',
      '/data',
      '/other',
    );
    expect(oks(r)).toEqual(oks(memory));
    // The changes are real.
    expect(readFileSync(join(inside, 'd', 'b.txt'), 'utf8')).toBe('LINKED');
    expect(readlinkSync(join(inside, 'd', 'sd'))).toBe('sub');
    expect(lstatSync(join(inside, 'd', 'sub')).nlink).toBe(2);
  });

  it('lists 1,000 files while some are deleted between readdir calls, skipping no survivor', () => {
    const r = fsops([{ guestPath: '/data', tree: HostDir.open(inside) }], 'churn', '/data', '1000');
    expect(r.out).toBe('churn bad=0 deleted=240 dots=2 left=760\n');
    expect(readdirSync(join(inside, 'churn'))).toHaveLength(760);
  });

  it('refuses every escape and touches nothing outside', () => {
    writeFileSync(join(inside, 'file'), 'inside');
    mkdirSync(join(inside, 'sub'));
    symlinkSync('/etc/passwd', join(inside, 'abs'));
    symlinkSync(join(parent, 'outside'), join(inside, 'abs-own'));
    symlinkSync('../../outside', join(inside, 'sub', 'a')); // climbs to `parent`
    symlinkSync('../outside', join(inside, 'rel'));
    symlinkSync('sub/c2', join(inside, 'c1'));
    symlinkSync('c3', join(inside, 'sub', 'c2'));
    symlinkSync('../rel', join(inside, 'sub', 'c3')); // a chain ending outside
    symlinkSync('l2', join(inside, 'l1'));
    symlinkSync('l1', join(inside, 'l2'));
    symlinkSync('..', join(inside, 'updir'));
    symlinkSync(Buffer.from([0x66, 0xff]), join(inside, 'badutf8'));
    const before = inventory(parent, inside);
    const insideBefore = inventory(inside, '');

    const dir = HostDir.open(inside);
    const refused = (args: string[], errno: number = E.notcapable): void => {
      expect([args.join(' '), op(dir, ...args)]).toEqual([args.join(' '), `errno=${errno}`]);
    };
    refused(['cat', '/data/../outside']);
    refused(['cat', '/data/sub/../../outside']);
    refused(['cat', '/data/abs']);
    refused(['cat', '/data/abs-own']);
    refused(['cat', '/data/sub/a']);
    refused(['cat', '/data/rel']);
    refused(['cat', '/data/c1']);
    refused(['cat', '/data/l1'], E.loop);
    refused(['cat', '/data/badutf8'], E.ilseq);
    refused(['cat', '/data/updir/outside']);
    refused(['ls', '/data/updir']);
    refused(['stat', '/data/abs']);
    refused(['write', '/data/abs-own', 'pwned']);
    refused(['write', '/data/updir/outside', 'pwned']);
    refused(['write', '/data/../new', 'pwned']);
    refused(['mkdir', '/data/../newdir']);
    refused(['mkdir', '/data/updir/newdir']);
    refused(['unlink', '/data/../outside']);
    refused(['unlink', '/data/updir/outside']);
    refused(['rmdir', '/data/updir/outside-dir']);
    refused(['rename', '/data/file', '/data/../moved']);
    refused(['rename', '/data/../outside', '/data/stolen']);
    refused(['rename', '/data/updir/outside', '/data/stolen']);
    refused(['link', '/data/../outside', '/data/hard']);
    refused(['link', '/data/updir/outside', '/data/hard']);
    refused(['link', '/data/file', '/data/../hard']);
    refused(['utime', '/data/abs-own']);
    refused(['symlink', '/etc/passwd', '/data/newabs']);
    refused(['symlink', '../../x', '/data/sub/newup']);
    refused(['symlink', 'x', '/data/../newlink']);
    // Links that are refused when followed can still be read and removed.
    expect(op(dir, 'readlink', '/data/abs')).toBe('ok /etc/passwd');
    expect(op(dir, 'lstat', '/data/abs')).toBe('ok size=11 type=link');
    expect(op(dir, 'cat', '/data/sub/../file')).toBe('ok inside');

    expect(inventory(parent, inside)).toEqual(before);
    expect(inventory(inside, '')).toEqual(insideBefore);
    expect(existsSync(join(parent, 'new'))).toBe(false);
  });

  it('answers rofs to every change on a read-only mapping', () => {
    writeFileSync(join(inside, 'file'), 'inside');
    mkdirSync(join(inside, 'sub'));
    const before = inventory(parent, '');
    const dir = HostDir.open(inside, { readOnly: true });
    expect(op(dir, 'cat', '/data/file')).toBe('ok inside');
    for (const args of [
      ['write', '/data/file', 'x'],
      ['write', '/data/new', 'x'],
      ['mkdir', '/data/newdir'],
      ['rmdir', '/data/sub'],
      ['unlink', '/data/file'],
      ['rename', '/data/file', '/data/moved'],
      ['link', '/data/file', '/data/hard'],
      ['symlink', 'file', '/data/link'],
      ['utime', '/data/file'],
    ]) {
      expect([args.join(' '), op(dir, ...args)]).toEqual([args.join(' '), `errno=${E.rofs}`]);
    }
    expect(op(dir, 'mkdir', '/data/sub')).toBe(`errno=${E.exist}`);
    expect(inventory(parent, '')).toEqual(before);
  });

  it('refuses to open a file swapped for a link or another file after the lookup', () => {
    writeFileSync(join(inside, 'f'), 'inside');
    writeFileSync(join(inside, 'g'), 'other');
    const dir = HostDir.open(inside);
    // Look up, then change the file under the node before it is opened.
    const node = dir.root.lookup('f');
    expect(node?.kind).toBe('file');
    unlinkSync(join(inside, 'f'));
    symlinkSync(join(parent, 'outside'), join(inside, 'f'));
    expect(() =>
      (node as { open: (r: boolean, w: boolean, t: boolean) => unknown }).open(true, false, true),
    ).toThrow(expect.objectContaining({ code: 'ELOOP' }) as Error);
    const node2 = dir.root.lookup('g') as { open: (r: boolean, w: boolean, t: boolean) => unknown };
    // The old file lives on under another name, so the new one can't reuse its inode number.
    renameSync(join(inside, 'g'), join(inside, 'g-old'));
    writeFileSync(join(inside, 'g'), 'replaced');
    expect(() => node2.open(true, true, true)).toThrow(
      expect.objectContaining({ errno: E.notcapable }) as Error,
    );
    // Truncation waits for the checks: nothing was lost.
    expect(readFileSync(join(inside, 'g'), 'utf8')).toBe('replaced');
    expect(readFileSync(join(parent, 'outside'), 'utf8')).toBe('SECRET');
  });

  it('hard-links only inside, and only within one mapping', () => {
    writeFileSync(join(inside, 'file'), 'inside');
    const other = join(parent, 'other');
    mkdirSync(other);
    const preopens = [
      { guestPath: '/data', tree: HostDir.open(inside) },
      { guestPath: '/other', tree: HostDir.open(other) },
    ];
    const run = (...args: string[]): string => fsops(preopens, ...args).out.trim();
    expect(run('link', '/data/file', '/other/file')).toBe(`errno=${E.xdev}`);
    expect(run('rename', '/data/file', '/other/file')).toBe(`errno=${E.xdev}`);
    expect(run('link', '/data/file', '/data/file2')).toBe('ok');
    expect(lstatSync(join(inside, 'file')).nlink).toBe(2);
    expect(readdirSync(other)).toEqual([]);
  });

  it('reports why a directory cannot be mapped', () => {
    expect(() => HostDir.open(join(parent, 'missing'))).toThrow(
      expect.objectContaining({ code: 'ENOENT' }) as Error,
    );
    expect(() => HostDir.open(join(parent, 'outside'))).toThrow(
      expect.objectContaining({ code: 'ENOTDIR' }) as Error,
    );
    expect(() => HostDir.open('')).toThrow(TypeError);
    // A mapping is resolved once: the directory, not the symlink's later target.
    symlinkSync(inside, join(parent, 'alias'));
    expect(HostDir.open(join(parent, 'alias')).hostPath).toBe(realpathSync(inside));
  });
});

type Import = (...args: (number | bigint)[]) => number;

interface Bound {
  ctx: WasiContext;
  w: Record<string, Import>;
  view: () => DataView;
  u8: () => Uint8Array;
  /** Write `s` at `at`; returns [at, byte length]. */
  put: (at: number, s: string | Uint8Array) => [number, number];
}

const hello = (): WebAssembly.Module => load('wasi-hello');

/** A context with `tree` at fd 3 (and `second` at fd 4), imports bound to a wasi-hello memory. */
function bound(tree: WasiTree, second?: WasiTree): Bound {
  const preopens: WasiPreopen[] = [{ guestPath: '/data', tree }];
  if (second !== undefined) preopens.push({ guestPath: '/second', tree: second });
  const ctx = new WasiContext({ args: ['t'], env: {}, preopens });
  const instance = new WebAssembly.Instance(hello(), ctx.imports);
  ctx.bind(instance);
  const memory = instance.exports['memory'] as WebAssembly.Memory;
  const w = ctx.imports['wasi_snapshot_preview1'] as unknown as Record<string, Import>;
  const put = (at: number, s: string | Uint8Array): [number, number] => {
    const b = typeof s === 'string' ? bytes(s) : s;
    new Uint8Array(memory.buffer).set(b, at);
    return [at, b.length];
  };
  return {
    ctx,
    w,
    view: () => new DataView(memory.buffer),
    u8: () => new Uint8Array(memory.buffer),
    put,
  };
}

const S = 0x8000; // scratch area inside wasi-hello's memory
const ALL = 0x3fffffffn;
const READ_WRITE = (1n << 1n) | (1n << 6n) | (1n << 2n) | (1n << 5n) | (1n << 21n) | (1n << 23n);

/** path_open below fd 3; returns [errno, fd]. */
function openAt(
  b: Bound,
  path: string | Uint8Array,
  oflags = 0,
  rights = READ_WRITE,
  fdflags = 0,
): [number, number] {
  const [p, l] = b.put(S, path);
  const errno = b.w['path_open']!(3, 1, p, l, oflags, rights, ALL, fdflags, S + 4000);
  return [errno, b.view().getUint32(S + 4000, true)];
}

/** The `filestat` at fd `fd`: [size, atim, mtim, nlink, filetype]. */
function fstat(b: Bound, fd: number): [bigint, bigint, bigint, bigint, number] {
  expect(b.w['fd_filestat_get']!(fd, S + 3000)).toBe(0);
  const v = b.view();
  return [
    v.getBigUint64(S + 3032, true),
    v.getBigUint64(S + 3040, true),
    v.getBigUint64(S + 3048, true),
    v.getBigUint64(S + 3024, true),
    v.getUint8(S + 3016),
  ];
}

describe('path and fd imports on writable mounts, called directly', () => {
  let parent: string;
  beforeEach(() => {
    parent = mkdtempSync(join(tmpdir(), 'weft-direct-'));
  });
  afterEach(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  const mounts: [string, () => WasiTree][] = [
    ['MemoryTree', () => MemoryTree.empty()],
    ['HostDir', () => HostDir.open(parent)],
  ];

  for (const [kind, make] of mounts) {
    it(`${kind}: refuses NUL (inval) and invalid UTF-8 (ilseq) in every path argument`, () => {
      const b = bound(make());
      const { w } = b;
      const bad: [Uint8Array, number][] = [
        [bytes('a\0b'), E.inval],
        [new Uint8Array([0x61, 0xff, 0x62]), E.ilseq],
        [new Uint8Array([0xc0, 0xaf]), E.ilseq], // overlong '/'
        [new Uint8Array([0xed, 0xa0, 0x80]), E.ilseq], // a UTF-16 surrogate
        [new Uint8Array([0xe2, 0x82]), E.ilseq], // cut short
      ];
      expect(openAt(b, 'ok', 1)[0]).toBe(0);
      const ok = b.put(S + 1000, 'ok');
      const fresh = b.put(S + 1100, 'fresh');
      for (const [path, errno] of bad) {
        const [p, l] = b.put(S + 2000, path);
        const calls: [string, number][] = [
          ['path_open', openAt(b, path, 1)[0]],
          ['path_create_directory', w['path_create_directory']!(3, p, l)],
          ['path_remove_directory', w['path_remove_directory']!(3, p, l)],
          ['path_unlink_file', w['path_unlink_file']!(3, p, l)],
          ['path_filestat_get', w['path_filestat_get']!(3, 1, p, l, S + 3000)],
          ['path_filestat_set_times', w['path_filestat_set_times']!(3, 1, p, l, 0n, 0n, 10)],
          ['path_readlink', w['path_readlink']!(3, p, l, S + 3000, 64, S + 3100)],
          ['path_rename old', w['path_rename']!(3, p, l, 3, ...fresh)],
          ['path_rename new', w['path_rename']!(3, ...ok, 3, p, l)],
          ['path_link old', w['path_link']!(3, 0, p, l, 3, ...fresh)],
          ['path_link new', w['path_link']!(3, 0, ...ok, 3, p, l)],
          ['path_symlink target', w['path_symlink']!(p, l, 3, ...fresh)],
          ['path_symlink new', w['path_symlink']!(...ok, 3, p, l)],
        ];
        expect(calls).toEqual(calls.map(([name]) => [name, errno]));
      }
      // Nothing was made: the listing is '.', '..' and 'ok'.
      expect(b.w['fd_readdir']!(3, S, 1024, 0n, S + 1024)).toBe(0);
      expect(b.view().getUint32(S + 1024, true)).toBe(3 * 24 + 1 + 2 + 2);
    });

    it(`${kind}: sets times with the *_now flags and leaves omitted ones`, () => {
      const b = bound(make());
      const [errno, fd] = openAt(b, 'f', 1);
      expect(errno).toBe(0);
      const ATIM = 1;
      const ATIM_NOW = 2;
      const MTIM = 4;
      const MTIM_NOW = 8;
      expect(b.w['fd_filestat_set_times']!(fd, 1_000_000_000n, 2_000_000_000n, ATIM | MTIM)).toBe(
        0,
      );
      expect(fstat(b, fd).slice(1, 3)).toEqual([1_000_000_000n, 2_000_000_000n]);
      const before = BigInt(Date.now() - 5_000) * 1_000_000n;
      expect(b.w['fd_filestat_set_times']!(fd, 0n, 0n, ATIM_NOW)).toBe(0);
      const [, atim, mtim] = fstat(b, fd);
      expect(atim).toBeGreaterThan(before);
      expect(mtim).toBe(2_000_000_000n);
      const [p, l] = b.put(S + 1000, 'f');
      expect(b.w['path_filestat_set_times']!(3, 0, p, l, 0n, 5_000_000_000n, MTIM)).toBe(0);
      const [, atim2, mtim2] = fstat(b, fd);
      expect(mtim2).toBe(5_000_000_000n);
      // Node.js can't leave a host file's time alone (no UTIME_OMIT): it is rewritten, as a
      // double of seconds.
      const driftNs = kind === 'HostDir' ? 1_000n : 0n;
      expect(atim2 - atim <= driftNs && atim - atim2 <= driftNs).toBe(true);
      expect(b.w['path_filestat_set_times']!(3, 0, p, l, 0n, 0n, MTIM_NOW)).toBe(0);
      expect(fstat(b, fd)[2]).toBeGreaterThan(before);
      expect(b.w['fd_filestat_set_times']!(fd, 0n, 0n, ATIM | ATIM_NOW)).toBe(E.inval);
      expect(b.w['fd_filestat_set_times']!(fd, 0n, 0n, 16)).toBe(E.inval);
    });

    it(`${kind}: path_filestat_set_times follows a link only when asked`, () => {
      const b = bound(make());
      const [, fd] = openAt(b, 'target', 1);
      const [t, tl] = b.put(S + 1000, 'target');
      const [n, nl] = b.put(S + 1100, 'link');
      expect(b.w['path_symlink']!(t, tl, 3, n, nl)).toBe(0);
      expect(b.w['path_filestat_set_times']!(3, 1, n, nl, 0n, 7_000_000_000n, 4)).toBe(0);
      expect(fstat(b, fd)[2]).toBe(7_000_000_000n);
      expect(b.w['path_filestat_set_times']!(3, 0, n, nl, 0n, 9_000_000_000n, 4)).toBe(0);
      expect(fstat(b, fd)[2]).toBe(7_000_000_000n);
      expect(b.w['path_filestat_get']!(3, 0, n, nl, S + 3000)).toBe(0);
      expect(b.view().getUint8(S + 3016)).toBe(7); // symbolic_link
      expect(b.view().getBigUint64(S + 3048, true)).toBe(9_000_000_000n);
    });

    it(`${kind}: fd_readdir cookies resume after entries are removed`, () => {
      const b = bound(make());
      const names = ['a', 'b', 'c', 'd', 'e', 'f'];
      for (const name of names) {
        const [errno, fd] = openAt(b, name, 1);
        expect(errno).toBe(0);
        expect(b.w['fd_close']!(fd)).toBe(0);
      }
      const [, dir] = openAt(b, '.', 2, (1n << 14n) | (1n << 13n));
      const read = (cookie: bigint, len: number): { names: string[]; last: bigint } => {
        expect(b.w['fd_readdir']!(dir, S, len, cookie, S + 2000)).toBe(0);
        const used = b.view().getUint32(S + 2000, true);
        const out: string[] = [];
        let at = 0;
        let last = cookie;
        while (at + 24 <= used) {
          const nlen = b.view().getUint32(S + at + 16, true);
          if (at + 24 + nlen > used) break;
          out.push(text(b.u8().slice(S + at + 24, S + at + 24 + nlen)));
          last = b.view().getBigUint64(S + at, true);
          at += 24 + nlen;
        }
        return { names: out, last };
      };
      // '.', '..', 'a', 'b' in 4 * 25 bytes, then 'c' cut off.
      const first = read(0n, 4 * 25 + 10);
      expect(first.names).toEqual(['.', '..', 'a', 'b']);
      for (const name of ['a', 'c', 'e']) {
        const [p, l] = b.put(S + 1000, name);
        expect(b.w['path_unlink_file']!(3, p, l)).toBe(0);
      }
      const rest = read(first.last, 4096);
      // Survivors b, d, f are each listed once; removed entries may or may not appear.
      const all = [...first.names, ...rest.names];
      for (const name of ['b', 'd', 'f']) expect(all.filter((n) => n === name)).toHaveLength(1);
      expect(new Set(all).size).toBe(all.length);
      // A new listing from cookie 0 sees the directory as it is now.
      expect(read(0n, 4096).names).toEqual(['.', '..', 'b', 'd', 'f']);
    });
  }

  it('closes host files when the context ends or is closed', () => {
    if (!existsSync('/proc/self/fd')) return;
    const count = (): number => readdirSync('/proc/self/fd').length;
    const start = count();
    const b = bound(HostDir.open(parent));
    for (let i = 0; i < 20; i++) expect(openAt(b, `f${i}`, 1)[0]).toBe(0);
    expect(count()).toBe(start + 20);
    b.ctx.close();
    expect(count()).toBe(start);
    b.ctx.close();
    // A guest that exits with files open leaves none behind either.
    writeFileSync(join(parent, 'x'), 'x');
    const before = count();
    expect(op(HostDir.open(parent), 'cat', '/data/x')).toBe('ok x');
    expect(count()).toBe(before);
  });

  it('keeps a HostDir directory fd from following a directory replaced by a link', () => {
    // Each link is lexically inside (so it may be made), but together they lead out of the
    // root when the kernel follows them: sub/q -> .. is the root, d -> sub/q/.. its parent.
    const inside = join(parent, 'in');
    mkdirSync(join(inside, 'sub'), { recursive: true });
    mkdirSync(join(inside, 'd'));
    writeFileSync(join(parent, 'outside'), 'SECRET');
    const before = inventory(parent, inside);
    const b = bound(HostDir.open(inside));
    const { w } = b;
    const [, d] = openAt(b, 'd', 2, (1n << 14n) | (1n << 13n) | (1n << 9n) | (1n << 21n));
    const at = (p: string, off = 0): [number, number] => b.put(S + 1000 + off, p);
    expect(w['path_symlink']!(...at('..'), 3, ...at('sub/q', 100))).toBe(0);
    expect(w['path_rename']!(3, ...at('d'), 3, ...at('e', 100))).toBe(0);
    expect(w['path_symlink']!(...at('sub/q/..'), 3, ...at('d', 100))).toBe(0);
    expect(readdirSync(join(inside, 'd'))).toContain('outside'); // the kernel follows it out
    // Through the preopen, the walker refuses the chain.
    expect(w['path_create_directory']!(3, ...at('d/pwned'))).toBe(E.notcapable);
    // The fd opened on the old `d` must not reach through the new one.
    expect(w['path_create_directory']!(d, ...at('pwned'))).toBe(E.noent);
    expect(openAt(b, 'sub', 2, (1n << 14n) | (1n << 13n))[0]).toBe(0); // others still open
    expect(w['path_open']!(d, 1, ...at('outside'), 0, 1n << 1n, 0n, 0, S + 4000)).toBe(E.noent);
    expect(w['fd_readdir']!(d, S, 1024, 0n, S + 2000)).toBe(E.noent);
    expect(w['fd_filestat_get']!(d, S + 3000)).toBe(E.noent);
    expect(inventory(parent, inside)).toEqual(before);
  });

  it('answers mfile rather than exhausting host fds', () => {
    const b = bound(HostDir.open(parent));
    let errno = 0;
    let opened = 0;
    for (; opened < 1100 && errno === 0; opened++) [errno] = openAt(b, `f${opened}`, 1);
    expect(errno).toBe(33); // mfile
    expect(opened).toBeLessThanOrEqual(1024);
    b.ctx.close();
  });

  it('answers xdev between a MemoryTree and a HostDir', () => {
    writeFileSync(join(parent, 'f'), 'host');
    const b = bound(HostDir.open(parent), MemoryTree.empty());
    const [p, l] = b.put(S, 'f');
    const [q, ql] = b.put(S + 100, 'g');
    expect(b.w['path_link']!(3, 0, p, l, 4, q, ql)).toBe(E.xdev);
    expect(b.w['path_rename']!(3, p, l, 4, q, ql)).toBe(E.xdev);
  });
});
