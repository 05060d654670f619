/**
 * The live dashboard in a real browser (Debian's chromium, headless, driven by playwright-core):
 * the gateway's `/_weft/` shows the real lattice's host with its labels (a label holding markup is
 * shown as text), an application deployed while the page is open appears without a reload, and
 * requests through the gateway show as a non-zero rate. `weft ui` serves the same page on its own
 * port. A screenshot is kept in test/artifacts/dashboard.png.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Host } from '../../host/index.ts';
import { parseManifest } from '../../lattice/index.ts';
import type { DashboardSnapshot } from '../../providers/http-gateway/index.ts';
import { startService, type Service } from '../helpers/cli.ts';
import { ACTORS_DIST, ROOT, oneActorManifest, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const CHROMIUM = process.env['WEFT_CHROMIUM'] ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
const HOST_ID = 'DASHHOST';
/** A label a careless page would run as a script (and render in bold). */
const HOSTILE = '<script>window.weftInjected = 1</script><b>bold</b>';

let stack: Stack;
let host: Host;
let browser: Browser;
let page: Page;
const services: Service[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: \`npm run setup -- --test\` installs Debian's chromium (or set WEFT_CHROMIUM)`,
    );
  }
  stack = await startStack(inject('natsUrl'), { hosts: 0 });
  host = new Host({
    nats: stack.natsUrl.split(','),
    lattice: stack.lattice,
    log: stack.log,
    hostId: HOST_ID,
    workers: 2,
    heartbeatMs: 500,
    labels: { zone: 'east', note: HOSTILE },
  });
  await host.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
});

afterAll(async () => {
  await browser?.close();
  for (const s of services) await s.stop();
  await stack?.gateway.stop();
  await host?.stop();
  await stack?.client.close();
});

/** The text of the first element matching `selector` on the page, '' while there is none. */
async function text(selector: string, on: Page = page): Promise<string> {
  const el = on.locator(selector).first();
  return (await el.count()) === 0 ? '' : ((await el.textContent()) ?? '');
}

describe('the dashboard at /_weft/ on the gateway', () => {
  it('shows the host of the lattice with its labels, markup as text', async () => {
    await page.goto(`${stack.gateway.url}/_weft/`);
    await until(async () => (await text(`tr[data-host="${HOST_ID}"] .host-id`)) === HOST_ID, {
      name: 'the host on the page',
      timeoutMs: 15_000,
    });
    const labels = await text(`tr[data-host="${HOST_ID}"] .labels`);
    expect(labels).toContain('zone=east');
    expect(labels).toContain(`note=${HOSTILE}`);
    // Shown as text: no element, no script run.
    expect(await page.locator('td.labels b, td.labels script').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(1);
    expect(await page.evaluate(() => (globalThis as { weftInjected?: number }).weftInjected)).toBe(
      undefined,
    );
    expect(await text('#conn')).toBe('live');
    expect(await text('#lattice')).toBe(`lattice ${stack.lattice}`);
  });

  it('shows an application deployed while it is open, and its request rate', async () => {
    // Set in this document: still there after the deploy means the page was not reloaded.
    await page.evaluate(() => {
      (globalThis as { weftSameDocument?: boolean }).weftSameDocument = true;
    });
    expect(await text('tr[data-app="greeter"]')).toBe('');
    await stack.deploy(
      oneActorManifest({
        app: 'greeter',
        actor: 'hello',
        module: join(ACTORS_DIST, 'hello.wasm'),
        // A catch-all: the dashboard is served before any route all the same.
        routes: ['/...'],
      }),
    );
    await until(
      async () =>
        (await text('tr[data-app="greeter"] .state')) === 'running' &&
        (await text('tr[data-actor="greeter/hello"] .running')) === '1/1',
      { name: 'greeter running on the page', timeoutMs: 15_000 },
    );
    expect(await text('tr[data-app="greeter"] .version')).toBe('1.0.0');
    expect(await text('tr[data-actor="greeter/hello"] .placements')).toContain(HOST_ID);
    expect(await text('tr[data-route="* /..."]')).toContain('hello');
    expect(await text('tr[data-actor="greeter/hello"] .req')).toBe('0');

    for (let i = 0; i < 40; i++) {
      const r = await fetch(`${stack.gateway.url}/hello?name=dash${i}`);
      expect(r.status).toBe(200);
      await r.text();
    }
    let shown = '';
    await until(
      async () => {
        shown = await text('tr[data-actor="greeter/hello"] .req');
        return Number(shown) > 0;
      },
      { name: 'a non-zero request rate on the page', timeoutMs: 30_000 },
    );
    // 40 requests over a 10 s mean: between 0.1 and 4 req/s whatever the timing.
    expect(Number(shown)).toBeGreaterThan(0);
    expect(Number(shown)).toBeLessThanOrEqual(4.1);
    expect(Number(await text('tr[data-actor="greeter/hello"] td:nth-child(9)'))).toBe(40);
    expect(await text('.chart[data-actor="greeter/hello"] .legend .req')).not.toBe('0 req/s');
    expect(
      await page.evaluate(() => (globalThis as { weftSameDocument?: boolean }).weftSameDocument),
    ).toBe(true);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });

  it('answers its own paths whatever the routes, read-only', async () => {
    const state = (await (
      await fetch(`${stack.gateway.url}/_weft/api/state`)
    ).json()) as DashboardSnapshot;
    expect(state.hosts.map((h) => h.hostId)).toEqual([HOST_ID]);
    expect(state.actors.find((a) => a.key === 'greeter/hello')?.invocations).toBe(40);

    const page404 = await fetch(`${stack.gateway.url}/_weft/nothing-here`);
    expect(page404.status).toBe(404);
    expect(((await page404.json()) as { code: string }).code).toBe('WEFT_ERR_ROUTE_NOT_FOUND');
    const post = await fetch(`${stack.gateway.url}/_weft/`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    await post.text();
    const html = await fetch(`${stack.gateway.url}/_weft/`);
    expect(html.headers.get('content-security-policy')).toContain("default-src 'none'");
    await html.text();
    const redirect = await fetch(`${stack.gateway.url}/_weft`, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/_weft/');
    // Everything else still goes to the catch-all route.
    const app = await fetch(`${stack.gateway.url}/_weftx`);
    expect(app.status).toBe(200);
    await app.text();
  });

  it('is a path no manifest may route', () => {
    for (const path of ['/_weft/...', '/_weft', '/%5Fweft/x']) {
      const yaml = oneActorManifest({ actor: 'hello', module: 'hello.wasm', routes: [path] });
      expect(() => parseManifest(yaml, 'reserved.yaml')).toThrow(
        /spec\.actors\[0\]\.routes\[0\]\.path: route .* is under \/_weft\/, which every gateway keeps for its dashboard/,
      );
    }
  });
});

describe('weft ui', () => {
  it('serves the same page on its own port', async () => {
    const ui = await startService(
      [
        'ui',
        '--nats',
        stack.natsUrl,
        '--lattice',
        stack.lattice,
        '--listen',
        '127.0.0.1:0',
        '--log-level',
        'info',
      ],
      'dashboard connected to the lattice',
    );
    services.push(ui);
    const url = String(ui.lines().find((l) => l['msg'] === 'dashboard listening')?.['url']);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/_weft\/$/);
    const ui2 = await browser.newPage();
    try {
      await ui2.goto(url);
      await until(
        async () =>
          (await text(`tr[data-host="${HOST_ID}"] .host-id`, ui2)) === HOST_ID &&
          (await text('tr[data-app="greeter"] .version', ui2)) === '1.0.0',
        { name: 'host and app on the page of weft ui', timeoutMs: 15_000 },
      );
    } finally {
      await ui2.close();
    }
    const root = await fetch(url.replace('/_weft/', '/'), { redirect: 'manual' });
    expect(root.status).toBe(308);
    expect(root.headers.get('location')).toBe('/_weft/');
  });
});
