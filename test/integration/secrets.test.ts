/**
 * Secrets end to end, with a real nats-server, `weft host` and `weft gateway` processes and the
 * CLI: a key made and published by `weft secret init`, values put by `weft secret put` reach an
 * actor (env-dump prints its environment), and neither they nor a host variable's value appear in
 * `weft get`, `weft status`, `weft app history`, `weft secret list` (tables or --json), the
 * stored entry or any process's log. An actor whose secret is missing, whose host has no key or
 * whose entry was altered or copied fails to start, and `weft status` says which and why.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ErrorCode,
  SecretResolver,
  SecretStore,
  appStatus,
  connectLattice,
  createSecretsKey,
  securityConfig,
  type AppStatus,
  type LatticeClient,
} from '../../lattice/index.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { startService, weft, type Service } from '../helpers/cli.ts';
import { FIXTURES_DIST, newLattice } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const VALUE = `s3cr3t-${randomUUID()}`;
const VALUE2 = `rotated-${randomUUID()}`;
const LATER = `later-${randomUUID()}`;
const REGION = `region-${randomUUID()}`;
/** Every value that must never be shown or logged. */
const HIDDEN = [VALUE, VALUE2, LATER, REGION];

let natsUrl: string;
let lattice: string;
let dir: string;
let g: string[];
let client: LatticeClient;
let keyed: Service;
let keyless: Service;
let gateway: Service;
let gatewayUrl: string;
let init: Awaited<ReturnType<typeof weft>>;
/** Everything each process printed, from its start. */
const output = new Map<string, () => string>();

function capture(name: string, s: Service): void {
  let text = JSON.stringify(s.lines());
  s.child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  s.child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  output.set(name, () => text);
}

function expectNoValue(text: string, where: string): void {
  for (const v of HIDDEN) expect(text, `${where} shows a secret value`).not.toContain(v);
}

/** An application of one env-dump actor placed on the host labelled `keyed=KEYED`. */
function app(name: string, keyedHost: 'yes' | 'no', env: string): string {
  return `apiVersion: weft/v1
kind: Application
metadata: { name: ${name}, version: 1.0.0 }
spec:
  actors:
    - name: ${name}
      module: ${join(FIXTURES_DIST, 'env-dump.wasm')}
      spread: [{ name: here, requirements: { keyed: "${keyedHost}" } }]
      env:
${env}
      routes: [{ path: /${name}/... }]
`;
}

async function deploy(name: string, text: string, wait: boolean): Promise<void> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, text);
  const r = await weft(['deploy', file, ...(wait ? [] : ['--no-wait']), ...g], {
    timeoutMs: 60_000,
  });
  expect(r.stderr, `deploy ${name}`).toBe('');
  expect(r.code).toBe(0);
}

/** The status of `name` once `ok` holds for it. */
async function statusWhen(name: string, ok: (st: AppStatus) => boolean): Promise<AppStatus> {
  let last: AppStatus | undefined;
  await until(
    async () => {
      last = await appStatus(client, name);
      return ok(last);
    },
    { name: `status of ${name}`, timeoutMs: 30_000, intervalMs: 200 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}`, { cause: err });
  });
  return last!;
}

/** GET the actor's route through the gateway until it answers 200; the body. */
async function envOf(name: string, want?: string): Promise<string> {
  let body = '';
  await until(
    async () => {
      const res = await fetch(`${gatewayUrl}/${name}/`);
      body = await res.text();
      return res.status === 200 && (want === undefined || body.includes(want));
    },
    { name: `GET /${name}/`, timeoutMs: 30_000, intervalMs: 100 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: last body ${body.slice(0, 200)}`, { cause: err });
  });
  return body;
}

/** The raw bytes of KV entry `key` of the lattice's secret bucket, and the bucket. */
async function rawEntry(key: string) {
  const kv = await new Kvm(client.nc).open(client.subjects.bucket('secrets'));
  const e = await kv.get(key);
  return { kv, value: e?.value };
}

beforeAll(async () => {
  natsUrl = inject('natsUrl');
  lattice = newLattice();
  dir = await mkdtemp(join(tmpdir(), 'weft-secrets-'));
  g = ['--nats', natsUrl, '--lattice', lattice];
  client = await connectLattice({ servers: natsUrl, lattice });
  init = await weft(['secret', 'init', '--out', join(dir, 'secrets.xkey'), ...g]);
  if (init.code !== 0) throw new Error(`weft secret init failed: ${init.stderr}`);
  // The host variable an actor reads: the host processes inherit this process's environment.
  process.env['SECRETS_TEST_REGION'] = REGION;
  delete process.env['SECRETS_TEST_UNSET'];
  const host = (id: string, more: string[]) =>
    startService(
      ['host', ...g, '--host-id', id, '--workers', '1', '--heartbeat-ms', '500', ...more],
      'host started',
    );
  keyed = await host('KEYED', ['--label', 'keyed=yes', '--secrets-key', join(dir, 'secrets.xkey')]);
  capture('keyed host', keyed);
  keyless = await host('KEYLESS', ['--label', 'keyed=no']);
  capture('keyless host', keyless);
  gateway = await startService(
    ['gateway', ...g, '--listen', '127.0.0.1:0', '--no-dashboard'],
    'gateway listening',
  );
  capture('gateway', gateway);
  gatewayUrl = String(gateway.lines().find((l) => l['msg'] === 'gateway listening')!['url']);
});

afterAll(async () => {
  await gateway?.stop();
  await keyed?.stop();
  await keyless?.stop();
  await client?.close();
});

describe('weft secret', () => {
  it('init wrote the seed (mode 0600) and published its public key, which it will not replace', async () => {
    expect(init.stdout).toMatch(
      /^public: X[A-Z2-7]{55}\n\(seed written to .*secrets\.xkey; give it to hosts/,
    );
    expect((await stat(join(dir, 'secrets.xkey'))).mode & 0o777).toBe(0o600);
    const key = await weft(['secret', 'key', ...g]);
    expect(key.code).toBe(0);
    expect(key.stdout).toMatch(/^X[A-Z2-7]{55}\n$/);
    const again = await weft(['secret', 'init', '--out', join(dir, 'other.xkey'), ...g]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('has secrets key X');
    expect(again.stderr).toContain('--force');
    await expect(stat(join(dir, 'other.xkey'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await weft(['secret', 'key', ...g])).stdout).toBe(key.stdout);
    // The host logged the same public key, and warned of nothing.
    expect(keyed.lines().find((l) => l['msg'] === 'host started')?.['secretsKey']).toBe(
      key.stdout.trim(),
    );
    expect(keyed.lines().filter((l) => l['level'] === 40)).toEqual([]);
  });

  it('put seals the value from stdin; the stored entry and list never hold it', async () => {
    const put = await weft(['secret', 'put', 'db-password', ...g], { stdin: `${VALUE}\n` });
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^stored secret db-password \(revision \d+, sealed for X\w+…\)\n$/);
    const { value } = await rawEntry('secret.db-password');
    expect(value).toBeDefined();
    expect(Buffer.from(value!).toString('latin1')).not.toContain(VALUE.slice(0, 10));
    const list = await weft(['secret', 'list', '--json', ...g]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ name: 'db-password', key: expect.stringMatching(/^X/) }),
    ]);
    const table = await weft(['secret', 'list', ...g]);
    expect(table.stdout).toMatch(/^NAME\s+UPDATED\s+REVISION\s+KEY\ndb-password\s/);
    expectNoValue(list.stdout + table.stdout, 'weft secret list');
  });

  it('refuses a put where the lattice has no key, and a bad name', async () => {
    const other = ['--nats', natsUrl, '--lattice', newLattice()];
    const r = await weft(['secret', 'put', 'x', '--value', 'y', ...other]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has no secrets key: create one with weft secret init');
    const bad = await weft(['secret', 'put', 'a.b', '--value', 'y', ...g]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid secret name 'a.b'");
    const usage = await weft(['secret', 'put', ...g]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('put takes one NAME');
  });

  it('rm removes a secret, and says when there is none', async () => {
    expect((await weft(['secret', 'put', 'spare', '--value', 'x', ...g])).code).toBe(0);
    const rm = await weft(['secret', 'rm', 'spare', ...g]);
    expect(rm.stdout).toBe('removed secret spare\n');
    expect((await weft(['secret', 'list', '--json', ...g])).stdout).not.toContain('spare');
    const again = await weft(['secret', 'rm', 'spare', ...g]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no secret named 'spare' in lattice '${lattice}'`);
    expect(again.stderr).toContain('WEFT_ERR_SECRET');
  });
});

describe('an actor with secrets', () => {
  it('gets the secret and the host variable in its environment, which nothing shows', async () => {
    await deploy(
      'vault',
      app(
        'vault',
        'yes',
        '        PLAIN: visible\n        DB_PASSWORD: { secret: db-password }\n        REGION: { hostEnv: SECRETS_TEST_REGION }',
      ),
      true,
    );
    const body = await envOf('vault');
    expect(body).toMatch(new RegExp(`^DB_PASSWORD=${VALUE}$`, 'm'));
    expect(body).toMatch(new RegExp(`^REGION=${REGION}$`, 'm'));
    expect(body).toMatch(/^PLAIN=visible$/m);

    const shown: [string, string[]][] = [
      ['get actors', ['get', 'actors']],
      ['get apps', ['get', 'apps']],
      ['get hosts', ['get', 'hosts']],
      ['app history', ['app', 'history', 'vault']],
      ['status', ['status', 'vault']],
    ];
    for (const [what, args] of shown) {
      for (const json of [['--json'], []]) {
        const r = await weft([...args, ...json, ...g]);
        expect(r.code, `${what} ${json.join('')}: ${r.stderr}`).toBe(0);
        expectNoValue(r.stdout + r.stderr, `weft ${what} ${json.join('')}`);
      }
    }
    // What the lattice keeps is the reference.
    const apps = await weft(['get', 'apps', '--json', ...g]);
    expect(apps.stdout).toContain('"secret": "db-password"');
    expect(apps.stdout).toContain('"hostEnv": "SECRETS_TEST_REGION"');
  });

  it('gets a secret put again (the actor restarts), without a final line break of the file', async () => {
    const file = join(dir, 'rotated.txt');
    await writeFile(file, `${VALUE2}\n`);
    const put = await weft(['secret', 'put', 'db-password', '--from-file', file, ...g]);
    expect(put.code).toBe(0);
    const body = await envOf('vault', VALUE2);
    expect(body).toMatch(new RegExp(`^DB_PASSWORD=${VALUE2}$`, 'm'));
    const st = await statusWhen('vault', (s) => s.state === 'running');
    expectNoValue(JSON.stringify(st), 'status');
  });

  it('fails to start when a secret or a host variable is missing, and status names them', async () => {
    await deploy(
      'missing',
      app(
        'missing',
        'yes',
        '        A: { secret: not-there }\n        B: { hostEnv: SECRETS_TEST_UNSET }\n        C: { secret: db-password }',
      ),
      false,
    );
    const st = await statusWhen('missing', (s) => s.state === 'failed');
    const error = st.actors[0]!.error!;
    expect(error).toContain("WEFT_ERR_SECRET: actor 'missing':");
    expect(error).toContain(
      `env A: secret 'not-there' is not in lattice '${lattice}' (weft secret put not-there)`,
    );
    expect(error).toContain('env B: host variable SECRETS_TEST_UNSET is not set on this host');
    expect(error).not.toContain('env C');
    const cli = await weft(['status', 'missing', ...g]);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain("secret 'not-there' is not in lattice");
    const actors = await weft(['get', 'actors', ...g]);
    expect(actors.stdout).toMatch(/missing\s.*failed \(WEFT_ERR_SECRET/);
    expectNoValue(cli.stdout + actors.stdout + JSON.stringify(st), 'status of a failed actor');
  });

  it('starts once the missing secret is put', async () => {
    await deploy('late', app('late', 'yes', '        LATE: { secret: later }'), false);
    await statusWhen('late', (s) => s.state === 'failed');
    const put = await weft(['secret', 'put', 'later', '--value', LATER, ...g]);
    expect(put.code).toBe(0);
    await statusWhen('late', (s) => s.state === 'running');
    expect(await envOf('late')).toMatch(new RegExp(`^LATE=${LATER}$`, 'm'));
  });

  it('fails to start on a host without the secrets key, saying so', async () => {
    await deploy('keyless', app('keyless', 'no', '        X: { secret: db-password }'), false);
    const st = await statusWhen('keyless', (s) => s.state === 'failed');
    expect(st.actors[0]!.error).toContain(
      "env X: secret 'db-password' needs a secrets key, and this host has none (start it with --secrets-key or WEFT_SECRETS_KEY)",
    );
    expect(st.actors[0]!.hosts.map((h) => h.hostId)).toEqual(['KEYLESS']);
  });

  it('refuses an altered entry, and one copied under another name', async () => {
    const { kv, value } = await rawEntry('secret.db-password');
    const entry = JSON.parse(Buffer.from(value!).toString()) as { sealed: string };
    const box = Buffer.from(entry.sealed, 'base64');
    box[box.length - 5] = box[box.length - 5]! ^ 0x20;
    await kv.put('secret.tampered', JSON.stringify({ ...entry, sealed: box.toString('base64') }));
    await kv.put('secret.copied', value!);
    await deploy(
      'tamper',
      app('tamper', 'yes', '        T: { secret: tampered }\n        C: { secret: copied }'),
      false,
    );
    const st = await statusWhen('tamper', (s) => s.state === 'failed');
    const error = st.actors[0]!.error!;
    expect(error).toContain(
      "env T: secret 'tampered' does not decrypt with this host's secrets key: the entry was altered",
    );
    expect(error).toContain(
      "env C: secret 'copied' holds a value sealed as another secret or for another lattice",
    );
    expectNoValue(error, 'the error of a refused entry');
  });

  it('left no value in any log', () => {
    for (const [name, text] of output) {
      expect(text().length, name).toBeGreaterThan(0);
      expectNoValue(text(), `the ${name}'s log`);
    }
    // The refusals were logged, by name.
    expect(output.get('keyed host')!()).toContain("secret 'tampered' does not decrypt");
  });
});

describe("under docs/security.md's least-privilege users", () => {
  it('the operator puts secrets, a host reads them but cannot write, a gateway cannot open them', async () => {
    const L = newLattice();
    const pass = { host: randomUUID(), gateway: randomUUID(), operator: randomUUID() };
    const server = await startNatsServer({
      config: securityConfig({
        lattice: L,
        host: { user: 'h', password: pass.host },
        gateway: { user: 'g', password: pass.gateway },
        operator: { user: 'o', password: pass.operator },
      }),
    });
    const as = (user: 'h' | 'g' | 'o', p: string) =>
      connectLattice({ servers: server.url, lattice: L, auth: { user, pass: p } });
    const clients: LatticeClient[] = [];
    try {
      const operator = await as('o', pass.operator);
      clients.push(operator);
      const key = createSecretsKey();
      const store = await SecretStore.open(operator);
      await store.publishKey(key.publicKey);
      await store.put('token', VALUE);

      const host = await as('h', pass.host);
      clients.push(host);
      const resolver = new SecretResolver({ client: host, seed: key.seed });
      expect(await resolver.checkPublishedKey()).toBeUndefined();
      expect(await resolver.resolve('api', { T: { secret: 'token' } })).toEqual({ T: VALUE });
      await resolver.stop();
      const hostStore = await SecretStore.open(host);
      await expect(hostStore.put('token', 'forged')).rejects.toMatchObject({
        code: ErrorCode.Unauthorized,
      });

      const gw = await as('g', pass.gateway);
      clients.push(gw);
      await expect(SecretStore.open(gw)).rejects.toMatchObject({ code: ErrorCode.Unauthorized });
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
    }
  });
});
