/**
 * Signed actors: an issuer (an nkeys Ed25519 account or operator key) vouches for a module with a
 * JWT kept in the module's own custom section `weft-jwt`, after wasmCloud's embedded claims.
 *
 * Security model: the token names its issuer (`iss`), and carries the sha256 of the module without
 * any `weft-jwt` section (`weft.module_hash`). A host given trusted issuers runs a module only if
 * it holds exactly one such section, whose token is well formed, is issued by a trusted key, is
 * signed by that key (the signature covers `header.payload`, so no claim can be edited), hashes to
 * the bytes around it (so no code or data can be edited), and is valid now (`nbf` ≤ now < `exp`).
 * Anything else is refused with WEFT_ERR_UNTRUSTED and a message naming the reason. An empty
 * trust list means signatures are not checked at all: trust is opt-in per host.
 *
 * The section is appended to the module: custom sections do not change what the module does, so
 * the signed module compiles and runs as the unsigned one. Signing again replaces the section.
 */
import { randomUUID } from 'node:crypto';
import { createAccount, fromPublic, fromSeed } from '@nats-io/nkeys';
import { ErrorCode, WeftError } from './errors.ts';
import { sha256Digest } from './stores.ts';
import { uleb128, wasmSections, type WasmSection } from './wasm.ts';

/** The name of the custom section holding the JWT. */
export const SIGNATURE_SECTION = 'weft-jwt';
/** The JWT header weft writes and accepts (the algorithm NATS's own JWTs use). */
export const JWT_HEADER = { typ: 'JWT', alg: 'ed25519-nkey' } as const;

/** The claims of a signed module, as in the JWT's payload. Times are JWT NumericDates (s). */
export interface ModuleClaims {
  /** A unique id for this token. */
  jti: string;
  /** Issued at. */
  iat: number;
  /** Expires at (absent: never). */
  exp?: number;
  /** Not valid before (absent: from `iat` on, or at once). */
  nbf?: number;
  /** The issuer's public key: an account (`A…`) or operator (`O…`) nkey. */
  iss: string;
  /** The subject: the module, named by its digest (`sha256:<hex>`, as `weft.module_hash`). */
  sub: string;
  /** The actor's name as the issuer calls it. */
  name: string;
  /** What weft checks, as wasmCloud's `wascap` block. */
  weft: {
    /** `sha256:<hex>` of the module's bytes without any `weft-jwt` section. */
    module_hash: string;
  };
}

export interface SignOptions {
  /** The issuer's seed (`SA…` account or `SO…` operator). */
  issuerSeed: string;
  /** The actor's name, recorded as `name`. */
  name: string;
  /** Lifetime from the issue time, in seconds (default: never expires). */
  expiresInSec?: number;
  /** The token is not valid before this time (default: no such bound). */
  notBefore?: Date;
  /** The issue time (default now). */
  now?: Date;
}

/** What `weft inspect` shows: the claims and each check's outcome. */
export interface SignatureReport {
  claims: ModuleClaims;
  /** The JWT as stored in the section. */
  jwt: string;
  /** `sha256:<hex>` of the module without its signature section, as computed now. */
  moduleHash: string;
  hashMatches: boolean;
  signatureValid: boolean;
  /** Inside `nbf`…`exp` at the time asked about. */
  validNow: boolean;
  /** Why the module is not valid (not counting trust), if it is not. */
  problem?: string;
}

const WASM_HEADER_BYTES = 8;
const CUSTOM_SECTION = 0;
const ISSUER_PREFIXES = ['A', 'O'];
const HASH_RE = /^sha256:[0-9a-f]{64}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const isSignature = (s: WasmSection) => s.id === CUSTOM_SECTION && s.name === SIGNATURE_SECTION;

/** The module's bytes with every `weft-jwt` section left out. */
function withoutSignature(bytes: Uint8Array, sections: WasmSection[]): Uint8Array {
  const kept = sections.filter((s) => !isSignature(s));
  if (kept.length === sections.length) return bytes;
  const out = new Uint8Array(WASM_HEADER_BYTES + kept.reduce((n, s) => n + (s.end - s.start), 0));
  out.set(bytes.subarray(0, WASM_HEADER_BYTES));
  let at = WASM_HEADER_BYTES;
  for (const s of kept) {
    out.set(bytes.subarray(s.start, s.end), at);
    at += s.end - s.start;
  }
  return out;
}

/**
 * `sha256:<hex>` of the module without its `weft-jwt` sections: the hash a token carries. For a
 * module that was never signed it is the sha256 of the file.
 */
export function moduleHash(bytes: Uint8Array): string {
  return sha256Digest(withoutSignature(bytes, wasmSections(bytes)));
}

function untrusted(message: string, details?: Record<string, unknown>): WeftError {
  return new WeftError(ErrorCode.Untrusted, message, details ? { details } : undefined);
}

/**
 * Check that `key` is an issuer's public key (account `A…` or operator `O…`); throws
 * WEFT_ERR_BAD_REQUEST naming it otherwise.
 */
export function assertIssuerKey(key: string): void {
  let ok = false;
  try {
    fromPublic(key);
    ok = ISSUER_PREFIXES.includes(key[0]!);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new WeftError(
      ErrorCode.BadRequest,
      `'${key}' is not an issuer's public key (an nkeys account key A… or operator key O…, as \`weft keys new\` prints)`,
    );
  }
}

/**
 * The issuer's key pair from its seed; throws WEFT_ERR_BAD_REQUEST for something that is not a
 * seed, or a seed of another kind (user `SU…`, server `SN…`, …).
 */
function issuerPair(seed: string): ReturnType<typeof fromSeed> {
  let kp: ReturnType<typeof fromSeed>;
  try {
    kp = fromSeed(new TextEncoder().encode(seed.trim()));
  } catch (err) {
    throw new WeftError(
      ErrorCode.BadRequest,
      `not an nkeys seed (${(err as Error).message}); make an issuer key with \`weft keys new\``,
      { cause: err },
    );
  }
  const pub = kp.getPublicKey();
  if (!ISSUER_PREFIXES.includes(pub[0]!)) {
    throw new WeftError(
      ErrorCode.BadRequest,
      `the seed is not an issuer's: its public key ${pub} is not an account (A…) or operator (O…) key; make one with \`weft keys new\``,
    );
  }
  return kp;
}

/** A new issuer key: an nkeys account key pair (public `A…`, seed `SA…`). */
export function createIssuerKey(): { publicKey: string; seed: string } {
  const kp = createAccount();
  return { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
}

/** The public key of an issuer seed (throws as signModule does for a bad one). */
export function issuerPublicKey(seed: string): string {
  return issuerPair(seed).getPublicKey();
}

const b64url = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');

/**
 * Sign a module: a JWT naming the issuer, `name` and the hash of the module, in a `weft-jwt`
 * custom section appended to it (any earlier one is removed first). Throws ModuleInvalidError for
 * bytes that are not a module, WEFT_ERR_BAD_REQUEST for a bad seed or lifetime.
 */
export function signModule(bytes: Uint8Array, opts: SignOptions): Uint8Array {
  const kp = issuerPair(opts.issuerSeed);
  if (opts.name.trim() === '') throw new WeftError(ErrorCode.BadRequest, 'the name is empty');
  if (
    opts.expiresInSec !== undefined &&
    !(Number.isInteger(opts.expiresInSec) && opts.expiresInSec > 0)
  ) {
    throw new WeftError(
      ErrorCode.BadRequest,
      `the lifetime must be a whole number of seconds > 0, got ${opts.expiresInSec}`,
    );
  }
  const unsigned = withoutSignature(bytes, wasmSections(bytes));
  const hash = sha256Digest(unsigned);
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const claims: ModuleClaims = {
    jti: randomUUID(),
    iat,
    ...(opts.expiresInSec === undefined ? {} : { exp: iat + opts.expiresInSec }),
    ...(opts.notBefore === undefined ? {} : { nbf: Math.floor(opts.notBefore.getTime() / 1000) }),
    iss: kp.getPublicKey(),
    sub: hash,
    name: opts.name,
    weft: { module_hash: hash },
  };
  const signingInput = `${b64url(JSON.stringify(JWT_HEADER))}.${b64url(JSON.stringify(claims))}`;
  const sig = kp.sign(new TextEncoder().encode(signingInput));
  const jwt = new TextEncoder().encode(`${signingInput}.${b64url(sig)}`);
  const name = new TextEncoder().encode(SIGNATURE_SECTION);
  const body = [...uleb128(name.length), ...name];
  const head = [CUSTOM_SECTION, ...uleb128(body.length + jwt.length), ...body];
  const out = new Uint8Array(unsigned.length + head.length + jwt.length);
  out.set(unsigned);
  out.set(head, unsigned.length);
  out.set(jwt, unsigned.length + head.length);
  return out;
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parse and check the token's shape (not its signature): throws WEFT_ERR_UNTRUSTED if bad. */
function parseJwt(jwt: string): { claims: ModuleClaims; signingInput: string; sig: Uint8Array } {
  const bad = (why: string) =>
    untrusted(`the ${SIGNATURE_SECTION} section does not hold a valid token: ${why}`);
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) {
    throw bad('not a JWT (three base64url parts)');
  }
  const json = (p: string, what: string): Record<string, unknown> => {
    try {
      const v: unknown = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      if (v !== null && typeof v === 'object' && !Array.isArray(v))
        return v as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw bad(`its ${what} is not a JSON object`);
  };
  const header = json(parts[0]!, 'header');
  if (header['typ'] !== JWT_HEADER.typ || header['alg'] !== JWT_HEADER.alg) {
    throw bad(`header ${JSON.stringify(header)}, expected ${JSON.stringify(JWT_HEADER)}`);
  }
  const c = json(parts[1]!, 'payload');
  const weft = c['weft'] as Record<string, unknown> | undefined;
  const problems = [
    typeof c['jti'] === 'string' ? '' : 'jti',
    isTime(c['iat']) ? '' : 'iat',
    c['exp'] === undefined || isTime(c['exp']) ? '' : 'exp',
    c['nbf'] === undefined || isTime(c['nbf']) ? '' : 'nbf',
    typeof c['iss'] === 'string' ? '' : 'iss',
    typeof c['name'] === 'string' && c['name'] !== '' ? '' : 'name',
    typeof weft === 'object' &&
    weft !== null &&
    typeof weft['module_hash'] === 'string' &&
    HASH_RE.test(weft['module_hash'])
      ? ''
      : 'weft.module_hash',
    c['sub'] === weft?.['module_hash'] ? '' : 'sub',
  ].filter(Boolean);
  if (problems.length > 0) throw bad(`missing or malformed claims: ${problems.join(', ')}`);
  const sig = Buffer.from(parts[2]!, 'base64url');
  if (sig.length !== 64) throw bad(`its signature is ${sig.length} bytes, not 64`);
  return {
    claims: c as unknown as ModuleClaims,
    signingInput: `${parts[0]}.${parts[1]}`,
    sig: new Uint8Array(sig),
  };
}

/** The signature section's JWT, undefined if there is none; throws if there are several. */
function findJwt(bytes: Uint8Array, sections: WasmSection[]): string | undefined {
  const found = sections.filter(isSignature);
  if (found.length === 0) return undefined;
  if (found.length > 1) {
    throw untrusted(
      `the module has ${found.length} ${SIGNATURE_SECTION} sections; a signed module has one`,
    );
  }
  const s = found[0]!;
  try {
    return utf8.decode(bytes.subarray(s.contentStart, s.end));
  } catch {
    throw untrusted(`the ${SIGNATURE_SECTION} section is not UTF-8 text`);
  }
}

function iso(sec: number): string {
  return new Date(sec * 1000).toISOString();
}

/**
 * Read the signature of a module and check it: the claims (their shape verified: WEFT_ERR_UNTRUSTED
 * for a garbled, truncated or doubled section), whether the signature and hash hold and whether
 * the token is valid at `now`. Undefined for an unsigned module.
 */
export function inspectSignature(
  bytes: Uint8Array,
  now: Date = new Date(),
): SignatureReport | undefined {
  const sections = wasmSections(bytes);
  const jwt = findJwt(bytes, sections);
  if (jwt === undefined) return undefined;
  const { claims, signingInput, sig } = parseJwt(jwt);
  let signatureValid = false;
  try {
    signatureValid =
      ISSUER_PREFIXES.includes(claims.iss[0]!) &&
      fromPublic(claims.iss).verify(new TextEncoder().encode(signingInput), sig);
  } catch {
    signatureValid = false;
  }
  const hash = sha256Digest(withoutSignature(bytes, sections));
  const hashMatches = hash === claims.weft.module_hash;
  const t = Math.floor(now.getTime() / 1000);
  let problem: string | undefined;
  if (!signatureValid) {
    problem = `bad signature: the token is not signed by its issuer ${claims.iss}`;
  } else if (!hashMatches) {
    problem = `module altered after signing (hash ${hash} ≠ signed ${claims.weft.module_hash})`;
  } else if (claims.exp !== undefined && t >= claims.exp) {
    problem = `signature expired at ${iso(claims.exp)}`;
  } else if (claims.nbf !== undefined && t < claims.nbf) {
    problem = `signature not valid before ${iso(claims.nbf)}`;
  }
  const validNow =
    (claims.exp === undefined || t < claims.exp) && (claims.nbf === undefined || t >= claims.nbf);
  return {
    claims,
    jwt,
    moduleHash: hash,
    hashMatches,
    signatureValid,
    validNow,
    ...(problem === undefined ? {} : { problem }),
  };
}

/** The claims of a signed module (shape verified), undefined if unsigned. See inspectSignature. */
export function readClaims(bytes: Uint8Array): ModuleClaims | undefined {
  return inspectSignature(bytes)?.claims;
}

/**
 * Refuse a module unless it is signed by one of `trustedIssuers`, unaltered and valid at `now`;
 * returns its claims. Throws WEFT_ERR_UNTRUSTED naming the reason: unsigned, an issuer not
 * trusted, a bad signature, altered after signing, expired or not yet valid, a garbled or doubled
 * section. `source` names the module in messages.
 */
export function verifyModule(
  bytes: Uint8Array,
  trustedIssuers: readonly string[],
  now: Date = new Date(),
  source = 'module',
): ModuleClaims {
  const trusted = `trusted: ${trustedIssuers.join(', ') || 'none'}`;
  let report: SignatureReport | undefined;
  try {
    report = inspectSignature(bytes, now);
  } catch (err) {
    if (err instanceof WeftError) {
      throw untrusted(`${source}: ${err.message}`, { source });
    }
    throw err;
  }
  if (report === undefined) {
    throw untrusted(`${source} is unsigned (no ${SIGNATURE_SECTION} section; ${trusted})`, {
      source,
    });
  }
  const { claims } = report;
  if (!trustedIssuers.includes(claims.iss)) {
    throw untrusted(`${source}: issuer ${claims.iss} is not trusted (${trusted})`, {
      source,
      issuer: claims.iss,
    });
  }
  if (report.problem !== undefined) {
    throw untrusted(`${source}: ${report.problem}`, { source, issuer: claims.iss });
  }
  return claims;
}
