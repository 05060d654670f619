/**
 * Redeploying an application changes its actors in place: the new version starts before the old
 * one stops, so requests keep being served throughout.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { FIXTURES_DIST, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

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
