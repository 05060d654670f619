/**
 * Property: the path_* imports, driven with random paths (`..`, `/`, NUL, long names, random
 * bytes, symlink targets pointing anywhere) against a MemoryTree and a HostDir, never throw,
 * always answer an errno in 0..76, and never change anything outside the mapped directory.
 */
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostDir, MemoryTree, WasiContext, type WasiTree } from '../../host/wasi/index.ts';

type Import = (...args: (number | bigint)[]) => number;

const hello = new WebAssembly.Module(
  readFileSync(new URL('../fixtures/actors/dist/wasi-hello.wasm', import.meta.url)),
);
const encoder = new TextEncoder();

/** Everything under `root` except `skip`, by lstat, with contents. */
function inventory(root: string, skip: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).toSorted()) {
      const path = join(dir, name);
      if (path === skip) continue;
      const st = lstatSync(path, { bigint: true });
      let detail = `${st.mode} ${st.mtimeNs} ${st.nlink} ${st.size}`;
      if (st.isSymbolicLink()) detail += ` -> ${readlinkSync(path)}`;
      else if (st.isFile()) detail += ` ${readFileSync(path, 'latin1')}`;
      out.push(`${path.slice(root.length)} ${detail}`);
      if (st.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

const segment = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('a', 'b', 'sub', 'f.txt', 'link', 'up', 'abs', 'loop') },
  { weight: 3, arbitrary: fc.constantFrom('..', '.', '', '...', 'outside', 'in') },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(255), 'y'.repeat(256), 'a\0b', 'ü€😀') },
);
const textPath = fc
  .tuple(
    fc.integer({ min: 0, max: 7 }),
    fc.array(segment, { minLength: 1, maxLength: 5 }),
    fc.integer({ min: 0, max: 4 }),
  )
  .map(
    ([abs, parts, slash]) => (abs === 0 ? '/' : '') + parts.join('/') + (slash === 0 ? '/' : ''),
  );
/** Paths as guest bytes: mostly text, sometimes random bytes or text with bytes spliced in. */
const guestPath = fc.oneof(
  { weight: 6, arbitrary: textPath.map((p) => encoder.encode(p)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 24 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(textPath, fc.uint8Array({ minLength: 1, maxLength: 3 }))
      .map(([p, junk]) => new Uint8Array([...encoder.encode(p), ...junk])),
  },
  { weight: 1, arbitrary: fc.constant(encoder.encode('z/'.repeat(2100))) },
);

const OPS = [
  'path_open',
  'path_create_directory',
  'path_remove_directory',
  'path_unlink_file',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_readlink',
  'path_rename',
  'path_link',
  'path_symlink',
] as const;

const op = fc.record({
  name: fc.constantFrom(...OPS),
  a: guestPath,
  b: guestPath,
  flags: fc.integer({ min: 0, max: 15 }),
  follow: fc.integer({ min: 0, max: 1 }),
  fd: fc.constantFrom(3, 3, 3, 3, 4, 4, 5),
});

describe('property: path imports stay inside their mount', () => {
  let parent: string;
  let inside: string;

  beforeAll(() => {
    parent = mkdtempSync(join(tmpdir(), 'weft-property-'));
    inside = join(parent, 'in');
    mkdirSync(join(inside, 'sub'), { recursive: true });
    writeFileSync(join(inside, 'f.txt'), 'inside');
    writeFileSync(join(parent, 'outside'), 'SECRET');
    mkdirSync(join(parent, 'outside-dir'));
    symlinkSync('../outside', join(inside, 'up'));
    symlinkSync(join(parent, 'outside'), join(inside, 'abs'));
    symlinkSync('loop', join(inside, 'loop'));
    symlinkSync('sub', join(inside, 'link'));
  });

  afterAll(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  const mounts: [string, () => WasiTree][] = [
    [
      'MemoryTree',
      () =>
        MemoryTree.fromEntries([
          { path: 'sub', dir: true },
          { path: 'f.txt', data: encoder.encode('inside') },
          { path: 'up', symlink: '../outside' },
          { path: 'abs', symlink: '/etc/passwd' },
          { path: 'loop', symlink: 'loop' },
          { path: 'link', symlink: 'sub' },
        ]),
    ],
    ['HostDir', () => HostDir.open(inside)],
  ];

  for (const [kind, make] of mounts) {
    it(`${kind}: never throws, answers an errno, creates nothing outside`, () => {
      const before = inventory(parent, inside);
      const ctx = new WasiContext({
        args: ['t'],
        env: {},
        preopens: [{ guestPath: '/data', tree: make() }],
      });
      const instance = new WebAssembly.Instance(hello, ctx.imports);
      ctx.bind(instance);
      const memory = instance.exports['memory'] as WebAssembly.Memory;
      const w = ctx.imports['wasi_snapshot_preview1'] as unknown as Record<string, Import>;
      // A subdirectory fd (4) besides the preopen (3); 5 is not open.
      const sub = encoder.encode('sub');
      new Uint8Array(memory.buffer).set(sub, 0x9000);
      const dirRights = 0x3fffffffn & ~((1n << 6n) | (1n << 8n) | (1n << 22n)); // no write rights
      expect(w['path_open']!(3, 0, 0x9000, 3, 2, dirRights, 0x3fffffffn, 0, 0x9100)).toBe(0);
      expect(new DataView(memory.buffer).getUint32(0x9100, true)).toBe(4);

      const A = 0x10000;
      const B = 0x12000;
      const OUT = 0x14000;
      if (memory.buffer.byteLength < 0x20000) memory.grow(2);
      fc.assert(
        fc.property(op, ({ name, a, b, flags, follow, fd }) => {
          const u8 = new Uint8Array(memory.buffer);
          u8.set(a, A);
          u8.set(b, B);
          let result: number;
          switch (name) {
            case 'path_open': {
              const rights = flags & 1 ? 0x3fffffffn : 1n << 1n;
              result = w[name]!(fd, follow, A, a.length, flags, rights, 0n, flags & 1, OUT);
              if (result === 0) {
                const newFd = new DataView(memory.buffer).getUint32(OUT, true);
                if (newFd > 4) expect(w['fd_close']!(newFd)).toBe(0);
              }
              break;
            }
            case 'path_filestat_get':
              result = w[name]!(fd, follow, A, a.length, OUT);
              break;
            case 'path_filestat_set_times':
              result = w[name]!(fd, follow, A, a.length, 1n, 2n, flags);
              break;
            case 'path_readlink':
              result = w[name]!(fd, A, a.length, OUT, 64, OUT + 64);
              break;
            case 'path_rename':
              result = w[name]!(fd, A, a.length, 3, B, b.length);
              break;
            case 'path_link':
              result = w[name]!(fd, follow, A, a.length, 3, B, b.length);
              break;
            case 'path_symlink':
              result = w[name]!(B, b.length, fd, A, a.length);
              break;
            default:
              result = w[name]!(fd, A, a.length);
          }
          expect(Number.isInteger(result) && result >= 0 && result <= 76).toBe(true);
        }),
        { numRuns: 3_000 },
      );
      ctx.close();
      expect(inventory(parent, inside)).toEqual(before);
    });
  }

  const FD_OPS = [
    'fd_read',
    'fd_write',
    'fd_pread',
    'fd_pwrite',
    'fd_seek',
    'fd_tell',
    'fd_filestat_get',
    'fd_filestat_set_size',
    'fd_filestat_set_times',
    'fd_allocate',
    'fd_fdstat_set_flags',
    'fd_readdir',
    'fd_sync',
    'fd_datasync',
    'fd_advise',
  ] as const;
  const u64 = fc.oneof(
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    fc.bigInt({ min: 0n, max: 70_000n }),
    fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 44n),
  );
  const fdOp = fc.record({
    name: fc.constantFrom(...FD_OPS),
    fd: fc.constantFrom(3, 4, 5, 6),
    x: u64,
    y: u64,
    n: fc.integer({ min: -1, max: 40 }),
    len: fc.integer({ min: 0, max: 3000 }),
  });

  for (const [kind, make] of [
    ['MemoryTree', () => MemoryTree.empty({ maxBytes: 1 << 20 })],
    ['HostDir', () => HostDir.open(inside)],
  ] as [string, () => WasiTree][]) {
    it(`${kind}: fd calls on open files never throw and answer an errno`, () => {
      const before = inventory(parent, inside);
      const ctx = new WasiContext({
        args: ['t'],
        env: {},
        preopens: [{ guestPath: '/data', tree: make() }],
      });
      const instance = new WebAssembly.Instance(hello, ctx.imports);
      ctx.bind(instance);
      const memory = instance.exports['memory'] as WebAssembly.Memory;
      if (memory.buffer.byteLength < 0x20000) memory.grow(2);
      const w = ctx.imports['wasi_snapshot_preview1'] as unknown as Record<string, Import>;
      // fd 4: a file open read-write; fd 5: open read-only with append; fd 6: a directory.
      const open = (path: string, oflags: number, rights: bigint, fdflags: number): void => {
        new Uint8Array(memory.buffer).set(encoder.encode(path), 0x9000);
        expect(
          w['path_open']!(3, 0, 0x9000, path.length, oflags, rights, 0n, fdflags, 0x9100),
        ).toBe(0);
      };
      open('prop-file', 1, 0x3fffffffn, 0);
      open('prop-file', 0, 0x3fffffffn & ~(1n << 6n), 1);
      open('.', 2, (1n << 14n) | (1n << 21n), 0);
      const IOV = 0x10000;
      const BUF = 0x10100;
      fc.assert(
        fc.property(fdOp, ({ name, fd, x, y, n, len }) => {
          const view = new DataView(memory.buffer);
          for (let i = 0; i < 4; i++) {
            view.setUint32(IOV + i * 8, BUF + i * 3000, true);
            view.setUint32(IOV + i * 8 + 4, i === 0 ? len : (len * i) % 997, true);
          }
          const iovs = n < 0 ? 0xfffffff0 | 0 : Math.min(n, 4);
          let result: number;
          switch (name) {
            case 'fd_read':
            case 'fd_write':
              result = w[name]!(fd, IOV, iovs, 0x9200);
              break;
            case 'fd_pread':
            case 'fd_pwrite':
              result = w[name]!(fd, IOV, iovs, x, 0x9200);
              break;
            case 'fd_seek':
              result = w[name]!(fd, BigInt.asIntN(64, x), n & 3, 0x9200);
              break;
            case 'fd_tell':
            case 'fd_filestat_get':
              result = w[name]!(fd, 0x9200);
              break;
            case 'fd_filestat_set_size':
              result = w[name]!(fd, x);
              break;
            case 'fd_filestat_set_times':
              result = w[name]!(fd, x, y, n & 15);
              break;
            case 'fd_allocate':
              result = w[name]!(fd, x % 100_000n, y);
              break;
            case 'fd_fdstat_set_flags':
              result = w[name]!(fd, n);
              break;
            case 'fd_readdir':
              result = w[name]!(fd, BUF, len, x % 8n, 0x9200);
              break;
            case 'fd_advise':
              result = w[name]!(fd, x, y, n);
              break;
            default:
              result = w[name]!(fd);
          }
          expect(Number.isInteger(result) && result >= 0 && result <= 76).toBe(true);
        }),
        { numRuns: 3_000 },
      );
      ctx.close();
      expect(inventory(parent, inside)).toEqual(before);
    });
  }
});
