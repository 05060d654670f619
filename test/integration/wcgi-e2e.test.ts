/**
 * The whole path over real HTTP: client → gateway → NATS → host → fresh Wasm instance → back,
 * with the example actors built from source in actors/.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ACTORS_DIST, ROOT, startStack, type Stack } from '../helpers/stack.ts';
import { readFile, readdir } from 'node:fs/promises';

let stack: Stack;
let base: string;

beforeAll(async () => {
  stack = await startStack(inject('natsUrl'));
  const yaml = (await readFile(join(ROOT, 'actors', 'app.yaml'), 'utf8'))
    .replaceAll('./dist/', `${ACTORS_DIST}/`)
    .replaceAll('./catalog/data', join(ROOT, 'actors', 'catalog', 'data'))
    // fetch calls the gateway it is served by.
    .replaceAll('http://127.0.0.1:8080', stack.gateway.url);
  await stack.deploy(yaml);
  base = stack.gateway.url;
});

afterAll(async () => {
  await stack?.stop();
});

describe('example application over HTTP', () => {
  it('hello greets by name', async () => {
    const res = await fetch(`${base}/hello?name=Ada`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toContain('Ada');
    expect(res.headers.get('x-weft-invocation-id')).toBeTruthy();
  });

  it('echo reflects method, path, query, headers and body', async () => {
    const res = await fetch(`${base}/echo/some/where?x=1&y=two`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-custom': 'abc' },
      body: 'hello body',
    });
    expect(res.status).toBe(200);
    const j = (await res.json()) as Record<string, unknown> & { headers: Record<string, string> };
    expect(j['method']).toBe('POST');
    expect(j['path']).toBe('/echo/some/where');
    expect(j['pathInfo']).toBe('/some/where');
    expect(j['scriptName']).toBe('/echo');
    expect(j['query']).toBe('x=1&y=two');
    expect(j['body']).toBe('hello body');
    expect(j.headers['x-custom']).toBe('abc');
    expect(j.headers['content-type']).toBe('text/plain');
    expect(j.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('markdown renders HTML', async () => {
    const res = await fetch(`${base}/markdown`, {
      method: 'POST',
      body: '# Title\n\nSome *text* & more',
    });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<h1>Title</h1>');
    expect(html).toContain('<em>text</em>');
    expect(html).toContain('&amp;');
  });

  it('catalog serves JSON from its bundled data file', async () => {
    const res = await fetch(`${base}/api/books?limit=3`);
    expect(res.status).toBe(200);
    const books = (await res.json()) as { id: unknown; title: string }[];
    expect(books.length).toBe(3);
    const one = await fetch(`${base}/api/books/${String(books[0]!.id)}`);
    expect(one.status).toBe(200);
    expect(((await one.json()) as { title: string }).title).toBe(books[0]!.title);
    const missing = await fetch(`${base}/api/books/999999`);
    expect(missing.status).toBe(404);
  });

  it('streams a 20 MiB upload and a 20 MiB response byte-exact', async () => {
    const body = new Uint8Array(20 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 13)) & 0xff;
    const res = await fetch(`${base}/echo?raw=1`, { method: 'POST', body });
    expect(res.status).toBe(200);
    const out = new Uint8Array(await res.arrayBuffer());
    expect(out.length).toBe(body.length);
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    expect(sha(out)).toBe(sha(body));

    const big = await fetch(`${base}/echo?bytes=${20 * 1024 * 1024}`);
    expect(big.status).toBe(200);
    const bytes = new Uint8Array(await big.arrayBuffer());
    expect(bytes.length).toBe(20 * 1024 * 1024);
    expect(bytes[1000]).toBe(1000 % 251);
    expect(bytes[bytes.length - 1]).toBe((bytes.length - 1) % 251);
  });

  it('answers 413 for a body over the route limit', async () => {
    const body = new Uint8Array(11 * 1024 * 1024);
    const res = await fetch(`${base}/markdown`, { method: 'POST', body });
    expect(res.status).toBe(413);
    const j = (await res.json()) as { code: string; statusCode: number };
    expect(j.code).toBe('WEFT_ERR_REQUEST_TOO_LARGE');
    expect(j.statusCode).toBe(413);
  });

  it('answers 404 JSON for an unknown route', async () => {
    const res = await fetch(`${base}/nowhere/at/all`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const j = (await res.json()) as { code: string; message: string };
    expect(j.code).toBe('WEFT_ERR_ROUTE_NOT_FOUND');
  });

  it('httpd, a proxy actor, serves beside the WCGI actors in the same application', async () => {
    const res = await fetch(`${base}/proxy/hello?name=mesh`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Hello, mesh!\n');
    const stats = (await (await fetch(`${base}/proxy/stats`)).json()) as { requests: number };
    expect(stats.requests).toBeGreaterThanOrEqual(2);
  });

  it('fetch calls the gateway over HTTP, and nothing it is not granted', async () => {
    const res = await fetch(`${base}/fetch?path=${encodeURIComponent('/hello?name=loop')}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fetch-made')).toBe('1');
    expect(await res.text()).toBe('Hello, loop!\n');
    const denied = await fetch(`${base}/fetch?url=${encodeURIComponent('http://example.com/')}`);
    expect(denied.status).toBe(502);
    expect(await denied.text()).toMatch(/^weft_http error -1 after 0 request\(s\): /);
  });

  it('covers every actor in actors/ (deployed by app.yaml and tested above, or tested alone)', async () => {
    const tested = ['hello', 'echo', 'markdown', 'catalog', 'httpd', 'fetch'];
    // AssemblyScript (its build needs npm's assemblyscript, which the image's C stage lacks):
    // not in app.yaml, tested by test/integration/<name>.test.ts.
    const testedAlone = ['fetch-as'];
    const libraries = ['dist', 'include', 'assemblyscript'];
    const dirs = (await readdir(join(ROOT, 'actors'), { withFileTypes: true }))
      .filter((d) => d.isDirectory() && !libraries.includes(d.name))
      .map((d) => d.name)
      .toSorted();
    expect(dirs).toEqual([...tested, ...testedAlone].toSorted());
    const inventory = stack.hosts[0]!.inventory().actors.map((a) => a.name);
    for (const name of tested) expect(inventory).toContain(name);
    const tests = await readdir(join(ROOT, 'test', 'integration'));
    for (const name of testedAlone) expect(tests).toContain(`${name}.test.ts`);
  });
});
