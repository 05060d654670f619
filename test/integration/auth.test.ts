/**
 * An authenticated lattice: a nats-server of its own running docs/security.md's configuration
 * (`securityConfig`) for two lattices, each with a host, a gateway and an operator user holding
 * the least permissions, passwords read from the server's environment as the docs do it; and one
 * with TLS that verifies clients. Bad inputs: no or wrong credentials, a missing credentials file,
 * a control command from a gateway user, a TLS CA that did not sign the server's certificate.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nkeys } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Host } from '../../host/index.ts';
import {
  AppStore,
  ErrorCode,
  HostVerb,
  RouteStore,
  connectLattice,
  deployApplication,
  parseManifest,
  securityConfig,
  type DeployedApp,
  type HostInventory,
  type LatticeClient,
  type LatticeUsers,
  type NatsAuth,
} from '../../lattice/index.ts';
import { Gateway } from '../../providers/http-gateway/index.ts';
import { weft, startHostProcess, type Service } from '../helpers/cli.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats-server.ts';
import { ACTORS_DIST, ROOT, newLattice, oneActorManifest } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const run = promisify(execFile);
const silent = pino({ level: 'silent' });
const A = newLattice();
const B = newLattice();
const ROLES = ['host', 'gateway', 'operator'] as const;
type Role = (typeof ROLES)[number];

/** Each lattice's users: name `<lattice>-<role>`, a fresh password the server reads from env. */
const passwords = new Map<string, string>();
function userOf(lattice: string, role: Role): { user: string; pass: string } {
  const user = `${lattice}-${role}`;
  return { user, pass: passwords.get(user)! };
}
/** The variable nats-server reads a user's password from, and its value set in its environment. */
function envPassword(lattice: string, role: Role): { user: string; password: string } {
  const user = `${lattice}-${role}`;
  const variable = `WEFT_TEST_${user.replaceAll('-', '_').toUpperCase()}`;
  const pass = randomBytes(12).toString('hex');
  passwords.set(user, pass);
  // nats-server parses the variable's value as a config value: quoted, it is a string.
  process.env[variable] = JSON.stringify(pass);
  return { user, password: `$${variable}` };
}

/** A's hosts may also log in with an nkey. */
const hostKey = nkeys.createUser();
const HOST_SEED = new TextDecoder().decode(hostKey.getSeed());
const WRONG = 'not-the-password-0451';

let server: NatsServerHandle;
let dir: string;

function usersOf(lattice: string, more: { hostNkey?: string } = {}): LatticeUsers {
  return {
    lattice,
    host: [envPassword(lattice, 'host'), ...(more.hostNkey ? [{ nkey: more.hostNkey }] : [])],
    gateway: envPassword(lattice, 'gateway'),
    operator: envPassword(lattice, 'operator'),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-auth-'));
  server = await startNatsServer({
    config: securityConfig([usersOf(A, { hostNkey: hostKey.getPublicKey() }), usersOf(B)]),
  });
});

afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

const as = (lattice: string, role: Role): NatsAuth => userOf(lattice, role);
const flags = (lattice: string, role: Role): string[] => {
  const u = userOf(lattice, role);
  return ['--nats', server.url, '--lattice', lattice, '--user', u.user, '--password', u.pass];
};
const connectAs = (lattice: string, auth: NatsAuth): Promise<LatticeClient> =>
  connectLattice({ servers: server.url, lattice, auth });

describe('docs/security.md', () => {
  it('shows the configuration securityConfig renders, for lattice L', async () => {
    const doc = await readFile(join(ROOT, 'docs', 'security.md'), 'utf8');
    const rendered = securityConfig({
      lattice: 'L',
      host: { user: 'L-host', password: '$HOST_PASSWORD' },
      gateway: { user: 'L-gateway', password: '$GATEWAY_PASSWORD' },
      operator: { user: 'L-operator', password: '$OPERATOR_PASSWORD' },
    });
    expect(doc).toContain(rendered);
  });
});

describe('joining an authenticated lattice', () => {
  it('refuses a client without credentials, or with a wrong password: WEFT_ERR_UNAUTHORIZED', async () => {
    await expect(connectLattice({ servers: server.url, lattice: A })).rejects.toMatchObject({
      code: ErrorCode.Unauthorized,
      message: expect.stringContaining(`NATS at ${server.url} requires credentials`),
    });
    const err = await connectAs(A, { user: `${A}-host`, pass: WRONG }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Unauthorized, httpStatus: 401 });
    expect((err as Error).message).toContain(`refused user '${A}-host'`);
    expect(JSON.stringify(err)).not.toContain(WRONG);
    expect((err as Error).message).not.toContain(WRONG);
  });

  it('a host with a wrong password exits non-zero, saying why and not the password', async () => {
    const host = ['host', '--nats', server.url, '--lattice', A, '--host-id', 'BADPASS'];
    const r = await weft([...host, '--user', `${A}-host`, '--password', WRONG]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`NATS at ${server.url} refused user '${A}-host' with a password`);
    expect(r.stderr).toContain(ErrorCode.Unauthorized);
    expect(r.stdout + r.stderr).not.toContain(WRONG);
    // The same from the environment (WEFT_USER, WEFT_PASSWORD), for a command.
    const env = { WEFT_USER: `${A}-operator`, WEFT_PASSWORD: WRONG };
    const g = await weft(['get', 'hosts', '--nats', server.url, '--lattice', A], { env });
    expect(g.code).toBe(1);
    expect(g.stderr).toContain(ErrorCode.Unauthorized);
    expect(g.stdout + g.stderr).not.toContain(WRONG);
  });

  it('names a credentials or nkey file that is missing or holds none', async () => {
    const missing = join(dir, 'no-such', 'operator.creds');
    const r = await weft(['get', 'hosts', '--nats', server.url, '--creds', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read the NATS credentials file ${missing}: no such file`);
    const junk = join(dir, 'junk.creds');
    await writeFile(junk, 'user: admin\npassword: hunter2\n');
    await expect(connectAs(A, { creds: junk })).rejects.toMatchObject({
      code: ErrorCode.BadRequest,
      message: `${junk} is not a NATS credentials file: expected a user JWT and an nkey seed`,
    });
    const seedFile = join(dir, 'missing.nk');
    await expect(connectAs(A, { nkeySeed: seedFile })).rejects.toMatchObject({
      message: `cannot read the nkey seed file ${seedFile}: no such file`,
    });
  });
});

describe('a lattice served with per-role credentials', () => {
  let host: Host;
  let gateway: Gateway;
  let operator: LatticeClient;
  const gwLogs = captureLogs('info');

  beforeAll(async () => {
    host = new Host({
      nats: server.url,
      lattice: A,
      log: silent,
      workers: 1,
      heartbeatMs: 500,
      auth: { nkeySeed: HOST_SEED },
    });
    await host.start();
    // The gateway's credentials ride in its NATS URL, which it must not log as given.
    const gw = userOf(A, 'gateway');
    const url = server.url.replace('nats://', `nats://${gw.user}:${gw.pass}@`);
    gateway = new Gateway({ nats: [url], lattice: A, log: gwLogs.log, port: 0 });
    await gateway.start();
    await gateway.connected();
    operator = await connectAs(A, as(A, 'operator'));
    const yaml = oneActorManifest({ actor: 'hello', module: join(ACTORS_DIST, 'hello.wasm') });
    const file = join(dir, 'hello.yaml');
    await writeFile(file, yaml);
    await deployApplication(operator, parseManifest(yaml, file), file);
    await until(
      async () => {
        const res = await fetch(`${gateway.url}/hello?name=auth`);
        return res.status === 200 && (await res.text());
      },
      { name: 'hello served through the gateway', timeoutMs: 20_000 },
    );
  });

  afterAll(async () => {
    await gateway?.stop();
    await host?.stop();
    await operator?.close();
  });

  it('serves the app: host by nkey, gateway by password, deployed by the operator', async () => {
    const res = await fetch(`${gateway.url}/hello?name=auth`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Hello, auth!');
    const connected = gwLogs.lines.find((l) => l['msg'] === 'gateway connected to the lattice');
    expect(connected?.['nats']).toBe(server.url);
    expect(JSON.stringify(gwLogs.lines)).not.toContain(userOf(A, 'gateway').pass);
    // The CLI with an nkey seed file: a host's user may list the lattice's hosts.
    const seedFile = join(dir, 'host.nk');
    await writeFile(seedFile, `${HOST_SEED}\n`, { mode: 0o600 });
    const r = await weft(['get', 'hosts', '--json', '--nats', server.url, '--lattice', A], {
      env: { WEFT_NKEY: seedFile },
    });
    expect(r.stderr).toBe('');
    expect((JSON.parse(r.stdout) as HostInventory[]).map((h) => h.hostId)).toEqual([host.hostId]);
  });

  it('refuses the gateway user a control command and any bucket write', async () => {
    const gw = await connectAs(A, as(A, 'gateway'));
    try {
      const t0 = Date.now();
      const stop = gw.subjects.hostCtl(host.hostId, HostVerb.Stop);
      await expect(gw.request(stop, {})).rejects.toMatchObject({
        code: ErrorCode.Unauthorized,
        message: `permission denied to publish to ${stop}`,
      });
      // Refused at once, not after the request's timeout.
      expect(Date.now() - t0).toBeLessThan(2_000);
      await expect(
        gw.request(gw.subjects.hostCtl(host.hostId, HostVerb.Get), {}),
      ).rejects.toMatchObject({
        code: ErrorCode.Unauthorized,
      });
      await expect(AppStore.open(gw)).rejects.toMatchObject({
        code: ErrorCode.Unauthorized,
        message: `permission denied to publish to $JS.API.STREAM.INFO.KV_weft-${A}-apps`,
      });
      const routes = await RouteStore.open(gw);
      await expect(routes.put('evil', [])).rejects.toMatchObject({
        code: ErrorCode.Unauthorized,
        message: `permission denied to publish to $KV.weft-${A}-routes.evil`,
      });
    } finally {
      await gw.close();
    }
    // A host's user may not deploy either.
    const h = await connectAs(A, as(A, 'host'));
    try {
      const apps = await AppStore.open(h);
      await expect(apps.put({ name: 'evil' } as DeployedApp)).rejects.toMatchObject({
        code: ErrorCode.Unauthorized,
        message: `permission denied to publish to $KV.weft-${A}-apps.evil`,
      });
    } finally {
      await h.close();
    }
    expect((await fetch(`${gateway.url}/hello?name=still`)).status).toBe(200);
  });

  it('keeps two lattices on one server apart: hosts, apps, invocations', async () => {
    let hostB: Service | undefined;
    try {
      hostB = await startHostProcess(server.url, B, 'HOSTB', flags(B, 'host').slice(4));
      const hostsIn = async (lattice: string): Promise<string[]> => {
        const r = await weft(['get', 'hosts', '--json', ...flags(lattice, 'operator')]);
        expect(r.stderr).toBe('');
        return (JSON.parse(r.stdout) as HostInventory[]).map((h) => h.hostId);
      };
      expect(await hostsIn(B)).toEqual(['HOSTB']);
      expect(await hostsIn(A)).toEqual([host.hostId]);
      const apps = await weft(['get', 'apps', '--json', ...flags(B, 'operator')]);
      expect(JSON.parse(apps.stdout)).toEqual([]);
      // hello runs in A only: from B, nobody answers.
      const call = await weft(['call', 'hello', '--path', '/hello', ...flags(B, 'operator')]);
      expect(call.code).toBe(1);
      expect(call.stderr).toContain(ErrorCode.NoHost);
      // B's operator naming lattice A is refused A's replies, events and buckets.
      const intruder = await connectAs(A, as(B, 'operator'));
      try {
        await expect(intruder.gather(intruder.subjects.hostPing(), {})).rejects.toMatchObject({
          code: ErrorCode.Unauthorized,
        });
        await expect(AppStore.open(intruder)).rejects.toMatchObject({
          code: ErrorCode.Unauthorized,
        });
      } finally {
        await intruder.close();
      }
    } finally {
      await hostB?.stop();
    }
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl. */
async function makeCertificates(d: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = async (name: string) =>
    run('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${d}/${name}.key`,
      '-out',
      `${d}/${name}.pem`,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
    ]);
  const leaf = async (name: string, ext: string) => {
    await run('openssl', [
      'req',
      ...ec,
      '-keyout',
      `${d}/${name}.key`,
      '-out',
      `${d}/${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ]);
    await writeFile(`${d}/${name}.ext`, ext);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      `${d}/${name}.csr`,
      '-CA',
      `${d}/ca.pem`,
      '-CAkey',
      `${d}/ca.key`,
      '-CAcreateserial',
      '-out',
      `${d}/${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${d}/${name}.ext`,
    ]);
  };
  await ca('ca');
  await ca('other-ca');
  await leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await leaf('client', 'extendedKeyUsage=clientAuth\n');
}

describe('TLS with client verification', () => {
  let tlsServer: NatsServerHandle;
  let d: string;

  beforeAll(async () => {
    d = await mkdtemp(join(tmpdir(), 'weft-tls-'));
    await makeCertificates(d);
    tlsServer = await startNatsServer({
      config: `tls { cert_file: "${d}/server.pem", key_file: "${d}/server.key", ca_file: "${d}/ca.pem", verify: true }`,
    });
  });

  afterAll(async () => {
    await tlsServer?.stop();
    await rm(d, { recursive: true, force: true });
  });

  const tlsConnect = (tls: NatsAuth['tls']) =>
    connectLattice({
      servers: tlsServer.url,
      lattice: A,
      connectTimeoutMs: 2_000,
      ...(tls === undefined ? {} : { auth: { tls } }),
    });

  it('connects a client with the CA and a client certificate (CLI flags too)', async () => {
    const c = await tlsConnect({
      ca: `${d}/ca.pem`,
      cert: `${d}/client.pem`,
      key: `${d}/client.key`,
    });
    expect(await c.gather(c.subjects.hostPing(), {}, 100)).toEqual([]);
    await c.close();
    const files = ['--tls-ca', `${d}/ca.pem`, '--tls-cert', `${d}/client.pem`];
    const r = await weft(['get', 'hosts', '--nats', tlsServer.url, '--lattice', A, ...files], {
      env: { WEFT_TLS_KEY: `${d}/client.key` },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('(none)');
  });

  it('refuses a client without a certificate, and one that does not trust the server', async () => {
    await expect(tlsConnect({ ca: `${d}/ca.pem` })).rejects.toMatchObject({
      code: ErrorCode.LatticeUnavailable,
      message: expect.stringContaining('give --tls-cert and --tls-key'),
    });
    await expect(
      tlsConnect({ ca: `${d}/other-ca.pem`, cert: `${d}/client.pem`, key: `${d}/client.key` }),
    ).rejects.toMatchObject({
      code: ErrorCode.LatticeUnavailable,
      message: expect.stringContaining(
        `TLS: the server's certificate is not signed by the CA in ${d}/other-ca.pem`,
      ),
    });
    await expect(tlsConnect(undefined)).rejects.toMatchObject({
      message: expect.stringContaining('give its CA with --tls-ca'),
    });
    const r = await weft(['get', 'hosts', '--nats', tlsServer.url, '--tls-ca', `${d}/nope.pem`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read the TLS CA file ${d}/nope.pem: no such file`);
  });
});
