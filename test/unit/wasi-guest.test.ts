/**
 * WASI as real guests see it: C programs from test/fixtures/actors/wasi-*.c, built against
 * wasi-libc by `npm run build:actors`, run through WasiContext.
 */
import { describe, expect, it } from 'vitest';
import {
  OutputLimitError,
  ReadOnlyTree,
  WasiContext,
  type WasiOptions,
} from '../../host/wasi/index.ts';
import { bytes, loadFixture, text } from '../helpers/wasm-fixtures.ts';

const load = loadFixture;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ctx: WasiContext;
}

function run(name: string, args: string[], opts: Partial<WasiOptions> = {}): Run {
  const ctx = new WasiContext({ args: [name, ...args], env: {}, ...opts });
  const code = ctx.start(new WebAssembly.Instance(load(name), ctx.imports));
  return { code, stdout: text(ctx.stdout()), stderr: text(ctx.stderr()), ctx };
}

const MANY_FILES = 300;
const site = ReadOnlyTree.fromEntries([
  { path: 'index.html', data: bytes('<h1>hello</h1>\n') },
  { path: 'css/site.css', data: bytes('body { margin: 0 }\n') },
  { path: 'empty', dir: true },
  ...Array.from({ length: MANY_FILES }, (_, i) => ({
    path: `many/file-${String(i).padStart(3, '0')}.txt`,
    data: bytes(String(i)),
  })),
]);
const preopens = [{ guestPath: '/site', tree: site }];

describe('argv and environ', () => {
  it('gives the guest exactly the args and env it was given', () => {
    const env = { PATH_INFO: '/a b', EMPTY: '', WITH_EQUALS: 'x=y', UNI: 'ü€😀' };
    const r = run('wasi-args-env', ['one', 'two words', '', 'ünïcode'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      'argc=5',
      'argv[0]=wasi-args-env',
      'argv[1]=one',
      'argv[2]=two words',
      'argv[3]=',
      'argv[4]=ünïcode',
      ...Object.entries(env).map(([k, v]) => `env=${k}=${v}`),
      '',
    ]);
  });

  it('passes an empty environment when given none (nothing of the host leaks in)', () => {
    const r = run('wasi-args-env', []);
    expect(r.stdout).toBe('argc=1\nargv[0]=wasi-args-env\n');
  });

  it('rejects args and env the guest could not receive intact', () => {
    expect(() => new WasiContext({ args: ['a\0b'], env: {} })).toThrow(TypeError);
    expect(() => new WasiContext({ args: [], env: { 'A=B': 'c' } })).toThrow(TypeError);
    expect(() => new WasiContext({ args: [], env: { A: 'c\0' } })).toThrow(TypeError);
  });
});

describe('stdio', () => {
  it('reads stdin to EOF and echoes it', () => {
    const input = bytes('line one\n'.repeat(500) + 'no newline at the end');
    const r = run('wasi-stdin-echo', [], { stdin: input });
    expect(r.code).toBe(0);
    expect(r.ctx.stdout()).toEqual(input);
    expect(r.stderr).toBe(`read ${input.length} bytes\n`);
  });

  it('gives EOF at once without stdin', () => {
    const r = run('wasi-stdin-echo', []);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('read 0 bytes\n');
  });

  it('stops a guest that writes more than the stdout limit, at the limit', () => {
    const ctx = new WasiContext({ args: ['wasi-output', 'stdout', '100000000'], env: {} });
    const instance = new WebAssembly.Instance(load('wasi-output'), ctx.imports);
    let caught: unknown;
    try {
      ctx.start(instance);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OutputLimitError);
    expect((caught as OutputLimitError).limitBytes).toBe(64 * 1024 * 1024);
    expect(ctx.stdout().length).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(ctx.stdout().length).toBeGreaterThan(60 * 1024 * 1024);
  });

  it('applies a custom stdout limit', () => {
    const ctx = new WasiContext({
      args: ['wasi-output', 'stdout', '5000'],
      env: {},
      stdoutLimitBytes: 1000,
    });
    const instance = new WebAssembly.Instance(load('wasi-output'), ctx.imports);
    expect(() => ctx.start(instance)).toThrow(OutputLimitError);
    expect(ctx.stdout().length).toBeLessThanOrEqual(1000);
  });

  it('allows stdout of exactly the limit', () => {
    const r = run('wasi-output', ['stdout', '995'], { stdoutLimitBytes: 1000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('x'.repeat(995) + 'done\n');
  });

  it('truncates stderr at its limit and lets the guest run on', () => {
    const r = run('wasi-output', ['stderr', '300000'], { stderrLimitBytes: 1000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('done\n');
    expect(r.stderr).toBe('x'.repeat(1000));
    expect(r.ctx.stderrTruncated).toBe(true);
  });

  it('keeps stderr below its limit whole', () => {
    const r = run('wasi-output', ['stderr', '999'], { stderrLimitBytes: 1000 });
    expect(r.stderr.length).toBe(999);
    expect(r.ctx.stderrTruncated).toBe(false);
  });
});

describe('exit', () => {
  it('returns the proc_exit code, keeping earlier output', () => {
    const r = run('wasi-exit', ['exit', '3']);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('before\n');
  });

  it('returns 0 when main returns 0 (_start returns)', () => {
    expect(run('wasi-exit', ['return', '0']).code).toBe(0);
  });

  it('returns a non-zero value returned from main', () => {
    expect(run('wasi-exit', ['return', '7']).code).toBe(7);
  });

  it('propagates traps unchanged', () => {
    const ctx = new WasiContext({ args: ['wasi-exit', 'trap'], env: {} });
    const instance = new WebAssembly.Instance(load('wasi-exit'), ctx.imports);
    expect(() => ctx.start(instance)).toThrow(WebAssembly.RuntimeError);
  });

  it('runs _start only once per context', () => {
    const ctx = new WasiContext({ args: ['wasi-exit', 'return', '0'], env: {} });
    const instance = new WebAssembly.Instance(load('wasi-exit'), ctx.imports);
    expect(ctx.start(instance)).toBe(0);
    expect(() => ctx.start(instance)).toThrow(/once/);
  });
});

describe('clocks and randomness', () => {
  it('has an increasing monotonic clock and a realtime clock near Date.now()', () => {
    const r = run('wasi-clock', ['clocks']);
    const values = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
    expect(BigInt(values['mono2'] as string)).toBeGreaterThan(BigInt(values['mono1'] as string));
    const realMs = Number(BigInt(values['real'] as string) / 1_000_000n);
    expect(Math.abs(realMs - Date.now())).toBeLessThan(5_000);
    expect(Number(values['cpu'])).toBeGreaterThan(0);
    expect(values['res']).toBe('1');
  });

  it('fills random_get with distinct, non-zero bytes', () => {
    const [a, b] = run('wasi-clock', ['random']).stdout.trim().split('\n');
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
    expect(a).not.toBe('0'.repeat(64));
  });

  it('sleeps (nanosleep → poll_oneoff) at least the requested time', () => {
    const started = performance.now();
    const r = run('wasi-clock', ['sleep', '100']);
    const elapsedMs = performance.now() - started;
    expect(r.code).toBe(0);
    expect(elapsedMs).toBeGreaterThanOrEqual(100);
    expect(Number(r.stdout.match(/slept_ns=(\d+)/)?.[1])).toBeGreaterThanOrEqual(100_000_000);
  });
});

describe('read-only preopens', () => {
  it('reads files with fopen/fread', () => {
    expect(run('wasi-fs', ['cat', '/site/index.html'], { preopens }).stdout).toBe(
      '<h1>hello</h1>\n',
    );
    expect(run('wasi-fs', ['cat', '/site/css/site.css'], { preopens }).stdout).toBe(
      'body { margin: 0 }\n',
    );
  });

  it('lists a directory with readdir, . and .. included', () => {
    const r = run('wasi-fs', ['ls', '/site'], { preopens });
    expect(r.stdout.trim().split('\n')).toEqual([
      '.',
      '..',
      'css',
      'empty',
      'index.html',
      'many',
      'count=6',
    ]);
  });

  it('lists every entry of a directory needing several readdir refills', () => {
    const r = run('wasi-fs', ['ls', '/site/many'], { preopens });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.pop()).toBe(`count=${MANY_FILES + 2}`);
    const expected = ['.', '..'];
    for (let i = 0; i < MANY_FILES; i++) expected.push(`file-${String(i).padStart(3, '0')}.txt`);
    expect(lines.toSorted()).toEqual(expected.toSorted());
  });

  it('stats files and directories', () => {
    expect(run('wasi-fs', ['stat', '/site/css/site.css'], { preopens }).stdout).toBe(
      'size=19 dir=0\n',
    );
    expect(run('wasi-fs', ['stat', '/site/empty'], { preopens }).stdout).toBe('size=0 dir=1\n');
    expect(run('wasi-fs', ['stat', '/site/missing'], { preopens }).stdout).toBe('errno=44\n');
  });

  it('refuses writes with EROFS (69)', () => {
    const existing = run('wasi-fs', ['write', '/site/index.html'], { preopens }).stdout;
    expect(existing).toBe(
      'fopen_w errno=69\nopen_wronly errno=69\nmkdir errno=20\nunlink errno=69\n',
    );
    const fresh = run('wasi-fs', ['write', '/site/new.txt'], { preopens }).stdout;
    expect(fresh).toBe('fopen_w errno=69\nopen_wronly errno=44\nmkdir errno=69\nunlink errno=44\n');
  });

  it('refuses .. that escapes the preopen with ENOTCAPABLE (76)', () => {
    for (const path of ['/site/../etc/passwd', '/site/css/../../index.html']) {
      const r = run('wasi-fs', ['cat', path], { preopens });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('errno=76\n');
    }
    expect(run('wasi-fs', ['cat', '/site/css/../index.html'], { preopens }).stdout).toBe(
      '<h1>hello</h1>\n',
    );
  });

  it('answers ENOTDIR for a file used as a directory', () => {
    expect(run('wasi-fs', ['open', '/site/index.html/'], { preopens }).stdout).toBe('errno=54\n');
    expect(run('wasi-fs', ['ls', '/site/index.html'], { preopens }).stdout).toBe('errno=54\n');
  });

  it('shares one tree between contexts and mounts several', () => {
    const other = ReadOnlyTree.fromEntries([{ path: 'a.txt', data: bytes('from other') }]);
    const mounts = [...preopens, { guestPath: '/other', tree: other }];
    expect(run('wasi-fs', ['cat', '/other/a.txt'], { preopens: mounts }).stdout).toBe('from other');
    expect(run('wasi-fs', ['cat', '/site/index.html'], { preopens: mounts }).stdout).toBe(
      '<h1>hello</h1>\n',
    );
  });
});

describe('ReadOnlyTree.fromEntries', () => {
  it('rejects paths it cannot represent', () => {
    expect(() => ReadOnlyTree.fromEntries([{ path: '../x', data: bytes('') }])).toThrow(TypeError);
    expect(() => ReadOnlyTree.fromEntries([{ path: '', data: bytes('') }])).toThrow(TypeError);
    expect(() =>
      ReadOnlyTree.fromEntries([
        { path: 'a', data: bytes('') },
        { path: 'a/b', data: bytes('') },
      ]),
    ).toThrow(TypeError);
    expect(() =>
      ReadOnlyTree.fromEntries([
        { path: 'a', data: bytes('') },
        { path: 'a', data: bytes('') },
      ]),
    ).toThrow(TypeError);
  });
});
