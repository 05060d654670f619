/**
 * The CLI as a user first meets it: `weft --help` and `weft CMD --help` for every command (which
 * print and exit, never start a service), mistakes that say what to do next, and the shell
 * completion scripts, run in a real bash (and zsh, where installed).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { COMMANDS, CommandGroup, commandHelp } from '../../bin/commands.ts';
import { freePort } from '../../bin/nats-server.ts';
import { weft, type CliResult } from '../helpers/cli.ts';
import { ROOT } from '../helpers/stack.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-cli-help-'));
});

/** Run `fn` over `items`, `n` at a time (the machine is shared: no stampede of processes). */
async function limited<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += n) {
    out.push(...(await Promise.all(items.slice(i, i + n).map(fn))));
  }
  return out;
}

const noStack = (r: CliResult) => expect(r.stderr).not.toMatch(/^\s+at /m);

describe('weft --help', () => {
  it('lists every command once, by group, with examples', async () => {
    const r = await weft(['--help']);
    expect(r.code).toBe(0);
    for (const g of new Set(COMMANDS.map((c) => c.group))) expect(r.stdout).toContain(`\n${g}\n`);
    expect(Object.values(CommandGroup)).toContain(CommandGroup.Security);
    for (const c of COMMANDS)
      expect(r.stdout).toMatch(
        new RegExp(`^  ${c.name} +${c.summary.slice(0, 20).replace(/[().*+?[\]]/g, '\\$&')}`, 'm'),
      );
    expect(r.stdout).toContain('Examples\n  weft up');
    // No command: the same help, and exit 2.
    const bare = await weft([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe(r.stdout);
  });

  it("weft CMD --help prints the command's help and exits, for every command", async () => {
    const results = await limited(
      COMMANDS.map((c) => c.name),
      3,
      async (name) => ({
        name,
        r: await weft([name, '--help'], { timeoutMs: 30_000 }),
      }),
    );
    for (const { name, r } of results) {
      expect({ name, code: r.code, stderr: r.stderr }).toEqual({ name, code: 0, stderr: '' });
      expect(r.stdout).toBe(commandHelp(name));
      expect(r.stdout).toContain(`Usage\n  weft ${name}`);
    }
    const viaHelp = await weft(['help', 'deploy']);
    expect(viaHelp.stdout).toBe(commandHelp('deploy'));
    const unknown = await weft(['help', 'deplyo']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("did you mean 'deploy'?");
  }, 240_000);
});

describe('mistakes say what to do next', () => {
  it('an unknown command or option: the closest one, and where the list is', async () => {
    const cmd = await weft(['gt', 'hosts']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toBe(
      "weft: unknown command 'gt'; did you mean 'get'?\n  `weft --help` lists the commands\n",
    );
    // A host with a misspelt flag stops at once instead of starting.
    const opt = await weft(['host', '--lable', 'zone=east']);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toBe(
      "weft host: unknown option '--lable'; did you mean --label?\n  `weft host --help` lists its options\n",
    );
    const missing = await weft(['get', 'hosts', '--nats']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('weft get: --nats needs a value');
  });

  it('no NATS: start one with weft up, or pass --nats', async () => {
    const port = await freePort();
    const r = await weft(['get', 'hosts', '--nats', `nats://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot connect to NATS at nats://127.0.0.1:${port}`);
    expect(r.stderr).toContain('(WEFT_ERR_LATTICE_UNAVAILABLE)');
    expect(r.stderr).toContain('`weft up`');
    expect(r.stderr).toContain('--nats URL');
    // A wrong kind is refused before anything connects.
    const kind = await weft(['get', 'horses', '--nats', `nats://127.0.0.1:${port}`]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain("weft get: expected hosts, apps, actors, routes, got 'horses'");
  });

  it('an application that is not there: weft get apps', async () => {
    const g = ['--nats', inject('natsUrl'), '--lattice', `t-${randomUUID()}`];
    const r = await weft(['status', 'nope', ...g]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no application named 'nope'");
    expect(r.stderr).toContain('(WEFT_ERR_APP_NOT_FOUND)');
    expect(r.stderr).toContain('`weft get apps`');
  });

  it('a bad manifest: weft app validate and the reference; a missing file: which', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(
      bad,
      'apiVersion: weft/v1\nkind: Application\nmetadata: { name: bad, version: "1" }\nspec:\n  actors:\n    - name: a\n      module: ./a.wasm\n      colour: blue\n',
    );
    const g = ['--nats', inject('natsUrl'), '--lattice', `t-${randomUUID()}`];
    const r = await weft(['deploy', bad, ...g]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:8:7: spec\.actors\[0\]/);
    expect(r.stderr).toContain('`weft app validate FILE.yaml`');
    expect(r.stderr).toContain('docs/manifest-reference.md');
    const gone = await weft(['app', 'validate', join(dir, 'gone.yaml')]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`weft: cannot read ${join(dir, 'gone.yaml')}: no such file\n`);
    noStack(gone);
  });
});

/** COMPREPLY after completing `line` (a trailing space completes a new word) in bash. */
function bashComplete(script: string, line: string): string[] {
  const words = line.split(' ');
  const program = [
    script,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    '_weft',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', program], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  return r.stdout.split('\n').filter(Boolean);
}

describe('weft completion', () => {
  it('bash: a valid script that completes commands, kinds, flags and values', async () => {
    const r = await weft(['completion', 'bash']);
    expect(r.code).toBe(0);
    const file = join(dir, 'weft.bash');
    await writeFile(file, r.stdout);
    const syntax = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    expect(syntax.stderr).toBe('');
    expect(syntax.status).toBe(0);
    expect(bashComplete(r.stdout, 'weft ge')).toEqual(['get']);
    expect(bashComplete(r.stdout, 'weft get ')).toEqual(['hosts', 'apps', 'actors', 'routes']);
    expect(bashComplete(r.stdout, 'weft get h')).toEqual(['hosts']);
    expect(bashComplete(r.stdout, 'weft app v')).toEqual(['validate']);
    expect(bashComplete(r.stdout, 'weft host --la').toSorted()).toEqual(['--label', '--lattice']);
    expect(bashComplete(r.stdout, 'weft up --cluster ')).toEqual(['3', '5']);
    expect(bashComplete(r.stdout, 'weft deploy actors/ap')).toEqual(['actors/app.yaml']);
    // After the first word of `get`, no more kinds; after a flag's value, the words go on.
    expect(bashComplete(r.stdout, 'weft get hosts ')).toEqual([]);
    expect(bashComplete(r.stdout, 'weft get --nats x ')).toEqual([
      'hosts',
      'apps',
      'actors',
      'routes',
    ]);
    // Every command's own flags.
    for (const c of COMMANDS) {
      const flags = bashComplete(r.stdout, `weft ${c.name} --`);
      for (const o of Object.keys(c.options)) expect(flags, `${c.name} --${o}`).toContain(`--${o}`);
      expect(flags).toContain('--help');
    }
  });

  // npm test installs zsh (scripts/ensure-tools.mjs --test).
  it('zsh: a valid script', async () => {
    const r = await weft(['completion', 'zsh']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('#compdef weft\n')).toBe(true);
    const file = join(dir, '_weft');
    await writeFile(file, r.stdout);
    const syntax = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    expect(syntax.stderr).toBe('');
    expect(syntax.status).toBe(0);
  });

  it('refuses another shell', async () => {
    const r = await weft(['completion', 'fish']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("weft completion: expected bash or zsh, got 'fish'");
  });
});
