/**
 * Progress on long work: `weft push` of a large module and `weft deploy --wait` draw a bar that
 * reaches 100%, shown with --progress when stderr is not a terminal (as here).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uleb128 } from '../../lattice/index.ts';
import { weft } from '../helpers/cli.ts';
import { ACTORS_DIST, oneActorManifest, startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
let dir: string;
let g: string[];
let big: string;

/** hello.wasm with a custom section of `bytes` appended: a valid module that large. */
async function paddedModule(bytes: number): Promise<string> {
  const hello = await readFile(join(ACTORS_DIST, 'hello.wasm'));
  const name = new TextEncoder().encode('padding');
  const body = new Uint8Array(1 + name.length + bytes);
  body[0] = name.length;
  body.set(name, 1);
  const file = join(dir, 'big.wasm');
  await writeFile(file, Buffer.concat([hello, Buffer.from([0, ...uleb128(body.length)]), body]));
  return file;
}

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'));
  dir = await mkdtemp(join(tmpdir(), 'weft-progress-'));
  g = ['--nats', stack.natsUrl, '--lattice', stack.lattice];
  big = await paddedModule(6 * 1024 * 1024);
});

afterAll(async () => {
  await stack?.stop();
});

describe('progress', () => {
  it('push --progress shows a bar up to 100% of the module, then the digest alone on stdout', async () => {
    const r = await weft(['push', big, '--progress', ...g]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.at(-1)).toMatch(/^pushing .*big\.wasm \[#{24}\] 100% {2}6\.0 of 6\.0 MiB$/);
    expect(lines.some((l) => / \[#*-+\] +\d+% /.test(l))).toBe(true);
  });

  it('without a terminal and without --progress, push writes nothing on stderr', async () => {
    const r = await weft(['push', big, ...g]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('deploy --wait --progress shows the push and the instances coming up, then ready', async () => {
    const m = join(dir, 'app.yaml');
    await writeFile(m, oneActorManifest({ app: 'progress', actor: 'big', module: big }));
    const r = await weft(['deploy', m, '--wait', '--progress', ...g]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/deployed progress@[^:]+: big\nready in \d+ ms\n/);
    expect(r.stderr).toMatch(/instances running \[#{24}\] 100% {2}1 of 1\n/);
  });

  it('refuses --wait with --no-wait', async () => {
    const r = await weft(['deploy', join(dir, 'app.yaml'), '--wait', '--no-wait', ...g]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--wait and --no-wait cannot both be given');
  });
});
