/**
 * Signed modules (lattice/signing.ts): a JWT in the `weft-jwt` custom section, checked against
 * trusted issuers. Good path, then each way a module must be refused: unsigned, another issuer,
 * altered after signing, expired or not yet valid, a garbled, truncated or doubled section, an
 * edited claim, and seeds that are not an issuer's.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createOperator, createServer, createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { WasiContext } from '../../host/wasi/index.ts';
import {
  ErrorCode,
  HTTP_STATUS_BY_CODE,
  SIGNATURE_SECTION,
  WeftError,
  createIssuerKey,
  inspectSignature,
  moduleHash,
  readClaims,
  signModule,
  verifyModule,
  wasmSections,
} from '../../lattice/index.ts';
import { text } from '../helpers/wasm-fixtures.ts';

const HELLO = new Uint8Array(
  readFileSync(new URL('../../actors/dist/hello.wasm', import.meta.url)),
);
const issuer = createIssuerKey();
const other = createIssuerKey();
const HOUR_SEC = 3600;

function sign(bytes = HELLO, opts: Partial<Parameters<typeof signModule>[1]> = {}): Uint8Array {
  return signModule(bytes, { issuerSeed: issuer.seed, name: 'hello', ...opts });
}

/** The WEFT_ERR_UNTRUSTED message verifyModule throws for `bytes`, or a failure if it passes. */
function refusal(bytes: Uint8Array, trusted = [issuer.publicKey], now = new Date()): string {
  try {
    verifyModule(bytes, trusted, now, 'hello.wasm');
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    expect((err as WeftError).code).toBe(ErrorCode.Untrusted);
    return (err as Error).message;
  }
  throw new Error('verifyModule accepted the module');
}

/** A custom section `name` holding `content`, as bytes to append to a module. */
function customSection(name: string, content: Uint8Array): Uint8Array {
  const n = new TextEncoder().encode(name);
  const body = [n.length, ...n, ...content];
  // Sizes here stay under 2^14: two LEB128 bytes at most.
  const size = body.length < 128 ? [body.length] : [(body.length & 0x7f) | 0x80, body.length >> 7];
  return new Uint8Array([0, ...size, ...body]);
}

const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** The JWT stored in a signed module. */
const jwtOf = (bytes: Uint8Array) => inspectSignature(bytes)!.jwt;

/** `bytes` with its signature section's JWT replaced by `jwt`. */
function withJwt(bytes: Uint8Array, jwt: string): Uint8Array {
  const unsigned = bytes.subarray(0, wasmSections(bytes).at(-1)!.start);
  return concat(unsigned, customSection(SIGNATURE_SECTION, new TextEncoder().encode(jwt)));
}

function runHello(bytes: Uint8Array): string {
  const ctx = new WasiContext({
    args: ['hello'],
    env: { REQUEST_METHOD: 'GET', QUERY_STRING: 'name=Ada' },
  });
  const code = ctx.start(new WebAssembly.Instance(new WebAssembly.Module(bytes), ctx.imports));
  expect(code).toBe(0);
  return text(ctx.stdout());
}

describe('signing', () => {
  it('round-trips: the claims name the issuer, the name and the hash of the unsigned module', () => {
    const signed = sign(HELLO, { expiresInSec: HOUR_SEC });
    const claims = verifyModule(signed, [other.publicKey, issuer.publicKey]);
    const hash = `sha256:${createHash('sha256').update(HELLO).digest('hex')}`;
    expect(claims).toMatchObject({
      iss: issuer.publicKey,
      sub: hash,
      name: 'hello',
      weft: { module_hash: hash },
    });
    expect(claims.exp! - claims.iat).toBe(HOUR_SEC);
    expect(readClaims(signed)).toEqual(claims);
    expect(moduleHash(signed)).toBe(hash);
    expect(issuer.publicKey).toMatch(/^A/);
    expect(issuer.seed).toMatch(/^SA/);
    // The section is appended: the module before it is the original, byte for byte.
    expect(signed.subarray(0, HELLO.length)).toEqual(HELLO);
    const last = wasmSections(signed).at(-1)!;
    expect(last).toMatchObject({ id: 0, name: SIGNATURE_SECTION, end: signed.length });
    const [header] = jwtOf(signed).split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({
      typ: 'JWT',
      alg: 'ed25519-nkey',
    });
  });

  it('keeps the module valid: the signed module compiles and runs as the original', async () => {
    const signed = sign();
    await expect(WebAssembly.compile(signed)).resolves.toBeInstanceOf(WebAssembly.Module);
    expect(runHello(signed)).toBe(runHello(HELLO));
    expect(runHello(signed)).toContain('Hello, Ada!');
  });

  it('replaces the section when a module is signed again', () => {
    const once = sign(HELLO, { name: 'first' });
    const twice = signModule(once, { issuerSeed: other.seed, name: 'second' });
    expect(wasmSections(twice).filter((s) => s.name === SIGNATURE_SECTION)).toHaveLength(1);
    expect(readClaims(twice)).toMatchObject({ iss: other.publicKey, name: 'second' });
    expect(twice.subarray(0, HELLO.length)).toEqual(HELLO);
    expect(verifyModule(twice, [other.publicKey]).weft.module_hash).toBe(moduleHash(HELLO));
  });

  it('accepts an operator key as issuer', () => {
    const op = createOperator();
    const seed = new TextDecoder().decode(op.getSeed());
    const signed = signModule(HELLO, { issuerSeed: seed, name: 'hello' });
    expect(verifyModule(signed, [op.getPublicKey()]).iss).toMatch(/^O/);
  });

  it('maps WEFT_ERR_UNTRUSTED to HTTP 403', () => {
    expect(HTTP_STATUS_BY_CODE[ErrorCode.Untrusted]).toBe(403);
  });
});

describe('refusals', () => {
  it('refuses an unsigned module', () => {
    expect(refusal(HELLO)).toMatch(
      new RegExp(`hello\\.wasm is unsigned .*trusted: ${issuer.publicKey}`),
    );
    expect(readClaims(HELLO)).toBeUndefined();
  });

  it("refuses another issuer's module, naming it and the trusted ones", () => {
    const msg = refusal(signModule(HELLO, { issuerSeed: other.seed, name: 'hello' }));
    expect(msg).toContain(`issuer ${other.publicKey} is not trusted`);
    expect(msg).toContain(`trusted: ${issuer.publicKey}`);
  });

  it('refuses a module altered after signing (a byte of its code flipped)', () => {
    const signed = sign();
    const code = wasmSections(signed).find((s) => s.id === 10)!;
    const altered = signed.slice();
    const at = code.end - 2;
    altered[at] = altered[at]! ^ 0x01;
    expect(refusal(altered)).toMatch(
      /module altered after signing \(hash sha256:[0-9a-f]{64} ≠ signed sha256:[0-9a-f]{64}\)/,
    );
    const r = inspectSignature(altered)!;
    expect(r.signatureValid).toBe(true);
    expect(r.hashMatches).toBe(false);
  });

  it('refuses a module with a section added after signing', () => {
    const signed = sign();
    const added = concat(signed, customSection('extra', new Uint8Array([1, 2, 3])));
    expect(refusal(added)).toMatch(/module altered after signing/);
  });

  it('refuses an expired claim, and one not valid yet', () => {
    const issued = new Date(Date.now() - 2 * HOUR_SEC * 1000);
    const expired = sign(HELLO, { now: issued, expiresInSec: HOUR_SEC });
    const expAt = new Date((Math.floor(issued.getTime() / 1000) + HOUR_SEC) * 1000);
    expect(refusal(expired)).toBe(`hello.wasm: signature expired at ${expAt.toISOString()}`);
    expect(inspectSignature(expired)!.validNow).toBe(false);
    // Valid before the expiry; refused exactly at it.
    expect(verifyModule(expired, [issuer.publicKey], new Date(expAt.getTime() - 1000)).name).toBe(
      'hello',
    );
    expect(refusal(expired, [issuer.publicKey], expAt)).toMatch(/expired/);
    const later = sign(HELLO, { notBefore: new Date(Date.now() + HOUR_SEC * 1000) });
    expect(refusal(later)).toMatch(/signature not valid before/);
  });

  it('refuses a claim edited after signing (bad signature)', () => {
    const signed = sign(HELLO, { expiresInSec: 60 });
    const [h, p, s] = jwtOf(signed).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    claims['exp'] = (claims['exp'] as number) + 365 * 86_400;
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    expect(refusal(withJwt(signed, forged))).toMatch(/bad signature/);
    // A token re-signed by another key but naming the trusted issuer fails the same way.
    const other2 = jwtOf(signModule(HELLO, { issuerSeed: other.seed, name: 'hello' }));
    const [, , otherSig] = other2.split('.');
    expect(refusal(withJwt(signed, `${h}.${p}.${otherSig}`))).toMatch(/bad signature/);
  });

  it('refuses a garbage or truncated section', () => {
    const signed = sign();
    const garbage = concat(HELLO, customSection(SIGNATURE_SECTION, new Uint8Array([0xff, 0, 7])));
    expect(refusal(garbage)).toMatch(/weft-jwt section is not UTF-8|does not hold a valid token/);
    expect(refusal(withJwt(signed, 'not a token'))).toMatch(
      /does not hold a valid token: not a JWT/,
    );
    const jwt = jwtOf(signed);
    expect(refusal(withJwt(signed, jwt.slice(0, -10)))).toMatch(
      /does not hold a valid token: its signature is \d+ bytes, not 64/,
    );
    expect(refusal(withJwt(signed, jwt.slice(0, jwt.indexOf('.') + 20)))).toMatch(
      /does not hold a valid token/,
    );
    const [h] = jwt.split('.');
    const noHash = Buffer.from(JSON.stringify({ iss: issuer.publicKey, name: 'x' })).toString(
      'base64url',
    );
    expect(refusal(withJwt(signed, `${h}.${noHash}.${'A'.repeat(86)}`))).toMatch(
      /missing or malformed claims: jti, iat, weft\.module_hash/,
    );
    // The section's own size runs past the end of the file.
    const truncated = signed.subarray(0, signed.length - 5);
    expect(refusal(truncated)).toMatch(/truncated module/);
    expect(() => readClaims(withJwt(signed, 'x.y'))).toThrow(/not a JWT/);
  });

  it('refuses two signature sections', () => {
    const signed = sign();
    const two = concat(
      signed,
      customSection(SIGNATURE_SECTION, new TextEncoder().encode(jwtOf(signed))),
    );
    expect(refusal(two)).toMatch(/has 2 weft-jwt sections; a signed module has one/);
  });

  it('refuses to sign with a seed that is not an issuer seed, or not a seed', () => {
    for (const kp of [createUser(), createServer()]) {
      const seed = new TextDecoder().decode(kp.getSeed());
      expect(() => signModule(HELLO, { issuerSeed: seed, name: 'x' })).toThrow(
        /not an account \(A…\) or operator \(O…\) key/,
      );
    }
    expect(() => signModule(HELLO, { issuerSeed: 'SAnope', name: 'x' })).toThrow(
      /not an nkeys seed/,
    );
    expect(() =>
      signModule(HELLO, { issuerSeed: issuer.seed, name: 'x', expiresInSec: 0 }),
    ).toThrow(/lifetime/);
    expect(() =>
      signModule(new TextEncoder().encode('not wasm'), { issuerSeed: issuer.seed, name: 'x' }),
    ).toThrow(/not a WebAssembly core module/);
  });
});
