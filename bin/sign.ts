/**
 * `weft keys new`, `weft sign`, `weft inspect`: issuer keys, signing modules and reading their
 * claims (lattice/signing.ts holds the format). Everything here is local: no lattice.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import {
  ErrorCode,
  SIGNATURE_SECTION,
  WeftError,
  checkModule,
  createIssuerKey,
  inspectSignature,
  issuerPublicKey,
  signModule,
  type SignatureReport,
} from '../lattice/index.ts';

/** An nkeys seed as text: 'S', the key type, then base32 (58 characters in all). */
const SEED_RE = /^S[A-Z2-7]{57}$/;

function bad(message: string): WeftError {
  return new WeftError(ErrorCode.BadRequest, message);
}

/**
 * `weft keys new [--out FILE]`: a new issuer key (an nkeys account key). With `out`, the seed goes
 * to a new file of mode 0600 (an existing file is never overwritten) and only the public key is
 * printed.
 */
export async function keysNew(out: string | undefined): Promise<string> {
  const { publicKey: pub, seed } = createIssuerKey();
  if (out === undefined) return `public: ${pub}\nseed: ${seed}\n`;
  await writeSeed(out, seed);
  return `public: ${pub}\n(seed written to ${out})\n`;
}

/** Write `seed` to a new file of mode 0600; an existing file is never overwritten. */
export async function writeSeed(out: string, seed: string): Promise<void> {
  await writeFile(out, `${seed}\n`, { mode: 0o600, flag: 'wx' }).catch(
    (err: NodeJS.ErrnoException) => {
      throw bad(
        err.code === 'EEXIST'
          ? `${out} exists already; not overwriting a key (choose another --out)`
          : `cannot write the seed to ${out}: ${err.code ?? err.message}`,
      );
    },
  );
}

/**
 * The first line of file `path` that `seedRe` matches: how a seed flag takes a file. Errors are
 * WEFT_ERR_BAD_REQUEST naming `flag` and the file, never the text read; `kind` says what was
 * expected (`an issuer seed (SA…)`), `noSeed` what the file lacked.
 */
export async function seedFromFile(
  flag: string,
  path: string,
  seedRe: RegExp,
  kind: string,
  noSeed: string,
): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw bad(
      `${flag}: cannot read key file ${path} (${code}); give ${kind} or a file holding one`,
    );
  }
  const seed = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => seedRe.test(l));
  if (seed === undefined) throw bad(`${flag}: ${path} holds no ${noSeed}`);
  return seed;
}

/** The seed given as `--issuer`: the seed itself, or a file holding it (first seed line). */
export async function loadIssuerSeed(value: string): Promise<string> {
  if (SEED_RE.test(value)) return value;
  const seed = await seedFromFile(
    '--issuer',
    value,
    SEED_RE,
    'an issuer seed (SA…)',
    'nkeys seed (a line SA…)',
  );
  try {
    issuerPublicKey(seed);
  } catch (err) {
    throw bad(`--issuer: ${value}: ${(err as Error).message}`);
  }
  return seed;
}

const UNIT_SEC: Record<string, number> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 604_800,
  y: 31_536_000,
};

/** `--expires`: seconds, or a number with a unit s, m, h, d, w or y (`30d`). */
export function parseLifetime(value: string): number {
  const m = /^(\d+)([smhdwy]?)$/.exec(value.trim());
  const sec = m ? Number(m[1]) * UNIT_SEC[m[2] || 's']! : NaN;
  if (!Number.isSafeInteger(sec) || sec <= 0) {
    throw bad(`--expires expects a lifetime such as 3600, 90m, 12h or 30d, got '${value}'`);
  }
  return sec;
}

async function readModule(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new WeftError(
      ErrorCode.ModuleInvalid,
      `cannot read module ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { details: { source: file } },
    );
  }
}

/** `weft sign MODULE --issuer SEED_OR_FILE --name N [--expires T] [-o OUT]`; returns the output. */
export async function signFile(
  file: string,
  opts: { issuer: string; name: string; expires?: string; out?: string },
): Promise<string> {
  const seed = await loadIssuerSeed(opts.issuer);
  const bytes = await readModule(file);
  await checkModule(bytes, file);
  const signed = signModule(bytes, {
    issuerSeed: seed,
    name: opts.name,
    ...(opts.expires === undefined ? {} : { expiresInSec: parseLifetime(opts.expires) }),
  });
  // As `wash claims sign`: next to the module, `_s` before the extension.
  const out =
    opts.out ??
    join(dirname(file), `${basename(file, extname(file))}_s${extname(file) || '.wasm'}`);
  await writeFile(out, signed).catch((err: NodeJS.ErrnoException) => {
    throw bad(`cannot write ${out}: ${err.code ?? err.message}`);
  });
  const r = inspectSignature(signed)!;
  const exp = r.claims.exp === undefined ? 'never expires' : `expires ${iso(r.claims.exp)}`;
  return `${out}: '${r.claims.name}' signed by ${r.claims.iss} (${r.moduleHash}; ${exp})\n`;
}

function iso(sec: number): string {
  return new Date(sec * 1000).toISOString();
}

/**
 * `weft inspect MODULE [--json]`: the claims and checks. Exit code 0 when the module is signed,
 * untouched and valid now; 1 when unsigned or not valid.
 */
export async function inspectFile(
  file: string,
  json: boolean,
): Promise<{ output: string; code: number }> {
  const bytes = await readModule(file);
  let r: SignatureReport | undefined;
  try {
    r = inspectSignature(bytes);
  } catch (err) {
    if (err instanceof WeftError) {
      throw new WeftError(err.code, `${file}: ${err.message}`, { details: { source: file } });
    }
    throw err;
  }
  if (r === undefined) {
    return json
      ? { output: `${JSON.stringify({ file, signed: false }, null, 2)}\n`, code: 1 }
      : { output: `${file}: not signed (no ${SIGNATURE_SECTION} section)\n`, code: 1 };
  }
  const ok = r.problem === undefined;
  if (json) {
    return {
      output: `${JSON.stringify({ file, signed: true, valid: ok, ...r }, null, 2)}\n`,
      code: ok ? 0 : 1,
    };
  }
  const c = r.claims;
  const rows: [string, string][] = [
    ['issuer', c.iss],
    ['subject', c.sub],
    ['name', c.name],
    [
      'module',
      r.hashMatches
        ? `${r.moduleHash} (matches)`
        : `${r.moduleHash} (DOES NOT MATCH the signed ${c.weft.module_hash})`,
    ],
    ['issued', iso(c.iat)],
    ...(c.nbf === undefined ? [] : [['not before', iso(c.nbf)] as [string, string]]),
    ['expires', c.exp === undefined ? 'never' : iso(c.exp)],
    ['signature', r.signatureValid ? 'valid' : 'INVALID'],
    ['valid now', ok ? 'yes' : `no: ${r.problem}`],
  ];
  const output = `${file}\n${rows.map(([k, v]) => `  ${k.padEnd(10)}  ${v}`).join('\n')}\n`;
  return { output, code: ok ? 0 : 1 };
}
