/**
 * Streamed stdio: stdin from a `StdinSource`, stdout/stderr to `OutputSink`s, the `tty` option,
 * and limits and errors on streams. Guests are C programs from test/fixtures/actors/wasi-*.c.
 */
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  OutputLimitError,
  WasiContext,
  type OutputSink,
  type StdinSource,
  type WasiOptions,
} from '../../host/wasi/index.ts';
import { bytes, loadFixture, text } from '../helpers/wasm-fixtures.ts';

const load = loadFixture;

function run(name: string, args: string[], opts: Partial<WasiOptions> = {}): number {
  const ctx = new WasiContext({ args: [name, ...args], env: {}, ...opts });
  return ctx.start(new WebAssembly.Instance(load(name), ctx.imports));
}

/** A sink keeping copies of what it is given, and a log of calls shared with a source. */
function recorder(log: string[], tag: string): OutputSink & { chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    write(b: Uint8Array) {
      chunks.push(b.slice());
      log.push(`${tag}:${text(b)}`);
    },
  };
}

/** A source giving one chunk per read, as a terminal gives a line at a time. */
function chunked(parts: string[], log: string[]): StdinSource {
  let i = 0;
  return {
    read(buf: Uint8Array) {
      const part = parts[i++];
      log.push(`read:${part ?? 'EOF'}`);
      if (part === undefined) return 0;
      const b = bytes(part);
      expect(b.length).toBeLessThanOrEqual(buf.length);
      buf.set(b);
      return b.length;
    },
  };
}

const joined = (chunks: Uint8Array[]): string => chunks.map(text).join('');

describe('streamed stdin and stdout', () => {
  it('answers each line before the next is read when the guest flushes', () => {
    const log: string[] = [];
    const out = recorder(log, 'out');
    const err = recorder(log, 'err');
    const ctx = new WasiContext({
      args: ['wasi-stdio-lines', 'flush'],
      env: {},
      stdin: chunked(['alpha\n', 'beta\n', 'gam', 'ma\n'], log),
      stdout: out,
      stderr: err,
    });
    expect(ctx.start(new WebAssembly.Instance(load('wasi-stdio-lines'), ctx.imports))).toBe(0);
    expect(log).toEqual([
      'read:alpha\n',
      'out:1: alpha\n',
      'err:line 1\n',
      'read:beta\n',
      'out:2: beta\n',
      'err:line 2\n',
      'read:gam',
      'read:ma\n',
      'out:3: gamma\n',
      'err:line 3\n',
      'read:EOF',
      'out:lines=3\n',
    ]);
    // Streamed output isn't captured as well.
    expect(ctx.stdout()).toHaveLength(0);
    expect(ctx.stderr()).toHaveLength(0);
  });

  it('without a tty, stdout is fully buffered until exit, as wasi-libc does for a pipe', () => {
    const log: string[] = [];
    const out = recorder(log, 'out');
    const code = run('wasi-stdio-lines', ['tty'], {
      stdin: chunked(['a\n', 'b\n'], log),
      stdout: out,
      stderr: recorder(log, 'err'),
    });
    expect(code).toBe(0);
    // The answers arrive together after the last read (what was printed before the first
    // read, musl flushes then).
    expect(log.slice(log.indexOf('read:EOF'))).toEqual(['read:EOF', 'out:1: a\n2: b\nlines=2\n']);
    expect(joined(out.chunks)).toBe('isatty=000\n1: a\n2: b\nlines=2\n');
  });

  it('with tty: true, isatty() is true and stdout is line-buffered', () => {
    const log: string[] = [];
    const code = run('wasi-stdio-lines', ['tty'], {
      stdin: chunked(['a\n', 'b\n'], log),
      stdout: recorder(log, 'out'),
      stderr: recorder(log, 'err'),
      tty: true,
    });
    expect(code).toBe(0);
    expect(log).toEqual([
      'out:isatty=111\n',
      'read:a\n',
      'out:1: a\n',
      'err:line 1\n',
      'read:b\n',
      'out:2: b\n',
      'err:line 2\n',
      'read:EOF',
      'out:lines=2\n',
    ]);
  });

  it('marks only the fds named in tty', () => {
    const out = recorder([], 'out');
    run('wasi-stdio-lines', ['tty'], { stdout: out, tty: { stderr: true } });
    expect(joined(out.chunks)).toBe('isatty=001\nlines=0\n');
  });

  it('passes large reads and writes through unchanged', () => {
    const input = bytes('0123456789abcdef'.repeat(20_000) + 'tail');
    let at = 0;
    const reads: number[] = [];
    const out = recorder([], 'out');
    const err = recorder([], 'err');
    const code = run('wasi-stdin-echo', [], {
      stdin: {
        read(buf) {
          // Odd, short reads, as from a pipe.
          const n = Math.min(buf.length, 777, input.length - at);
          buf.set(input.subarray(at, at + n));
          at += n;
          reads.push(n);
          return n;
        },
      },
      stdout: out,
      stderr: err,
    });
    expect(code).toBe(0);
    expect(Buffer.concat(out.chunks).equals(Buffer.from(input))).toBe(true);
    expect(joined(err.chunks)).toBe(`read ${input.length} bytes\n`);
    expect(reads.at(-1)).toBe(0);
  });

  it('works with node:fs file descriptors as source and sink', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-stdio-'));
    try {
      const inPath = join(dir, 'in');
      const outPath = join(dir, 'out');
      writeFileSync(inPath, 'one\ntwo\n');
      const inFd = openSync(inPath, 'r');
      const outFd = openSync(outPath, 'w');
      try {
        const code = run('wasi-stdio-lines', ['flush'], {
          stdin: { read: (buf) => readSync(inFd, buf) },
          stdout: {
            write(b) {
              for (let off = 0; off < b.length;) off += writeSync(outFd, b, off);
            },
          },
          stderr: { write() {} },
        });
        expect(code).toBe(0);
      } finally {
        closeSync(inFd);
        closeSync(outFd);
      }
      expect(readFileSync(outPath, 'utf8')).toBe('1: one\n2: two\nlines=2\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('limits and errors on streams', () => {
  it('still stops stdout at a given limit, delivering nothing past it', () => {
    const out = recorder([], 'out');
    const ctx = new WasiContext({
      args: ['wasi-output', 'stdout', '5000'],
      env: {},
      stdout: out,
      stdoutLimitBytes: 1000,
    });
    expect(() => ctx.start(new WebAssembly.Instance(load('wasi-output'), ctx.imports))).toThrow(
      OutputLimitError,
    );
    const total = out.chunks.reduce((n, c) => n + c.length, 0);
    expect(total).toBeLessThanOrEqual(1000);
  });

  it('has no stdout limit when streaming unless one is given', () => {
    let total = 0;
    const code = run('wasi-output', ['stdout', String(70 * 1024 * 1024)], {
      stdout: { write: (b) => void (total += b.length) },
    });
    expect(code).toBe(0);
    expect(total).toBe(70 * 1024 * 1024 + 'done\n'.length);
  });

  it('truncates a streamed stderr at its limit and lets the guest run on', () => {
    const err = recorder([], 'err');
    const ctx = new WasiContext({
      args: ['wasi-output', 'stderr', '300000'],
      env: {},
      stderr: err,
      stderrLimitBytes: 1000,
    });
    expect(ctx.start(new WebAssembly.Instance(load('wasi-output'), ctx.imports))).toBe(0);
    expect(joined(err.chunks)).toBe('x'.repeat(1000));
    expect(ctx.stderrTruncated).toBe(true);
    expect(text(ctx.stdout())).toBe('done\n');
  });

  it('turns a sink system error into the guest errno (EPIPE)', () => {
    const err = recorder([], 'err');
    const code = run('wasi-stdin-echo', [], {
      stdin: bytes('some input'),
      stdout: {
        write() {
          throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
        },
      },
      stderr: err,
    });
    expect(code).toBe(2); // write() returned -1
  });

  it('turns a source system error into the guest errno (EAGAIN)', () => {
    const err = recorder([], 'err');
    const code = run('wasi-stdin-echo', [], {
      stdin: {
        read() {
          throw Object.assign(new Error('read EAGAIN'), { code: 'EAGAIN' });
        },
      },
      stderr: err,
    });
    expect(code).toBe(1);
    expect(joined(err.chunks)).toMatch(/^read: Resource temporarily unavailable/);
  });

  it('lets other exceptions from sinks and sources out, as host faults', () => {
    const boom = new Error('sink bug');
    expect(() =>
      run('wasi-stdin-echo', [], {
        stdin: bytes('x'),
        stdout: {
          write() {
            throw boom;
          },
        },
      }),
    ).toThrow(boom);
    expect(() => run('wasi-stdin-echo', [], { stdin: { read: () => 5000 } })).toThrow(TypeError);
    expect(() => run('wasi-stdin-echo', [], { stdin: { read: () => 0.5 } })).toThrow(TypeError);
  });

  it('rejects sources and sinks of the wrong shape', () => {
    const bad = { args: [], env: {} };
    expect(() => new WasiContext({ ...bad, stdin: {} as StdinSource })).toThrow(TypeError);
    expect(() => new WasiContext({ ...bad, stdout: {} as OutputSink })).toThrow(TypeError);
    expect(() => new WasiContext({ ...bad, stderr: { write: 1 } as never })).toThrow(TypeError);
  });
});

describe('stdio as fds', () => {
  type Import = (...args: (number | bigint)[]) => number;
  function imports(opts: Partial<WasiOptions>): { w: Record<string, Import>; view: DataView } {
    const ctx = new WasiContext({ args: ['t'], env: {}, ...opts });
    const instance = new WebAssembly.Instance(load('wasi-hello'), ctx.imports);
    ctx.bind(instance);
    const memory = instance.exports['memory'] as WebAssembly.Memory;
    const w = ctx.imports['wasi_snapshot_preview1'] as unknown as Record<string, Import>;
    return { w, view: new DataView(memory.buffer) };
  }
  const S = 0x8000;
  const SEEK_TELL = (1n << 2n) | (1n << 5n);

  it('reports a tty as a character device without seek or tell, and others as pipes', () => {
    const { w, view } = imports({ tty: { stdout: true }, stdout: { write() {} } });
    const types = [0, 1, 2].map((fd) => {
      expect(w['fd_fdstat_get']!(fd, S)).toBe(0);
      expect(view.getBigUint64(S + 8, true) & SEEK_TELL).toBe(0n);
      expect(w['fd_seek']!(fd, 0n, 1, S)).toBe(70); // spipe
      expect(w['fd_tell']!(fd, S)).toBe(70);
      const fdstatType = view.getUint8(S);
      expect(w['fd_filestat_get']!(fd, S)).toBe(0);
      expect(view.getUint8(S + 16)).toBe(fdstatType);
      return fdstatType;
    });
    expect(types).toEqual([0, 2, 0]);
  });

  it('polls a streamed stdin as readable without reading it', () => {
    let reads = 0;
    const { w, view } = imports({ stdin: { read: () => (reads++, 0) } });
    new Uint8Array(view.buffer, S, 48).fill(0);
    view.setBigUint64(S, 9n, true);
    view.setUint8(S + 8, 1); // fd_read
    view.setUint32(S + 16, 0, true);
    expect(w['poll_oneoff']!(S, S + 512, 1, S + 1024)).toBe(0);
    expect(view.getUint32(S + 1024, true)).toBe(1);
    expect(view.getBigUint64(S + 512, true)).toBe(9n);
    expect(view.getUint16(S + 520, true)).toBe(0);
    expect(reads).toBe(0);
  });
});
