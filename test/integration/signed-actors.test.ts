/**
 * Signed actors end to end: `weft keys new`, `weft sign`, `weft inspect` as a user runs them, and
 * a real `weft host --trusted-issuer` process that runs the modules its issuer signed (a WCGI and
 * a proxy actor, 200 through the gateway) and refuses the rest with WEFT_ERR_UNTRUSTED in the
 * application's status: unsigned (both kinds), another issuer's, altered after signing, expired.
 */
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  appStatus,
  deployApplication,
  parseManifest,
  signModule,
  wasmSections,
  type AppStatus,
  type ModuleClaims,
} from '../../lattice/index.ts';
import { startHostProcess, weft, type Service } from '../helpers/cli.ts';
import { ACTORS_DIST, startStack, type Stack } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

const HELLO = join(ACTORS_DIST, 'hello.wasm');
const HTTPD = join(ACTORS_DIST, 'httpd.wasm');

let dir: string;
let stack: Stack;
let host: Service | undefined;
let issuerPub: string;
const keyFile = () => join(dir, 'issuer.nk');
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-signed-'));
  stack = await startStack(inject('natsUrl'), { hosts: 0 });
});

afterAll(async () => {
  await host?.stop('SIGKILL');
  await stack?.stop();
});

describe('the CLI', () => {
  it('makes an issuer key: the seed in a 0600 file, the public key printed', async () => {
    const r = await weft(['keys', 'new', '--out', keyFile()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    issuerPub = /^public: (A[A-Z2-7]{55})$/m.exec(r.stdout)![1]!;
    expect(r.stdout).not.toMatch(/SA[A-Z2-7]{56}/);
    expect((await readFile(keyFile(), 'utf8')).trim()).toMatch(/^SA[A-Z2-7]{56}$/);
    expect((await stat(keyFile())).mode & 0o777).toBe(0o600);
    // Never overwrites a key.
    const again = await weft(['keys', 'new', '--out', keyFile()]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${keyFile()} exists already`);
  });

  it('signs modules; inspect shows the claims and says whether they hold', async () => {
    for (const [module, name, out] of [
      [HELLO, 'hello', 'hello_s.wasm'],
      [HTTPD, 'httpd', 'httpd_s.wasm'],
    ] as const) {
      const r = await weft([
        'sign',
        module,
        '--issuer',
        keyFile(),
        '--name',
        name,
        '--expires',
        '30d',
        '-o',
        file(out),
      ]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`'${name}' signed by ${issuerPub}`);
    }
    const r = await weft(['inspect', file('hello_s.wasm'), '--json']);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout) as {
      signed: boolean;
      valid: boolean;
      claims: ModuleClaims;
      hashMatches: boolean;
      signatureValid: boolean;
      validNow: boolean;
    };
    expect(info).toMatchObject({
      signed: true,
      valid: true,
      hashMatches: true,
      signatureValid: true,
      validNow: true,
      claims: { iss: issuerPub, name: 'hello' },
    });
    expect(info.claims.exp! - info.claims.iat).toBe(30 * 86_400);
    const text = await weft(['inspect', file('hello_s.wasm')]);
    expect(text.stdout).toMatch(/issuer\s+A[A-Z2-7]{55}\n/);
    expect(text.stdout).toMatch(/module\s+sha256:[0-9a-f]{64} \(matches\)/);
    expect(text.stdout).toMatch(/valid now\s+yes/);

    // Another issuer, its seed given on the command line.
    const other = await weft(['keys', 'new']);
    const seed = /^seed: (SA[A-Z2-7]{56})$/m.exec(other.stdout)![1]!;
    const signedByOther = await weft([
      'sign',
      HELLO,
      '--issuer',
      seed,
      '--name',
      'hello',
      '-o',
      file('other_s.wasm'),
    ]);
    expect(signedByOther.code).toBe(0);

    // Altered after signing: a byte of a data segment flipped, so the module still validates.
    const signed = new Uint8Array(await readFile(file('hello_s.wasm')));
    const data = wasmSections(signed).find((s) => s.id === 11)!;
    signed[data.end - 1] = signed[data.end - 1]! ^ 0x20;
    await writeFile(file('altered.wasm'), signed);
    const altered = await weft(['inspect', file('altered.wasm')]);
    expect(altered.code).toBe(1);
    expect(altered.stdout).toMatch(/DOES NOT MATCH/);
    expect(altered.stdout).toMatch(/valid now\s+no: module altered after signing/);

    // Expired: issued two hours ago for one (the CLI only issues from now, so the API does it).
    const seedOfKey = (await readFile(keyFile(), 'utf8')).trim();
    const expired = signModule(await readFile(HELLO), {
      issuerSeed: seedOfKey,
      name: 'hello',
      now: new Date(Date.now() - 2 * 3_600_000),
      expiresInSec: 3600,
    });
    await writeFile(file('expired.wasm'), expired);
    const exp = await weft(['inspect', file('expired.wasm')]);
    expect(exp.code).toBe(1);
    expect(exp.stdout).toMatch(/valid now\s+no: signature expired at \d{4}-/);

    const unsigned = await weft(['inspect', HELLO]);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stdout).toContain('not signed (no weft-jwt section)');
  });

  it('refuses bad keys and inputs with messages naming the file', async () => {
    const userSeed = file('user.nk');
    // A user seed (SU…): not an issuer's.
    const { createUser } = await import('@nats-io/nkeys');
    await writeFile(userSeed, new TextDecoder().decode(createUser().getSeed()));
    const r = await weft([
      'sign',
      HELLO,
      '--issuer',
      userSeed,
      '--name',
      'x',
      '-o',
      file('x.wasm'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--issuer: ${userSeed}: the seed is not an issuer's`);
    const missing = await weft(['sign', HELLO, '--issuer', file('nope.nk'), '--name', 'x']);
    expect(missing.stderr).toContain(`cannot read key file ${file('nope.nk')} (ENOENT)`);
    const notWasm = await weft(['sign', keyFile(), '--issuer', keyFile(), '--name', 'x']);
    expect(notWasm.code).toBe(1);
    expect(notWasm.stderr).toContain(`${keyFile()} is not a WebAssembly module`);
    const badExpiry = await weft([
      'sign',
      HELLO,
      '--issuer',
      keyFile(),
      '--name',
      'x',
      '--expires',
      '-3',
    ]);
    expect(badExpiry.code).not.toBe(0);
    const badTrust = await weft(['host', '--nats', stack.natsUrl, '--lattice', stack.lattice], {
      env: { WEFT_TRUSTED_ISSUERS: 'UABC,nope' },
      timeoutMs: 15_000,
    });
    expect(badTrust.code).toBe(2);
    expect(badTrust.stderr).toMatch(/--trusted-issuer: 'UABC' is not an issuer's public key/);
  });
});

describe('a host with a trusted issuer', () => {
  let st: AppStatus;

  beforeAll(async () => {
    host = await startHostProcess(stack.natsUrl, stack.lattice, 'TRUST1', [
      '--heartbeat-ms',
      '500',
      '--trusted-issuer',
      issuerPub,
    ]);
    const actor = (name: string, module: string, extra = '') => `
    - name: ${name}
      module: ${module}
      routes: [{ path: /${name}/... }]${extra}`;
    const yaml = `apiVersion: weft/v1
kind: Application
metadata: { name: signed, version: 1.0.0 }
spec:
  actors:${[
    actor('good', file('hello_s.wasm')),
    actor('proxy', file('httpd_s.wasm'), '\n      mode: proxy'),
    actor('unsigned', HELLO, '\n      limits: { timeoutMs: 1000 }'),
    actor('unsignedproxy', HTTPD, '\n      mode: proxy'),
    actor('other', file('other_s.wasm')),
    actor('altered', file('altered.wasm')),
    actor('expired', file('expired.wasm')),
  ].join('')}`;
    const manifestFile = file('app.yaml');
    await deployApplication(stack.client, parseManifest(yaml, manifestFile), manifestFile);
    st = await until(
      async () => {
        const s = await appStatus(stack.client, 'signed');
        return s.actors.every((a) =>
          a.hosts.some((h) => h.state === 'running' || h.state === 'failed'),
        )
          ? s
          : undefined;
      },
      { name: 'every actor running or failed', timeoutMs: 20_000 },
    );
  });

  it('runs the modules its issuer signed', async () => {
    let last = '';
    const byName = Object.fromEntries(st.actors.map((a) => [a.actor, a]));
    expect(byName['good']!.running).toBe(1);
    expect(byName['proxy']!.running).toBe(1);
    await until(
      async () => {
        const r = await fetch(`${stack.gateway.url}/good/?name=signed`);
        last = `${r.status} ${await r.text()}`;
        return r.status === 200;
      },
      { name: 'good through the gateway', timeoutMs: 10_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last reply: ${last}`, { cause: err });
    });
    const res = await fetch(`${stack.gateway.url}/good/?name=signed`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Hello, signed!\n');
    const proxied = await fetch(`${stack.gateway.url}/proxy/hello?name=proxy`);
    expect(proxied.status).toBe(200);
    await proxied.text();
  });

  it('refuses the others, and the status says why', async () => {
    expect(st.state).toBe('failed');
    const errorOf = (name: string) => {
      const a = st.actors.find((x) => x.actor === name)!;
      expect(a.running).toBe(0);
      expect(a.hosts.map((h) => h.state)).toEqual(['failed']);
      return a.error!;
    };
    expect(errorOf('unsigned')).toMatch(
      new RegExp(
        `^WEFT_ERR_UNTRUSTED: actor 'unsigned' \\(sha256:[0-9a-f]+\\) is unsigned .*trusted: ${issuerPub}`,
      ),
    );
    expect(errorOf('unsignedproxy')).toMatch(
      /^WEFT_ERR_UNTRUSTED: actor 'unsignedproxy' .* is unsigned/,
    );
    expect(errorOf('other')).toMatch(/^WEFT_ERR_UNTRUSTED: .*issuer A[A-Z2-7]{55} is not trusted/);
    expect(errorOf('altered')).toMatch(
      /^WEFT_ERR_UNTRUSTED: .*module altered after signing \(hash/,
    );
    expect(errorOf('expired')).toMatch(/^WEFT_ERR_UNTRUSTED: .*signature expired at /);

    // As people see it.
    const r = await weft(['status', 'signed', '--nats', stack.natsUrl, '--lattice', stack.lattice]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /altered\s+wcgi\s+0\/1\s+TRUST1:0\/1\s+WEFT_ERR_UNTRUSTED: .*altered after signing/,
    );
    // The gateway finds no host running it.
    const res = await fetch(`${stack.gateway.url}/unsigned/`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'WEFT_ERR_NO_HOST' });
  });
});
