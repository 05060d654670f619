/**
 * `npm run bench`: side by side in one run, on 127.0.0.1 only, bounded in time.
 *   (a) GET /hello through gateway + NATS + host (WCGI, a fresh instance per request)
 *   (b) GET /proxy/hello through gateway + NATS + host to a proxy actor: one long-lived WASIX
 *       instance of actors/httpd serving HTTP on its own socket
 *   (c) a plain node:http hello server
 *   (d) the same hello C program compiled natively under lighttpd's mod_cgi (classic CGI)
 *   (e) GET /fetch through the lattice: WCGI whose guest makes one outbound HTTP call (weft_http,
 *       policy-checked) per request to the node:http server of (c)
 *   (f) the lattice floor: gateway + NATS + a JavaScript responder with no Wasm behind it
 *       (bench/floor.ts), the ceiling of any actor's row
 * plus instance start (µs, compiled module cached) and deploy → first 200 (ms), and last a
 * scale-out table (bench/scale.ts): 1, 2, 3 hosts behind one gateway, and SIGKILL failover time.
 * Prints a table and writes bench/results/latest.json.
 * Each row is loaded WEFT_BENCH_ROUNDS times (default 5), interleaved, for WEFT_BENCH_SECONDS
 * each (default 5), at WEFT_BENCH_CONNECTIONS connections (default 50); the median is kept.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { WasiContext } from '../host/wasi/index.ts';
import {
  connectLattice,
  deployApplication,
  parseManifest,
  type LatticeClient,
} from '../lattice/index.ts';
import { startNatsServer } from '../bin/nats-server.ts';
import { Procs, log, sleep } from './procs.ts';
import { scaleOut } from './scale.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env['WEFT_BENCH_SECONDS'] ?? 5);
const CONNECTIONS = Number(process.env['WEFT_BENCH_CONNECTIONS'] ?? 50);
const ROUNDS = Number(process.env['WEFT_BENCH_ROUNDS'] ?? 5);
/**
 * Long-lived instances of the proxy actor (WEFT_BENCH_PROXY_INSTANCES, default 2): as many as the
 * WCGI row's host has worker threads, so both rows may use both cores of this machine.
 */
const PROXY_INSTANCES = Number(process.env['WEFT_BENCH_PROXY_INSTANCES'] ?? 2);
const HELLO_WASM = join(root, 'actors', 'dist', 'hello.wasm');
const HTTPD_WASM = join(root, 'actors', 'dist', 'httpd.wasm');
const FETCH_WASM = join(root, 'actors', 'dist', 'fetch.wasm');
const HELLO_CGI = join(root, 'bench', '.build', 'hello.cgi');

/** A row to load: its URL, or why it is skipped. */
interface Target {
  name: string;
  url?: string;
  skip?: string;
}

interface Row {
  name: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  note?: string;
}

/** Every process the bench starts, stopped at the end. */
const procs = new Procs();

async function load(name: string, url: string): Promise<Row> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS });
  const bad = r.non2xx + r.errors + r.timeouts;
  const row: Row = {
    name,
    rps: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
  };
  if (bad > 0) row.note = `${bad} failed of ${r.requests.total}`;
  log(
    `  ${name}: ${row.rps} req/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms${row.note ? ` (${row.note})` : ''}`,
  );
  return row;
}

async function instanceStartUs(): Promise<number> {
  const mod = await WebAssembly.compile(await readFile(HELLO_WASM));
  const env = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: 'GET',
    QUERY_STRING: 'name=bench',
    SCRIPT_NAME: '/hello',
    PATH_INFO: '',
    SERVER_NAME: '127.0.0.1',
    SERVER_PORT: '8080',
    SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_SOFTWARE: 'weft',
    REMOTE_ADDR: '127.0.0.1',
  };
  const samples: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t0 = performance.now();
    const ctx = new WasiContext({ args: ['hello'], env, stdin: new Uint8Array(0) });
    new WebAssembly.Instance(mod, ctx.imports);
    samples.push((performance.now() - t0) * 1000);
  }
  const tail = samples.slice(500).sort((a, b) => a - b);
  return Math.round(tail[Math.floor(tail.length / 2)]! * 10) / 10;
}

/** Classic CGI: the native hello under lighttpd's mod_cgi, or why that row is skipped. */
async function startLighttpd(): Promise<{ url?: string; skip?: string }> {
  if (spawnSync('lighttpd', ['-v']).status !== 0) {
    return { skip: 'lighttpd is not installed (apt-get install lighttpd)' };
  }
  if (!existsSync(HELLO_CGI)) return { skip: 'no native build (node actors/build.ts --native)' };
  const port = 20000 + Math.floor(Math.random() * 20000);
  const cdir = await mkdtemp(join(tmpdir(), 'weft-lighttpd-'));
  await mkdir(join(cdir, 'www'), { recursive: true });
  const conf = join(cdir, 'lighttpd.conf');
  await writeFile(
    conf,
    [
      'server.modules = ("mod_cgi", "mod_alias")',
      `server.document-root = "${join(cdir, 'www')}"`,
      `server.port = ${port}`,
      'server.bind = "127.0.0.1"',
      `server.errorlog = "${join(cdir, 'error.log')}"`,
      'server.max-connections = 1024',
      `alias.url = ("/hello" => "${HELLO_CGI}")`,
      'cgi.assign = ("" => "")',
    ].join('\n'),
  );
  procs.adopt(spawn('lighttpd', ['-D', '-f', conf], { stdio: 'ignore' }));
  const url = `http://127.0.0.1:${port}/hello?name=bench`;
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    if ((await fetch(url).catch(() => undefined))?.status === 200) return { url };
  }
  return { skip: 'lighttpd did not start' };
}

/**
 * A WASI-heavy command: write, list, read back and remove 10,000 small files, under
 * `weft run --dir` and compiled natively, on the same file system. Median wall time of 3 runs
 * each; the weft figure includes starting Node and compiling the module.
 */
async function wasiFilesRow(): Promise<
  { weftMs: number; nativeMs: number; ratio: number } | { skipped: string }
> {
  // The same C source as the test fixture that `npm run build:actors` compiles to Wasm.
  const src = join(root, 'test', 'fixtures', 'actors', 'files.c');
  const wasm = join(root, 'test', 'fixtures', 'actors', 'dist', 'files.wasm');
  const build = join(root, 'bench', '.build');
  await mkdir(build, { recursive: true });
  const native = join(build, 'files');
  const gcc = spawnSync(process.env['CC'] ?? 'cc', ['-O2', src, '-o', native]);
  if (gcc.status !== 0 || !existsSync(wasm)) {
    return { skipped: `could not build ${src} natively and as Wasm` };
  }
  const time = (cmd: string, args: string[]): number => {
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0 || !r.stdout.startsWith('ok ')) {
        throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
      }
      runs.push(performance.now() - t0);
    }
    return Math.round(runs.toSorted((a, b) => a - b)[1]!);
  };
  const dir = await mkdtemp(join(tmpdir(), 'weft-files-'));
  try {
    const weftMs = time(process.execPath, [
      join(root, 'bin', 'weft.ts'),
      'run',
      '--dir',
      `${dir}::/work`,
      wasm,
      '/work',
    ]);
    const nativeMs = time(native, [dir]);
    return { weftMs, nativeMs, ratio: Math.round((weftMs / nativeMs) * 100) / 100 };
  } catch (err) {
    return { skipped: (err as Error).message.slice(0, 200) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Deploy `yaml` (written to `file`) and send GET `url` until it answers 200 with `expected`:
 * the row's URL, or why it is skipped, with the time to that first 200.
 */
async function deployAndProbe(
  client: LatticeClient,
  file: string,
  yaml: string,
  url: string,
  expected: string,
): Promise<{ url: string; firstMs: number } | { url?: undefined; skip: string }> {
  await writeFile(file, yaml);
  const t0 = performance.now();
  await deployApplication(client, parseManifest(yaml, file), file);
  let last = 'no response';
  for (let i = 0; i < 2000; i++) {
    const res = await fetch(url).catch((e: Error) => e);
    if (res instanceof Error) last = res.message;
    else {
      const text = await res.text();
      if (res.status === 200 && text === expected) {
        return { url, firstMs: Math.round(performance.now() - t0) };
      }
      last = `${res.status} ${text.slice(0, 200)}`;
    }
    await sleep(5);
  }
  return { skip: `no 200 from ${url} within 2000 tries; last: ${last}` };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const node = process.execPath;
  const weft = join(root, 'bin', 'weft.ts');
  log(`weft bench: ${CONNECTIONS} connections, ${SECONDS} s per row`);

  log('WASI files: 10,000 small files under weft run and natively...');
  const wasiFiles = await wasiFilesRow();
  log(`  ${JSON.stringify(wasiFiles)}`);

  log('instance start (compiled module cached)...');
  const startUs = await instanceStartUs();
  log(`  median ${startUs} µs`);

  const nats = await startNatsServer();
  try {
    const lattice = `bench${Date.now().toString(36)}`;
    const g = ['--nats', nats.url, '--lattice', lattice, '--log-level', 'warn'];
    const { child: host } = await procs.start(
      node,
      [weft, 'host', ...g, '--log-level', 'info'],
      /"host started"/,
    );
    const { m: gm } = await procs.start(
      node,
      [weft, 'gateway', ...g, '--log-level', 'info', '--listen', '127.0.0.1:0'],
      /"url":"(http:\/\/[^"]+)"/,
    );
    const gatewayUrl = gm[1]!;
    await sleep(300);

    log('deploy → first 200...');
    const dir = await mkdtemp(join(tmpdir(), 'weft-bench-'));
    const helloYaml = `apiVersion: weft/v1
kind: Application
metadata: { name: bench, version: 1.0.0 }
spec:
  actors:
    - name: hello
      module: ${HELLO_WASM}
      routes: [{ path: /hello }]
`;
    const client = await connectLattice({ servers: nats.url, lattice });
    const first = await deployAndProbe(
      client,
      join(dir, 'app.yaml'),
      helloYaml,
      `${gatewayUrl}/hello?name=bench`,
      'Hello, bench!\n',
    );
    const deployMs = first.url === undefined ? NaN : first.firstMs;
    log(`  ${deployMs} ms`);

    /**
     * A row served by an application deployed now: its URL once it answers the hello, or why it
     * is skipped (its module not built, or no 200 in time).
     */
    const deployedRow = async (
      name: string,
      module: string,
      app: string,
      yaml: string,
      url: string,
    ): Promise<Target & { firstMs?: number }> => {
      if (!existsSync(module)) return { name, skip: `no ${module} (npm run build:actors)` };
      const r = await deployAndProbe(
        client,
        join(dir, `${app}.yaml`),
        yaml,
        url,
        'Hello, bench!\n',
      );
      return r.url === undefined
        ? { name, skip: r.skip }
        : { name, url: r.url, firstMs: r.firstMs };
    };

    // The proxy actor, as a second application in the same lattice, deployed after the deploy
    // timing above so that figure stays the WCGI hello's alone.
    log('deploy the proxy actor (httpd.wasm)...');
    const proxy = await deployedRow(
      'proxy-lattice',
      HTTPD_WASM,
      'proxy',
      `apiVersion: weft/v1
kind: Application
metadata: { name: bench-proxy, version: 1.0.0 }
spec:
  actors:
    - name: httpd
      module: ${HTTPD_WASM}
      mode: proxy
      instances: ${PROXY_INSTANCES}
      routes: [{ path: /proxy/... }]
`,
      `${gatewayUrl}/proxy/hello?name=bench`,
    );
    if (proxy.url) log(`  first 200 after ${proxy.firstMs} ms`);
    const { m: nm } = await procs.start(
      node,
      [
        '-e',
        `const s=require('http').createServer((q,r)=>{const n=new URL(q.url,'http://x').searchParams.get('name')??'world';r.writeHead(200,{'content-type':'text/plain; charset=utf-8'});r.end('Hello, '+n+'!\\n')});s.listen(0,'127.0.0.1',()=>console.log('port='+s.address().port))`,
      ],
      /port=(\d+)/,
    );
    const nodeUrl = `http://127.0.0.1:${nm[1]}`;

    // WCGI with one outbound HTTP call per request (actors/fetch through weft_http, the policy
    // checked on each), to the node:http server that the node-http row calls directly.
    const outbound = await deployedRow(
      'wcgi-outbound',
      FETCH_WASM,
      'outbound',
      `apiVersion: weft/v1
kind: Application
metadata: { name: bench-outbound, version: 1.0.0 }
spec:
  actors:
    - name: fetch
      module: ${FETCH_WASM}
      env: { UPSTREAM: "${nodeUrl}" }
      capabilities: { outboundHttp: ["${nodeUrl}"] }
      routes: [{ path: /fetch }]
`,
      `${gatewayUrl}/fetch?path=${encodeURIComponent('/hello?name=bench')}`,
    );

    // The lattice floor: an actor no host may run (its spread matches no host), answered by
    // bench/floor.ts instead, so the row costs the gateway and NATS and nothing else.
    await procs.start(
      node,
      [join(root, 'bench', 'floor.ts'), nats.url, lattice, 'floor'],
      /floor ready/,
    );
    const floor = await deployedRow(
      'lattice-floor',
      HELLO_WASM,
      'floor',
      `apiVersion: weft/v1
kind: Application
metadata: { name: bench-floor, version: 1.0.0 }
spec:
  actors:
    - name: floor
      module: ${HELLO_WASM}
      spread: [{ name: nowhere, requirements: { weft-bench: floor-only } }]
      routes: [{ path: /floor }]
`,
      `${gatewayUrl}/floor?name=bench`,
    );
    await client.close();

    // Start every server first, then run the rows in interleaved rounds and keep each row's
    // median: the machine's noise then falls on all rows alike.
    const targets: Target[] = [
      { name: 'wcgi-lattice', url: `${gatewayUrl}/hello?name=bench` },
      proxy,
      outbound,
      floor,
    ];
    targets.push({ name: 'node-http', url: `${nodeUrl}/hello?name=bench` });
    targets.push({ name: 'classic-cgi-lighttpd', ...(await startLighttpd()) });

    for (const t of targets) {
      if (t.url) await autocannon({ url: t.url, connections: CONNECTIONS, duration: 2 });
    }
    const samples = new Map<string, Row[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      log(`load, round ${round} of ${ROUNDS}:`);
      for (const t of targets) {
        if (!t.url) continue;
        const r = await load(t.name, t.url);
        samples.set(t.name, [...(samples.get(t.name) ?? []), r]);
      }
    }
    // A proxy row that failed or had failures: show what the host said about it.
    if (proxy.skip || samples.get(proxy.name)?.some((r) => r.note)) {
      const said = procs
        .tail(host)
        .filter((l) => /"actor":"httpd"|"level":(40|50|60)/.test(l) || !l.startsWith('{'));
      log(`proxy-lattice: host log (${said.length} lines about httpd, warnings and errors):`);
      for (const l of said.slice(-40)) log(`  ${l}`);
    }
    for (const t of targets) {
      const runs = samples.get(t.name);
      if (!runs) {
        rows.push({
          name: t.name,
          rps: 0,
          p50Ms: 0,
          p99Ms: 0,
          note: `skipped: ${t.skip ?? 'not started'}`,
        });
        continue;
      }
      const mid = runs.toSorted((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!;
      const failed = runs.map((r) => r.note).filter(Boolean);
      rows.push({
        ...mid,
        note: `median of ${runs.length} (${runs.map((r) => r.rps).join(', ')})${failed.length ? `; ${failed.join('; ')}` : ''}`,
      });
    }

    const scale = await scaleOut({ connections: CONNECTIONS, seconds: SECONDS });
    const rps = (n: string) => rows.find((r) => r.name === n)?.rps ?? 0;
    const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : null);
    const results = {
      date: new Date().toISOString(),
      connections: CONNECTIONS,
      seconds: SECONDS,
      rows,
      ratios: {
        wcgiVsNodeHttp: ratio(rps('wcgi-lattice'), rps('node-http')),
        wcgiVsClassicCgi: ratio(rps('wcgi-lattice'), rps('classic-cgi-lighttpd')),
        proxyVsNodeHttp: ratio(rps('proxy-lattice'), rps('node-http')),
        proxyVsWcgi: ratio(rps('proxy-lattice'), rps('wcgi-lattice')),
        outboundVsWcgi: ratio(rps('wcgi-outbound'), rps('wcgi-lattice')),
        floorVsNodeHttp: ratio(rps('lattice-floor'), rps('node-http')),
        proxyVsFloor: ratio(rps('proxy-lattice'), rps('lattice-floor')),
      },
      instanceStartUs: startUs,
      wasiFiles,
      deployToFirstResponseMs: deployMs,
      scaleOut: scale.json,
    };
    await mkdir(join(root, 'bench', 'results'), { recursive: true });
    await writeFile(
      join(root, 'bench', 'results', 'latest.json'),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    const pad = (s: string | number, n: number) => String(s).padEnd(n);
    process.stdout.write(
      [
        '',
        `${pad('row', 24)}${pad('req/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}note`,
        ...rows.map(
          (r) =>
            `${pad(r.name, 24)}${pad(r.rps, 10)}${pad(r.p50Ms, 9)}${pad(r.p99Ms, 9)}${r.note ?? ''}`,
        ),
        '',
        `WCGI vs node:http      ${results.ratios.wcgiVsNodeHttp ?? 'n/a'}x   (target >= 0.25)`,
        `WCGI vs classic CGI    ${results.ratios.wcgiVsClassicCgi ?? 'n/a'}x   (target >= 3)`,
        `proxy vs node:http     ${results.ratios.proxyVsNodeHttp ?? 'n/a'}x   (target >= 0.4)`,
        `proxy vs WCGI          ${results.ratios.proxyVsWcgi ?? 'n/a'}x`,
        `WCGI+outbound vs WCGI  ${results.ratios.outboundVsWcgi ?? 'n/a'}x   (one checked outbound call per request)`,
        `lattice floor vs node  ${results.ratios.floorVsNodeHttp ?? 'n/a'}x   (gateway + NATS, no actor: the ceiling)`,
        `proxy vs floor         ${results.ratios.proxyVsFloor ?? 'n/a'}x`,
        `instance start         ${startUs} µs median   (target <= 100)`,
        `deploy -> first 200    ${deployMs} ms   (target <= 1000)`,
        'skipped' in wasiFiles
          ? `WASI files (10,000)    skipped: ${wasiFiles.skipped}`
          : `WASI files (10,000)    weft run ${wasiFiles.weftMs} ms, native ${wasiFiles.nativeMs} ms: ${wasiFiles.ratio}x`,
        '',
        ...scale.lines,
        '',
        'written to bench/results/latest.json',
        '',
      ].join('\n'),
    );
  } finally {
    await procs.stopAll();
    await nats.stop();
  }
}

await main();
process.exit(0);
