/**
 * WASI preview1 conformance through the real CLI: each `wasi-p1-*.wasm` fixture is run as
 * `weft run --dir <fresh temp dir>::<guest> MODULE <guest>`, the way conformance runners drive
 * `wasmtime run`, and must print `ok` and exit 0 (else it prints the failing check). Each runs
 * three ways: the directory preopened as `/`, under a named guest path, and as `--dir HOST`
 * alone (guest path = host path), and must leave the directory empty. Each also runs in-process
 * against an empty `MemoryTree` preopened as `/`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryTree, WasiContext } from '../../host/wasi/index.ts';
import { weft, type CliResult } from '../helpers/cli.ts';
import { FIXTURES_DIST } from '../helpers/stack.ts';

/** `weft run` with an open stdin that never delivers: poll on it must rely on its timeout. */
function run(args: string[]): Promise<CliResult> {
  return weft(['run', ...args], { stdin: 'open' });
}

const modules = readdirSync(FIXTURES_DIST)
  .filter((f) => f.startsWith('wasi-p1-') && f.endsWith('.wasm'))
  .toSorted();

describe('WASI preview1 conformance', () => {
  it('has the fixtures built', () => {
    expect(modules.length).toBeGreaterThan(40);
  });

  for (const guest of ['/', '/fixture', undefined]) {
    // Each run has its own directory and process, so they can overlap; the assertions throw, so
    // the global `expect` is safe here (no snapshots).
    describe.concurrent(`preopen at ${guest ?? 'the host path'}`, () => {
      it.for(modules)('%s', async (file) => {
        const dir = mkdtempSync(join(tmpdir(), 'weft-p1-'));
        try {
          const map = guest === undefined ? dir : `${dir}::${guest}`;
          const r = await run(['--dir', map, join(FIXTURES_DIST, file), guest ?? dir]);
          expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
            code: 0,
            stdout: 'ok\n',
            stderr: '',
          });
          // Every check cleans up after itself.
          expect(readdirSync(dir)).toEqual([]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    });
  }

  describe('in an in-memory tree', () => {
    // A MemoryTree keeps a symlink with an absolute target (refused when followed), where a
    // HostDir refuses to make it; the rest of that check is covered by the runs above.
    const inMemory = modules.filter((f) => f !== 'wasi-p1-symlink-create.wasm');
    it.for(inMemory)('%s', async (file) => {
      const module = await WebAssembly.compile(readFileSync(join(FIXTURES_DIST, file)));
      const tree = MemoryTree.empty();
      const ctx = new WasiContext({
        args: [file, '/'],
        env: {},
        preopens: [{ guestPath: '/', tree }],
      });
      const code = ctx.start(new WebAssembly.Instance(module, ctx.imports));
      expect({ code, stdout: new TextDecoder().decode(ctx.stdout()) }).toEqual({
        code: 0,
        stdout: 'ok\n',
      });
      expect(tree.toEntries()).toEqual([]);
    });
  });
});
