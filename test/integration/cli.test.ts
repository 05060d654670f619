/**
 * The CLI against a real lattice: push, deploy, get, call, undeploy, and the bad inputs that must
 * fail clearly and store nothing.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AppStore, type DeployedApp } from '../../lattice/index.ts';
import { weft } from '../helpers/cli.ts';
import { ACTORS_DIST, ROOT, oneActorManifest, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

let stack: Stack;
let dir: string;
let g: string[];

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'));
  dir = await mkdtemp(join(tmpdir(), 'weft-cli-'));
  g = ['--nats', stack.natsUrl, '--lattice', stack.lattice];
});

afterAll(async () => {
  await stack?.stop();
});

describe('weft CLI', () => {
  it('push stores a module by digest and tags it', async () => {
    const r = await weft(['push', join(ACTORS_DIST, 'hello.wasm'), '--tag', 'hello:v1', ...g]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64} \(tagged hello:v1\)/);
  });

  it('push refuses a file that is not Wasm and stores nothing', async () => {
    const bad = join(dir, 'not.wasm');
    await writeFile(bad, '#!/bin/sh\necho not wasm\n');
    const r = await weft(['push', bad, '--tag', 'bad:v1', ...g]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not.wasm is not a WebAssembly module');
    expect(r.stderr).toContain('WEFT_ERR_MODULE_INVALID');
    // The tag was not written.
    const m = join(dir, 'tagref.yaml');
    await writeFile(m, oneActorManifest({ actor: 'tagged', module: 'bad:v1' }));
    const d = await weft(['deploy', m, '--no-wait', ...g]);
    expect(d.code).toBe(1);
    expect(d.stderr).toContain("no artifact is tagged 'bad:v1'");
  });

  it('deploy refuses a manifest whose module is not Wasm, storing no application', async () => {
    const bad = join(dir, 'fake.wasm');
    await writeFile(bad, 'GIF89a');
    const m = join(dir, 'fake.yaml');
    await writeFile(m, oneActorManifest({ app: 'fakeapp', actor: 'fake', module: bad }));
    const r = await weft(['deploy', m, ...g]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('fake.wasm is not a WebAssembly module');
    expect(await (await AppStore.open(stack.client)).get('fakeapp')).toBeUndefined();
  });

  it('deploy names the file, line, column and path of manifest errors', async () => {
    const cases: [string, string, RegExp][] = [
      ['syntax.yaml', 'apiVersion: weft/v1\nkind: [Application\n', /syntax\.yaml:\d+:\d+/],
      [
        'unknown.yaml',
        oneActorManifest({ actor: 'u', module: './u.wasm', extra: '\n      colour: blue' }),
        /unknown\.yaml:\d+:\d+.*spec\.actors\[0\].*colour/,
      ],
      [
        'missing.yaml',
        'apiVersion: weft/v1\nkind: Application\nmetadata: { name: m, version: 1.0.0 }\nspec:\n  actors:\n    - name: m\n',
        /missing\.yaml:\d+:\d+.*spec\.actors\[0\].*module/,
      ],
      [
        'type.yaml',
        oneActorManifest({
          actor: 't',
          module: './t.wasm',
          extra: '\n      limits: { timeoutMs: ten }',
        }),
        /type\.yaml:\d+:\d+.*spec\.actors\[0\]\.limits\.timeoutMs/,
      ],
    ];
    for (const [name, text, re] of cases) {
      const f = join(dir, name);
      await writeFile(f, text);
      const r = await weft(['deploy', f, ...g]);
      expect(r.code, name).toBe(1);
      expect(r.stderr, name).toMatch(re);
      expect(r.stderr, name).toContain('WEFT_ERR_MANIFEST_INVALID');
    }
  });

  it('deploys, lists, calls over NATS and undeploys', async () => {
    const m = join(dir, 'hello.yaml');
    await writeFile(
      m,
      oneActorManifest({ app: 'greeter', actor: 'greet', module: join(ACTORS_DIST, 'hello.wasm') }),
    );
    const d = await weft(['deploy', m, ...g]);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expect(d.stdout).toContain('deployed greeter@1.0.0: greet');
    expect(d.stdout).toMatch(/ready in \d+ ms/);

    const apps = await weft(['get', 'apps', '--json', ...g]);
    expect((JSON.parse(apps.stdout) as DeployedApp[]).map((a) => a.name)).toContain('greeter');
    const hosts = await weft(['get', 'hosts', ...g]);
    expect(hosts.stdout).toContain(stack.hosts[0]!.hostId);
    expect(hosts.stdout).toMatch(/^ID\s+LABELS\s+STATE\s+UPTIME\s+ACTORS/m);
    expect(hosts.stdout).toMatch(new RegExp(`^${stack.hosts[0]!.hostId}\\s+\\S+\\s+ready\\s`, 'm'));
    const actors = await weft(['get', 'actors', '--json', ...g]);
    expect(JSON.parse(actors.stdout)).toContainEqual(
      expect.objectContaining({ name: 'greet', state: 'running' }),
    );
    const routes = await weft(['get', 'routes', ...g]);
    expect(routes.stdout).toContain('/greet/...');

    const call = await weft(['call', 'greet', '--path', '/greet?name=Grace', ...g]);
    expect(call.code).toBe(0);
    expect(call.stdout).toContain('Grace');

    const u = await weft(['undeploy', 'greeter', ...g]);
    expect(u.code).toBe(0);
    await until(
      async () => (await weft(['call', 'greet', ...g])).stderr.includes('WEFT_ERR_NO_HOST'),
      {
        name: 'greet stopped',
        timeoutMs: 10_000,
      },
    );
    const again = await weft(['undeploy', 'greeter', ...g]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('WEFT_ERR_APP_NOT_FOUND');
  });

  it('validates the example manifest', async () => {
    const r = await weft(['app', 'validate', join(ROOT, 'actors', 'app.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('accepts a grant of every host, with a warning on stderr', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'weft-caps-')), 'wide.yaml');
    await writeFile(
      file,
      `apiVersion: weft/v1
kind: Application
metadata: { name: wide, version: 1.0.0 }
spec:
  actors:
    - name: wide
      module: ${join(ROOT, 'actors', 'dist', 'fetch.wasm')}
      capabilities: { outboundHttp: ['*://*:*'] }
`,
    );
    const r = await weft(['app', 'validate', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wide\.yaml: valid/);
    expect(r.stderr).toMatch(
      /^weft: warning: actor 'wide': capabilities\.outboundHttp '\*:\/\/\*:\*' grants every host/,
    );
  });
});
