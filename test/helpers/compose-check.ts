/**
 * Checks compose.yaml against the repository without Docker: weft commands and flags against the
 * CLI's own table (bin/commands.ts), NATS URLs against the NATS services, the cluster's routes,
 * dependencies, build contexts, what the Dockerfile copies, the application the deploy service
 * deploys, and published ports. Each problem is one line naming the service and what is wrong.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { GLOBAL_OPTIONS, findCommand, parseCommandArgs } from '../../bin/commands.ts';
import { parseManifest } from '../../lattice/index.ts';

type Dict = Record<string, unknown>;

export interface ComposeFiles {
  /** The repository root: compose.yaml's directory, build contexts are relative to it. */
  root: string;
  /** compose.yaml's text (a test may pass a broken copy). */
  compose: string;
  /** Dockerfile text by path relative to root, when a test replaces one; else read from disk. */
  dockerfiles?: Record<string, string>;
}

/** nats-server's command-line options that compose.yaml may use (nats-server --help, 2.9). */
const NATS_FLAGS = new Set([
  'server_name',
  'name',
  'n',
  'cluster_name',
  'cluster',
  'cluster_listen',
  'cluster_advertise',
  'routes',
  'jetstream',
  'js',
  'store_dir',
  'sd',
  'http_port',
  'm',
  'port',
  'p',
  'addr',
  'a',
  'config',
  'c',
  'debug',
  'D',
  'trace',
  'V',
  'log',
  'l',
  'no_advertise',
  'max_payload',
]);
const NATS_BOOLEAN = new Set(['jetstream', 'js', 'debug', 'D', 'trace', 'V']);
const DEPENDENCY_CONDITIONS = new Set([
  'service_started',
  'service_healthy',
  'service_completed_successfully',
]);
/** Variables weft reads that are not a flag's. */
const OTHER_WEFT_VARIABLES = new Set(['WEFT_REPLICAS']);

interface Dockerfile {
  path: string;
  /** COPY sources from the build context (not --from another stage), as written. */
  copies: string[];
  entrypoint: string[] | undefined;
  workdir: string | undefined;
}

/** The logical lines of a Dockerfile: comments dropped, `\` continuations joined. */
function dockerLines(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (cur === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    out.push(cur + line);
    cur = '';
  }
  if (cur !== '') out.push(cur);
  return out;
}

function jsonOrWords(rest: string): string[] {
  const t = rest.trim();
  if (t.startsWith('[')) return JSON.parse(t) as string[];
  return t.split(/\s+/).filter(Boolean);
}

export function parseDockerfile(path: string, text: string): Dockerfile {
  const d: Dockerfile = { path, copies: [], entrypoint: undefined, workdir: undefined };
  for (const line of dockerLines(text)) {
    const [instr = '', ...restWords] = line.split(/\s+/);
    const rest = line.slice(instr.length).trim();
    switch (instr.toUpperCase()) {
      case 'FROM':
        // Each stage starts afresh; the last one's entrypoint and workdir are the image's.
        d.entrypoint = undefined;
        break;
      case 'WORKDIR':
        d.workdir = rest;
        break;
      case 'ENTRYPOINT':
        d.entrypoint = jsonOrWords(rest);
        break;
      case 'COPY':
      case 'ADD': {
        const args = rest.startsWith('[') ? jsonOrWords(rest) : restWords;
        const flags = args.filter((a) => a.startsWith('--'));
        const paths = args.filter((a) => !a.startsWith('--'));
        if (flags.some((f) => f.startsWith('--from='))) break;
        d.copies.push(...paths.slice(0, -1));
        break;
      }
      default:
        break;
    }
  }
  return d;
}

/** True when `.dockerignore` (simple patterns: names, dir/, *.ext) leaves `path` out. */
function ignored(patterns: string[], path: string): boolean {
  const p = path.replace(/^\.\//, '').replace(/\/$/, '');
  return patterns.some((pat) => {
    const q = pat.replace(/^\//, '').replace(/\/$/, '');
    if (q.includes('*')) {
      const re = new RegExp(`^${q.replaceAll('.', '\\.').replaceAll('*', '[^/]*')}$`);
      return re.test(p) || re.test(p.split('/').at(-1)!);
    }
    return p === q || p.startsWith(`${q}/`);
  });
}

function asList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  return (v as unknown[]).map(String);
}

/** Compose's `environment`, as a map or a `K=V` list. */
function environment(s: Dict): Record<string, string> {
  const e = s['environment'];
  if (Array.isArray(e)) {
    return Object.fromEntries(
      e.map((x: string) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]),
    );
  }
  return Object.fromEntries(Object.entries((e ?? {}) as Dict).map(([k, v]) => [k, String(v)]));
}

function dependsOn(s: Dict): Record<string, string> {
  const d = s['depends_on'];
  if (Array.isArray(d)) return Object.fromEntries(d.map((n: string) => [n, 'service_started']));
  return Object.fromEntries(
    Object.entries((d ?? {}) as Dict).map(([n, v]) => [
      n,
      String((v as Dict | null)?.['condition'] ?? 'service_started'),
    ]),
  );
}

/** nats-server flags as a map (`--a=b`, `--a b`, `-a b`, booleans). */
function natsFlags(args: string[], problems: string[], where: string): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) {
      problems.push(`${where}: unexpected argument '${a}' to nats-server`);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    if (!NATS_FLAGS.has(name)) {
      problems.push(`${where}: nats-server has no option --${name}`);
      continue;
    }
    const value = eq >= 0 ? body.slice(eq + 1) : NATS_BOOLEAN.has(name) ? 'true' : args[++i];
    if (value === undefined) problems.push(`${where}: nats-server option --${name} needs a value`);
    else out.set(name, value);
  }
  return out;
}

const first = (m: Map<string, string>, ...names: string[]): string | undefined =>
  names.map((n) => m.get(n)).find((v) => v !== undefined);

function hostPort(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port || 4222) };
  } catch {
    return undefined;
  }
}

/** The ports a healthcheck probes on its own container (`http://127.0.0.1:PORT/…`). */
export function probedPorts(s: Dict): number[] {
  const test = (s['healthcheck'] as Dict | undefined)?.['test'];
  const text = Array.isArray(test) ? test.join(' ') : String(test ?? '');
  return [...text.matchAll(/https?:\/\/(?:127\.0\.0\.1|localhost):(\d+)\//g)].map((m) =>
    Number(m[1]),
  );
}

/** The port of an `ADDR:PORT` value. */
const portOf = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1));

interface Published {
  ip: string;
  host: number;
  container: number;
  protocol: string;
}

function publishedPorts(s: Dict): Published[] {
  return ((s['ports'] ?? []) as unknown[]).map((p) => {
    if (typeof p === 'object' && p !== null) {
      const o = p as Dict;
      return {
        ip: String(o['host_ip'] ?? ''),
        host: Number(o['published']),
        container: Number(o['target']),
        protocol: String(o['protocol'] ?? 'tcp'),
      };
    }
    const [spec, protocol = 'tcp'] = String(p).split('/');
    const parts = spec!.split(':');
    const container = Number(parts.at(-1));
    const host = parts.length >= 2 ? Number(parts.at(-2)) : NaN;
    const ip = parts.length === 3 ? parts[0]! : '';
    return { ip, host, container, protocol };
  });
}

/** Every problem of compose.yaml, one line each; empty when it is consistent. */
export function composeProblems(files: ComposeFiles): string[] {
  const problems: string[] = [];
  const doc = parseYaml(files.compose, { merge: true }) as Dict;
  const services = (doc['services'] ?? {}) as Record<string, Dict>;
  const names = Object.keys(services);
  if (names.length === 0) return ['compose.yaml: no services'];

  // Images built here, and their Dockerfiles.
  const dockerfiles = new Map<string, Dockerfile>();
  const imageOf = new Map<string, Dockerfile>();
  for (const [name, s] of Object.entries(services)) {
    const build = s['build'];
    if (build === undefined) continue;
    const b = (typeof build === 'string' ? { context: build } : build) as Dict;
    const context = resolve(files.root, String(b['context'] ?? '.'));
    const rel = join(String(b['context'] ?? '.'), String(b['dockerfile'] ?? 'Dockerfile'));
    const path = join(context, String(b['dockerfile'] ?? 'Dockerfile'));
    if (!existsSync(context) || !statSync(context).isDirectory()) {
      problems.push(`${name}: build context ${String(b['context'])} is not a directory`);
      continue;
    }
    const text =
      files.dockerfiles?.[rel.replace(/^\.\//, '')] ??
      (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
    if (text === undefined) {
      problems.push(`${name}: build context has no ${rel}`);
      continue;
    }
    const d = dockerfiles.get(path) ?? parseDockerfile(path, text);
    dockerfiles.set(path, d);
    imageOf.set(name, d);
    if (s['image'] !== undefined) imageOf.set(`image:${String(s['image'])}`, d);
    // What it copies exists and is not left out of the context.
    const ignoreFile = join(context, '.dockerignore');
    const patterns = existsSync(ignoreFile)
      ? readFileSync(ignoreFile, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !l.startsWith('#'))
      : [];
    for (const src of d.copies) {
      if (!existsSync(join(context, src))) problems.push(`${rel}: COPY ${src}: no such file`);
      else if (ignored(patterns, src))
        problems.push(`${rel}: COPY ${src}: left out by .dockerignore`);
    }
  }

  // NATS services: entrypoint nats-server (or the nats image).
  const nats = new Map<string, { clientPort: number; flags: Map<string, string> }>();
  for (const [name, s] of Object.entries(services)) {
    const entry = asList(s['entrypoint']);
    const image = String(s['image'] ?? '');
    const isNats = entry[0] === 'nats-server' || /^nats(:|$)/.test(image);
    if (!isNats) continue;
    const flags = natsFlags(asList(s['command']), problems, name);
    nats.set(name, { clientPort: Number(first(flags, 'port', 'p') ?? 4222), flags });
  }
  if (nats.size === 0) problems.push('compose.yaml: no nats-server service');

  // The cluster: unique names, one cluster name, JetStream, each routes to all the others.
  const clusterNames = new Set<string>();
  const serverNames = new Map<string, string>();
  for (const [name, { flags }] of nats) {
    const server = first(flags, 'server_name', 'name', 'n');
    if (server === undefined) problems.push(`${name}: nats-server needs --server_name`);
    else if (serverNames.has(server)) {
      problems.push(`${name}: server name ${server} is also ${serverNames.get(server)}'s`);
    } else serverNames.set(server, name);
    const http = Number(first(flags, 'http_port', 'm'));
    for (const port of probedPorts(services[name]!)) {
      if (port !== http)
        problems.push(`${name}: healthcheck probes port ${port}, monitoring is on ${http}`);
    }
    const js = first(flags, 'jetstream', 'js');
    if (js !== 'true') problems.push(`${name}: JetStream is off (--jetstream)`);
    if (nats.size > 1) {
      const cn = flags.get('cluster_name');
      if (cn === undefined) problems.push(`${name}: nats-server needs --cluster_name`);
      else clusterNames.add(cn);
    }
  }
  if (clusterNames.size > 1) {
    problems.push(`nats: servers name different clusters: ${[...clusterNames].join(', ')}`);
  }
  if (nats.size > 1) {
    for (const [name, { flags }] of nats) {
      const routes = (flags.get('routes') ?? '').split(',').filter(Boolean);
      const routed = new Set<string>();
      for (const r of routes) {
        const hp = hostPort(r.trim());
        const peer = hp && nats.get(hp.host);
        if (hp === undefined || peer === undefined) {
          problems.push(`${name}: route ${r} names no NATS service`);
          continue;
        }
        const peerCluster = hostPort(peer.flags.get('cluster') ?? '');
        if (peerCluster === undefined) {
          problems.push(`${name}: route ${r}: ${hp.host} has no --cluster listen address`);
        } else if (peerCluster.port !== hp.port) {
          problems.push(
            `${name}: route ${r}: ${hp.host} listens for routes on ${peerCluster.port}, not ${hp.port}`,
          );
        }
        if (hp.host === name) problems.push(`${name}: routes to itself`);
        routed.add(hp.host);
      }
      for (const other of nats.keys()) {
        if (other !== name && !routed.has(other)) problems.push(`${name}: no route to ${other}`);
      }
    }
  }

  // Every service: dependencies, and for weft services the command, its flags and NATS URLs.
  const hostLabels = new Map<string, string>();
  const hostIds = new Map<string, string>();
  for (const [name, s] of Object.entries(services)) {
    for (const [dep, condition] of Object.entries(dependsOn(s))) {
      if (!(dep in services)) problems.push(`${name}: depends_on ${dep}, which is not a service`);
      else if (dep === name) problems.push(`${name}: depends on itself`);
      else if (!DEPENDENCY_CONDITIONS.has(condition)) {
        problems.push(`${name}: depends_on ${dep}: unknown condition ${condition}`);
      } else if (condition === 'service_healthy' && services[dep]!['healthcheck'] === undefined) {
        problems.push(`${name}: waits for ${dep} to be healthy, which has no healthcheck`);
      }
    }
    if (nats.has(name)) continue;
    const image = imageOf.get(name) ?? imageOf.get(`image:${String(s['image'])}`);
    const entry = s['entrypoint'] === undefined ? image?.entrypoint : asList(s['entrypoint']);
    const isWeft = entry !== undefined && entry.some((a) => /(^|\/)weft(\.ts|\.mjs)?$/.test(a));
    if (!isWeft) continue;
    const argv = asList(s['command']);
    const cmd = argv[0];
    const spec = cmd === undefined ? undefined : findCommand(cmd);
    if (spec === undefined) {
      problems.push(`${name}: '${cmd ?? ''}' is not a weft command`);
      continue;
    }
    let parsed: ReturnType<typeof parseCommandArgs>;
    try {
      parsed = parseCommandArgs(spec.name, argv.slice(1));
    } catch (err) {
      problems.push(`${name}: weft ${spec.name}: ${(err as Error).message}`);
      continue;
    }
    const env = environment(s);
    const known = new Set([
      ...[...Object.values(GLOBAL_OPTIONS), ...Object.values(spec.options)].flatMap((o) =>
        o.env === undefined ? [] : [o.env],
      ),
      ...OTHER_WEFT_VARIABLES,
    ]);
    for (const k of Object.keys(env)) {
      if (k.startsWith('WEFT_') && !known.has(k)) {
        problems.push(`${name}: weft ${spec.name} reads no variable ${k}`);
      }
    }
    const listening = ['listen', 'metrics']
      .map((f) => parsed.values[f])
      .filter((v): v is string => typeof v === 'string')
      .map(portOf);
    for (const port of probedPorts(s)) {
      if (!listening.includes(port)) {
        problems.push(
          `${name}: healthcheck probes port ${port}, where weft ${spec.name} does not listen`,
        );
      }
    }
    const natsArg = parsed.values['nats'] ?? env['WEFT_NATS_URL'];
    if (spec.lattice && natsArg === undefined) {
      problems.push(`${name}: no --nats or WEFT_NATS_URL: weft would try 127.0.0.1:4222`);
    }
    const urls = String(natsArg ?? '')
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean);
    const deps = dependsOn(s);
    for (const url of urls) {
      const hp = hostPort(url);
      const server = hp && nats.get(hp.host);
      if (hp === undefined || server === undefined) {
        problems.push(`${name}: NATS URL ${url} names no NATS service`);
      } else if (server.clientPort !== hp.port) {
        problems.push(`${name}: NATS URL ${url}: ${hp.host} listens on ${server.clientPort}`);
      } else if (deps[hp.host] === undefined) {
        problems.push(`${name}: connects to ${hp.host} without depending on it`);
      }
    }
    if (spec.name === 'host') {
      const labels = ((parsed.values['label'] as string[] | undefined) ?? []).toSorted().join(',');
      if (labels === '') problems.push(`${name}: a host without --label`);
      else if (hostLabels.has(labels)) {
        problems.push(`${name}: the same labels as ${hostLabels.get(labels)} (${labels})`);
      } else hostLabels.set(labels, name);
      const id = parsed.values['host-id'] as string | undefined;
      if (id !== undefined && hostIds.has(id)) {
        problems.push(`${name}: host id ${id} is also ${hostIds.get(id)}'s`);
      } else if (id !== undefined) hostIds.set(id, name);
    }
    if (spec.name === 'gateway') {
      const listen = String(parsed.values['listen'] ?? '127.0.0.1:8080');
      const port = portOf(listen);
      if (listen.startsWith('127.') || listen.startsWith('localhost')) {
        problems.push(
          `${name}: gateway listens on ${listen}, unreachable from outside its container`,
        );
      }
      const published = publishedPorts(s);
      if (published.length === 0) problems.push(`${name}: gateway publishes no port`);
      for (const p of published) {
        if (p.container !== port) {
          problems.push(
            `${name}: publishes container port ${p.container}, gateway listens on ${port}`,
          );
        }
      }
    }
    if (spec.name === 'deploy') {
      const file = parsed.positionals[0];
      const workdir = image?.workdir;
      if (file === undefined) problems.push(`${name}: weft deploy without a manifest`);
      else problems.push(...manifestProblems(files.root, name, file, image, workdir));
    }
  }

  // Published ports: one service per host port (and address).
  const taken = new Map<string, string>();
  for (const [name, s] of Object.entries(services)) {
    for (const p of publishedPorts(s)) {
      if (!Number.isInteger(p.host) || p.host < 1 || p.host > 65_535) {
        problems.push(`${name}: published port ${JSON.stringify(s['ports'])} has no host port`);
        continue;
      }
      for (const [key, other] of taken) {
        const [ip, port, protocol] = key.split('|');
        const sameIp = ip === '' || p.ip === '' || ip === p.ip;
        if (sameIp && Number(port) === p.host && protocol === p.protocol) {
          problems.push(`${name}: host port ${p.host} is also published by ${other}`);
        }
      }
      taken.set(`${p.ip}|${p.host}|${p.protocol}`, name);
    }
  }
  return problems;
}

/**
 * The manifest a deploy service deploys: it is in the image (under a COPY of the Dockerfile), it
 * validates (`weft app validate`), and the modules it names by path are built in the image from
 * actors/<name>/*.c, its file trees exist.
 */
function manifestProblems(
  root: string,
  service: string,
  file: string,
  image: Dockerfile | undefined,
  workdir: string | undefined,
): string[] {
  const out: string[] = [];
  const rel = file.startsWith('/') && workdir ? file.slice(workdir.length + 1) : file;
  const path = join(root, rel);
  if (!existsSync(path)) return [`${service}: ${file}: no such file in the repository`];
  if (image !== undefined && !image.copies.some((c) => rel.startsWith(c.replace(/\/$/, '')))) {
    out.push(`${service}: ${file} is not copied into the image`);
  }
  let manifest: ReturnType<typeof parseManifest>;
  try {
    manifest = parseManifest(readFileSync(path, 'utf8'), rel);
  } catch (err) {
    return [...out, `${service}: ${(err as Error).message}`];
  }
  const dir = dirname(path);
  for (const actor of manifest.spec.actors) {
    const m = /^(?:\.\/)?dist\/([a-z0-9-]+)\.wasm$/.exec(actor.module);
    if (m !== null) {
      const src = join(dir, m[1]!);
      // actors/build.ts builds actors/<name>/*.c, or an AssemblyScript actors/<name>/index.ts.
      const buildable =
        existsSync(src) && readdirSync(src).some((f) => f.endsWith('.c') || f === 'index.ts');
      if (!buildable) {
        out.push(`${service}: ${actor.name}: no source in ${src} to build ${actor.module}`);
      }
    } else if (actor.module.includes('/') || actor.module.endsWith('.wasm')) {
      if (!existsSync(resolve(dir, actor.module))) {
        out.push(`${service}: ${actor.name}: module ${actor.module} does not exist`);
      }
    }
    for (const f of actor.files) {
      if (!existsSync(resolve(dir, f.source))) {
        out.push(`${service}: ${actor.name}: files source ${f.source} does not exist`);
      }
    }
  }
  return out;
}
