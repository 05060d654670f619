/**
 * Redeploying an application changes its actors in place on every host they run on: the new
 * version starts (a proxy actor: listens) before the old one stops, so requests keep being served
 * throughout, and a version that fails to start leaves the old one serving.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it, onTestFinished } from 'vitest';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import {
  ErrorCode,
  WeftError,
  appStatus,
  deployApplication,
  parseManifest,
} from '../../lattice/index.ts';
import { FIXTURES_DIST, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';
import { weft } from '../helpers/cli.ts';

let stack: Stack;

const manifest = (version: string): string => `apiVersion: weft/v1
kind: Application
metadata: { name: versions, version: ${version} }
spec:
  actors:
    - name: env-dump
      module: ${join(FIXTURES_DIST, 'env-dump.wasm')}
      env: { APP_VERSION: "${version}" }
      instances: 2
      routes: [{ path: /env/... }]
`;

/** A proxy actor on both hosts; `mode: never` is a version that never listens. */
const rolling = (version: string, mode = 'normal'): string => `apiVersion: weft/v1
kind: Application
metadata: { name: rolling, version: ${version} }
spec:
  actors:
    - name: gate
      module: ${join(FIXTURES_DIST, 'proxy-misbehave.wasm')}
      mode: proxy
      instances: 2
      env: { MODE: ${mode}, APP_VERSION: "${version}" }
      limits: { startTimeoutMs: 1500 }
      routes: [{ path: /ok }]
`;

/** GET `path` in a loop until stopped; every status seen. */
function loadOn(path: string): { statuses: number[]; stop(): Promise<void> } {
  const statuses: number[] = [];
  const state = { on: true };
  const loop = (async () => {
    for (let i = 0; i < 20_000 && state.on; i++) {
      const res = await fetch(`${stack.gateway.url}${path}`);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
  })();
  return {
    statuses,
    async stop() {
      state.on = false;
      await loop;
    },
  };
}

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'), { hosts: 2 });
  await stack.deploy(manifest('1.0.0'));
});

afterAll(async () => {
  await stack?.stop();
});

it('serves every request while a new version replaces the old one on both hosts', async () => {
  const load = loadOn('/env/');
  onTestFinished(() => load.stop());
  await until(() => load.statuses.length > 20, { name: 'load running' });
  await stack.deploy(manifest('2.0.0'));
  await until(
    async () =>
      (await (await fetch(`${stack.gateway.url}/env/`)).text()).includes('APP_VERSION=2.0.0'),
    { name: 'version 2 served', timeoutMs: 10_000 },
  );
  const during = load.statuses.length;
  await until(() => load.statuses.length > during + 20, { name: 'load after update' });
  await load.stop();
  expect(load.statuses.filter((s) => s !== 200)).toEqual([]);
  const st = await appStatus(stack.client, 'versions');
  expect(st.actors[0]!.hosts.map((h) => h.state)).toEqual(['running', 'running']);
});

it('rolls a proxy actor on every host under load; a version that cannot start leaves the old serving', async () => {
  await stack.deploy(rolling('1.0.0'));
  const load = loadOn('/ok');
  onTestFinished(() => load.stop());
  await until(() => load.statuses.length > 20, { name: 'load running' });
  await stack.deploy(rolling('2.0.0'));
  const v2 = await until(
    async () => {
      const st = await appStatus(stack.client, 'rolling');
      const gate = st.actors[0]!;
      return st.version === '2.0.0' && gate.running === 2 ? gate : undefined;
    },
    { name: 'version 2 running on both hosts', timeoutMs: 15_000 },
  );
  expect(v2.hosts).toHaveLength(2);
  let during = load.statuses.length;
  await until(() => load.statuses.length > during + 20, { name: 'load after update' });

  // Version 3 never listens: each host keeps version 2 serving and says why.
  const file = join(await mkdtemp(join(tmpdir(), 'weft-app-')), 'rolling.yaml');
  await writeFile(file, rolling('3.0.0', 'never'));
  await deployApplication(stack.client, parseManifest(await readFile(file, 'utf8'), file), file);
  const failed = await until(
    async () => {
      const st = await appStatus(stack.client, 'rolling');
      const gate = st.actors[0]!;
      return st.state === 'failed' && gate.hosts.every((h) => h.error !== undefined)
        ? gate
        : undefined;
    },
    { name: 'the failed update reported', timeoutMs: 15_000 },
  );
  for (const h of failed.hosts) {
    expect(h.state).toBe('running (old version)');
    expect(h.error).toMatch(/update to .* failed: .*did not listen on port 80 within 1500 ms/);
  }
  during = load.statuses.length;
  await until(() => load.statuses.length > during + 20, { name: 'load after the failed update' });
  await load.stop();
  expect(
    load.statuses.filter((s) => s !== 200).slice(0, 5),
    `${load.statuses.length} requests`,
  ).toEqual([]);
});

it('lists the versions kept, and rolls back to one of them from the CLI', async () => {
  const nats = ['--nats', stack.natsUrl, '--lattice', stack.lattice];
  const history = await weft(['app', 'history', 'versions', ...nats]);
  expect(history.code).toBe(0);
  expect(history.stdout).toMatch(/1\.0\.0/);
  expect(history.stdout).toMatch(/2\.0\.0/);
  // The current revision is starred: version 2.
  expect(history.stdout).toMatch(/\d+ \*\s+2\.0\.0/);

  const back = await weft(['deploy', 'versions', '--version', '1.0.0', ...nats]);
  expect(back.stderr).toBe('');
  expect(back.stdout).toMatch(/deployed versions@1\.0\.0 again/);
  expect(back.stdout).toMatch(/ready in \d+ ms/);
  await until(
    async () =>
      (await (await fetch(`${stack.gateway.url}/env/`)).text()).includes('APP_VERSION=1.0.0'),
    { name: 'version 1 served again', timeoutMs: 10_000 },
  );
  const json = JSON.parse(
    (await weft(['app', 'history', 'versions', '--json', ...nats])).stdout,
  ) as {
    app?: { version: string };
  }[];
  expect(json.map((h) => h.app?.version)).toEqual(['1.0.0', '2.0.0', '1.0.0']);

  const missing = await weft(['deploy', 'versions', '--version', '9.9.9', ...nats]);
  expect(missing.code).not.toBe(0);
  expect(missing.stderr).toMatch(/no version 9\.9\.9 kept \(kept: 1\.0\.0, 2\.0\.0/);
});

it('refuses an application that routes a path another owns, or names a module not stored', async () => {
  const other = manifest('1.0.0')
    .replace('name: versions', 'name: intruder')
    .replace('name: env-dump', 'name: env-copy');
  const clash = await stack.deploy(other).catch((e: unknown) => e);
  expect(clash).toBeInstanceOf(WeftError);
  expect((clash as WeftError).code).toBe(ErrorCode.ManifestInvalid);
  expect((clash as WeftError).message).toMatch(
    /route \* \/env\/\.\.\. of actor 'env-copy' is already routed to 'versions\/env-dump'/,
  );

  const missing = manifest('1.0.0')
    .replace('name: versions', 'name: ghost')
    .replace('name: env-dump', 'name: ghost')
    .replace(/module: .*/, `module: sha256:${'0'.repeat(64)}`)
    .replace('/env/...', '/ghost/...');
  const gone = await stack.deploy(missing).catch((e: unknown) => e);
  expect((gone as WeftError).code).toBe(ErrorCode.ArtifactNotFound);
  expect((gone as WeftError).message).toMatch(/module sha256:0{64} is not in the artifact store/);
  // Nothing of either was stored.
  expect(
    (await weft(['get', 'apps', '--json', '--nats', stack.natsUrl, '--lattice', stack.lattice]))
      .stdout,
  ).not.toMatch(/intruder|ghost/);
});
