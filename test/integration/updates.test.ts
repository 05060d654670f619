/**
 * Redeploying an application changes its actors in place: the new version starts before the old
 * one stops, so requests keep being served throughout.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { ErrorCode, WeftError } from '../../lattice/index.ts';
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
      routes: [{ path: /env/... }]
`;

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'));
  await stack.deploy(manifest('1.0.0'));
});

afterAll(async () => {
  await stack?.stop();
});

it('serves every request while a new version replaces the old one', async () => {
  const statuses: number[] = [];
  const loadState = { stop: false };
  const load = (async () => {
    for (let i = 0; i < 5000 && !loadState.stop; i++) {
      const res = await fetch(`${stack.gateway.url}/env/`);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
  })();
  await until(() => statuses.length > 20, { name: 'load running' });
  await stack.deploy(manifest('2.0.0'));
  await until(
    async () =>
      (await (await fetch(`${stack.gateway.url}/env/`)).text()).includes('APP_VERSION=2.0.0'),
    { name: 'version 2 served', timeoutMs: 10_000 },
  );
  const during = statuses.length;
  await until(() => statuses.length > during + 20, { name: 'load after update' });
  loadState.stop = true;
  await load;
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
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
