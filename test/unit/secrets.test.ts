/**
 * Secrets (lattice/secrets.ts): the xkey sealing of values at rest, and each way an entry must be
 * refused (altered, sealed for another key, copied under another name or lattice, not an entry);
 * env references in the manifest (`{ secret }`, `{ hostEnv }`): parsed, copied, and every mistake
 * named at its path.
 */
import { createAccount } from '@nats-io/nkeys';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  HTTP_STATUS_BY_CODE,
  MANIFEST_SCHEMA,
  MAX_SECRET_BYTES,
  ManifestInvalidError,
  WeftError,
  assertSecretName,
  assertSecretsPublicKey,
  createSecretsKey,
  envReferences,
  fromWire,
  openSecret,
  parseManifest,
  plainEnv,
  sealSecret,
  secretsPublicKey,
  specDigest,
  toWire,
  type ManifestProblem,
  type ResolvedActor,
  type SealedSecret,
} from '../../lattice/index.ts';

const KEY = createSecretsKey();
const OTHER = createSecretsKey();
const VALUE = 'p@ss wörd=1;\n"quoted"';

const seal = (over: Partial<Parameters<typeof sealSecret>[0]> = {}): SealedSecret =>
  sealSecret({
    lattice: 'L',
    name: 'db-password',
    value: VALUE,
    recipient: KEY.publicKey,
    ...over,
  });

/** The WEFT_ERR_SECRET message openSecret throws, or a failure if it opens. */
function refusal(entry: unknown, opts: { lattice?: string; name?: string; seed?: string } = {}) {
  try {
    openSecret(entry, { lattice: 'L', name: 'db-password', seed: KEY.seed, ...opts });
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    expect((err as WeftError).code).toBe(ErrorCode.Secret);
    const message = (err as Error).message;
    expect(message).not.toContain(VALUE);
    expect(JSON.stringify(toWire(err))).not.toContain('wörd');
    return message;
  }
  throw new Error('openSecret opened the entry');
}

/** `sealed` with the byte at `i` of its box flipped. */
function flip(entry: SealedSecret, i: number): SealedSecret {
  const box = Buffer.from(entry.sealed, 'base64');
  box[i] = box[i]! ^ 0x01;
  return { ...entry, sealed: box.toString('base64') };
}

describe('the secrets key', () => {
  it('is an nkeys curve pair: a seed SX… whose public key X… is what it says', () => {
    expect(KEY.seed).toMatch(/^SX[A-Z2-7]{56}$/);
    expect(KEY.publicKey).toMatch(/^X[A-Z2-7]{55}$/);
    expect(secretsPublicKey(KEY.seed)).toBe(KEY.publicKey);
    expect(assertSecretsPublicKey(KEY.publicKey)).toBe(KEY.publicKey);
    expect(KEY.publicKey).not.toBe(OTHER.publicKey);
  });

  it('refuses seeds and public keys of other kinds, saying what a secrets key is', () => {
    const account = createAccount();
    const accountSeed = new TextDecoder().decode(account.getSeed());
    expect(() => secretsPublicKey(accountSeed)).toThrow(/curve seed \(SX…/);
    expect(() => secretsPublicKey('not a seed')).toThrow(/curve seed/);
    expect(() => assertSecretsPublicKey(account.getPublicKey())).toThrow(
      /not a secrets public key/,
    );
    // A public key with a broken checksum.
    const broken = `${KEY.publicKey.slice(0, -1)}${KEY.publicKey.endsWith('A') ? 'B' : 'A'}`;
    expect(() => assertSecretsPublicKey(broken)).toThrow(/not a secrets public key/);
  });
});

describe('sealing a secret', () => {
  it('opens with the seed to the exact value, and holds no trace of it in clear', () => {
    const e = seal();
    expect(e).toMatchObject({ v: 1, alg: 'xkv1', recipient: KEY.publicKey });
    expect(e.sender).toMatch(/^X[A-Z2-7]{55}$/);
    expect(e.sender).not.toBe(KEY.publicKey);
    expect(JSON.stringify(e)).not.toContain('wörd');
    expect(Buffer.from(e.sealed, 'base64').toString('latin1')).not.toContain('p@ss');
    expect(openSecret(e, { lattice: 'L', name: 'db-password', seed: KEY.seed })).toBe(VALUE);
  });

  it('uses a new sender key and nonce every time: the same value never seals the same', () => {
    const a = seal();
    const b = seal();
    expect(a.sender).not.toBe(b.sender);
    expect(a.sealed).not.toBe(b.sealed);
    expect(openSecret(b, { lattice: 'L', name: 'db-password', seed: KEY.seed })).toBe(VALUE);
  });

  it('keeps an empty value, and one of exactly the size limit', () => {
    expect(
      openSecret(seal({ value: '' }), { lattice: 'L', name: 'db-password', seed: KEY.seed }),
    ).toBe('');
    const big = 'x'.repeat(MAX_SECRET_BYTES);
    expect(
      openSecret(seal({ value: big }), { lattice: 'L', name: 'db-password', seed: KEY.seed }),
    ).toBe(big);
  });

  it('refuses what cannot be an environment variable or a secret name', () => {
    expect(() => seal({ value: 'a\0b' })).toThrow(/NUL/);
    expect(() => seal({ value: 'x'.repeat(MAX_SECRET_BYTES + 1) })).toThrow(/at most 65536 bytes/);
    expect(() => seal({ value: '\ud800' })).toThrow(/valid Unicode/);
    expect(() => seal({ name: 'a.b' })).toThrow(/invalid secret name 'a\.b'/);
    expect(() => seal({ recipient: 'Xnope' })).toThrow(/not a secrets public key/);
    for (const bad of ['', '-a', 'a b', 'a/b', '*', '>', 'x'.repeat(129)]) {
      expect(() => assertSecretName(bad), bad).toThrow(WeftError);
    }
    for (const good of ['a', 'DB_PASSWORD', 'db-password', '_x', '9', 'x'.repeat(128)]) {
      expect(assertSecretName(good)).toBe(good);
    }
  });
});

describe('opening a secret refuses', () => {
  it('an entry with any byte of its box altered (Poly1305)', () => {
    const e = seal();
    const size = Buffer.from(e.sealed, 'base64').length;
    // The nonce (after the 4-byte xkv1 header), the tag, the ciphertext, the last byte.
    for (const i of [4, 20, 28, 40, 44, size - 1]) {
      expect(refusal(flip(e, i)), `byte ${i}`).toContain(
        "secret 'db-password' does not decrypt with this host's secrets key: the entry was altered",
      );
    }
    // The header too: a box that is not xkv1.
    expect(refusal(flip(e, 0))).toContain('the entry was altered');
    expect(refusal({ ...e, sealed: e.sealed.slice(0, 20) })).toContain('the entry was altered');
    expect(refusal({ ...e, sender: OTHER.publicKey })).toContain('the entry was altered');
  });

  it('an entry sealed for another key, naming both keys', () => {
    const message = refusal(seal({ recipient: OTHER.publicKey }));
    expect(message).toContain(`sealed for secrets key ${OTHER.publicKey.slice(0, 12)}…`);
    expect(message).toContain(`this host holds ${KEY.publicKey.slice(0, 12)}…`);
    // Relabelled as sealed for this host's key: the box still does not open.
    expect(
      refusal({ ...seal({ recipient: OTHER.publicKey }), recipient: KEY.publicKey }),
    ).toContain('the entry was altered');
  });

  it('an entry copied under another name, or into another lattice', () => {
    const e = seal();
    expect(refusal(e, { name: 'greeting' })).toBe(
      "secret 'greeting' holds a value sealed as another secret or for another lattice: the entry was copied or altered",
    );
    expect(refusal(e, { lattice: 'M' })).toContain(
      'sealed as another secret or for another lattice',
    );
  });

  it('anything that is not a sealed entry', () => {
    const e = seal();
    for (const bad of [
      undefined,
      null,
      'text',
      [],
      {},
      { ...e, v: 2 },
      { ...e, alg: 'aes' },
      { ...e, sealed: 5 },
      { v: e.v, alg: e.alg, recipient: e.recipient, sealed: e.sealed },
    ]) {
      expect(refusal(bad), JSON.stringify(bad)).toContain(
        "secret 'db-password' is not a sealed entry this host can read",
      );
    }
  });
});

describe('WEFT_ERR_SECRET', () => {
  it('has an HTTP status and survives the wire', () => {
    expect(HTTP_STATUS_BY_CODE[ErrorCode.Secret]).toBe(500);
    const back = fromWire(
      toWire(new WeftError(ErrorCode.Secret, 'm', { details: { secret: 's' } })),
    );
    expect(back.code).toBe(ErrorCode.Secret);
    expect(back.details).toEqual({ secret: 's' });
  });
});

const manifest = (env: string): string => `apiVersion: weft/v1
kind: Application
metadata: { name: app, version: "1" }
spec:
  actors:
    - name: api
      module: ./api.wasm
      env:
${env}
`;

/** Every problem of a manifest that must not parse. */
function problems(text: string): ManifestProblem[] {
  try {
    parseManifest(text, 'app.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestInvalidError);
    return (err as ManifestInvalidError).details?.['errors'] as ManifestProblem[];
  }
  throw new Error('the manifest parsed');
}

const FORMS = 'expected a string, { secret: NAME } or { hostEnv: VAR }';

describe('env references in a manifest', () => {
  it('parse as strings, { secret } and { hostEnv }, copied and frozen', () => {
    const m = parseManifest(
      manifest(
        '        GREETING: hi\n        DB_PASSWORD: { secret: db-password }\n        REGION: { hostEnv: AWS_REGION }',
      ),
      'app.yaml',
    );
    const env = m.spec.actors[0]!.env;
    expect(env).toEqual({
      GREETING: 'hi',
      DB_PASSWORD: { secret: 'db-password' },
      REGION: { hostEnv: 'AWS_REGION' },
    });
    expect(Object.isFrozen(env['DB_PASSWORD'])).toBe(true);
    expect(envReferences(env)).toEqual({ secrets: ['db-password'], hostEnv: ['AWS_REGION'] });
    expect(() => plainEnv(env)).toThrow(/env DB_PASSWORD is a reference that was not resolved/);
    expect(plainEnv({ A: 'x' })).toEqual({ A: 'x' });
  });

  it('are valid under the published schema, which refuses what the parser refuses', () => {
    const validate = new Ajv({ strict: true }).compile(MANIFEST_SCHEMA);
    const doc = (env: unknown) => ({
      apiVersion: 'weft/v1',
      kind: 'Application',
      metadata: { name: 'a', version: '1' },
      spec: { actors: [{ name: 'a', module: './a.wasm', env }] },
    });
    expect(validate(doc({ A: 'x', B: { secret: 'b' }, C: { hostEnv: 'C' } }))).toBe(true);
    for (const bad of [{ secret: 'b', hostEnv: 'C' }, { secret: 'a b' }, {}, { value: 'x' }, 5]) {
      expect(validate(doc({ A: bad })), JSON.stringify(bad)).toBe(false);
    }
  });

  it('name each mistake at its path, with what was expected', () => {
    const errors = problems(
      manifest(
        [
          '        DB_PASSWORD: { secret: a, hostEnv: B }',
          '        EMPTY_REF: {}',
          '        TYPO: { secrt: db }',
          '        LISTED: [db]',
          '        BAD_NAME: { secret: "db password" }',
          '        NUMBER_NAME: { secret: 5 }',
          '        BAD_VAR: { hostEnv: "1X" }',
          '        OWN_KEY: { hostEnv: WEFT_SECRETS_KEY }',
          '        PORT: 8080',
        ].join('\n'),
      ),
    );
    const at = (path: string) => errors.find((e) => e.path === path)?.message;
    expect(at('spec.actors[0].env.DB_PASSWORD')).toBe(`${FORMS}, got both secret and hostEnv`);
    expect(at('spec.actors[0].env.EMPTY_REF')).toBe(`${FORMS}, got an empty object`);
    expect(at('spec.actors[0].env.TYPO.secrt')).toBe(
      `${FORMS}, got an object with 'secrt'; did you mean 'secret'?`,
    );
    expect(at('spec.actors[0].env.LISTED')).toBe(`${FORMS}, got array`);
    expect(at('spec.actors[0].env.BAD_NAME.secret')).toMatch(/^invalid secret name "db password"/);
    expect(at('spec.actors[0].env.NUMBER_NAME.secret')).toBe('expected string, got number 5');
    expect(at('spec.actors[0].env.BAD_VAR.hostEnv')).toMatch(
      /^invalid environment variable name "1X"/,
    );
    expect(at('spec.actors[0].env.OWN_KEY.hostEnv')).toContain(
      "WEFT_ variables are the host's own configuration",
    );
    expect(at('spec.actors[0].env.PORT')).toBe(
      'expected string, got number 8080; quote the value: "8080"',
    );
    // One problem per mistake (not one per branch of the schema's anyOf), at its line.
    expect(errors).toHaveLength(9);
    expect(errors.find((e) => e.path === 'spec.actors[0].env.DB_PASSWORD')).toMatchObject({
      line: 9,
      column: 22,
    });
  });

  it('are what the stored application keeps: its digest changes with the reference', () => {
    const base = {
      name: 'api',
      module: 'sha256:00',
      moduleRef: './api.wasm',
      files: [],
    } as unknown as ResolvedActor;
    const a = specDigest({ ...base, env: { X: { secret: 'one' } } });
    const b = specDigest({ ...base, env: { X: { secret: 'two' } } });
    expect(a).not.toBe(b);
  });
});
