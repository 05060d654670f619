/**
 * `weft secret …`: the lattice's secret store (lattice/secrets.ts holds the model and format).
 * `init` makes the secrets key pair and publishes its public key; `put` seals a value for that key,
 * so whoever puts secrets needs no seed and cannot read them back; `list` shows names and times,
 * never values; `rm` removes one; `key` prints the published public key. Also the seed loading
 * that `weft host --secrets-key` and `weft up` use.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  ErrorCode,
  SecretStore,
  WeftError,
  assertSecretName,
  assertSecretsPublicKey,
  createSecretsKey,
  secretsPublicKey,
  shortKey,
  type LatticeClient,
} from '../lattice/index.ts';
import { seedFromFile, writeSeed } from './sign.ts';

/** A curve seed as text: `SX` then base32 (58 characters in all). */
const SEED_RE = /^SX[A-Z2-7]{56}$/;

export const SECRET_USAGE = `weft secret init [--out FILE | --key SEED_OR_FILE] [--force]
       weft secret put NAME [--value V | --from-file FILE] [--key X...]   (default: stdin)
       weft secret list [--json]
       weft secret rm NAME
       weft secret key`;

function bad(message: string): WeftError {
  return new WeftError(ErrorCode.BadRequest, message);
}

/** A usage problem with `weft secret ARGS`, before anything connects; undefined when fine. */
export function secretUsage(
  positionals: string[],
  values: Record<string, unknown>,
): string | undefined {
  const [verb, name, extra] = positionals;
  const wrong = (why: string) => `weft secret: ${why}\n${SECRET_USAGE}`;
  switch (verb) {
    case 'init':
      if (name !== undefined) return wrong('init takes no NAME');
      if (values['out'] !== undefined && values['key'] !== undefined) {
        return wrong('give --out (a new key) or --key (an existing seed), not both');
      }
      return undefined;
    case 'put':
      if (name === undefined || extra !== undefined) return wrong('put takes one NAME');
      if (values['value'] !== undefined && values['from-file'] !== undefined) {
        return wrong('give the value with --value or --from-file, not both');
      }
      return undefined;
    case 'rm':
      return name === undefined || extra !== undefined ? wrong('rm takes one NAME') : undefined;
    case 'list':
    case 'key':
      return name === undefined ? undefined : wrong(`${verb} takes no NAME`);
    default:
      return wrong(verb === undefined ? 'expected a command' : `unknown command '${verb}'`);
  }
}

/**
 * The secrets seed given as `--secrets-key` (or `WEFT_SECRETS_KEY`, or `--key` of `secret init`):
 * the seed itself, or a file holding it (its first `SX…` line). WEFT_ERR_BAD_REQUEST naming the
 * flag and file, never the text it read.
 */
export async function loadSecretsSeed(value: string, flag = '--secrets-key'): Promise<string> {
  const v = value.trim();
  if (SEED_RE.test(v)) {
    secretsPublicKey(v);
    return v;
  }
  if (/^S[A-Z2-7]{57}$/.test(v)) {
    throw bad(`${flag}: an nkeys seed of another type; a secrets key is a curve seed (SX…)`);
  }
  const seed = await seedFromFile(
    flag,
    value,
    SEED_RE,
    'a secrets seed (SX…)',
    'secrets seed (a line SX…, from weft secret init --out)',
  );
  try {
    secretsPublicKey(seed);
  } catch (err) {
    throw bad(`${flag}: ${value}: ${(err as Error).message}`);
  }
  return seed;
}

/** stdin as text (the value of `weft secret put NAME` without --value or --from-file). */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('reading the value from stdin (end with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A file or stdin loses one final line break (`echo`, editors); `--value` is taken as it is. */
function chompOnce(text: string): string {
  return text.replace(/\r?\n$/, '');
}

function table(rows: Record<string, string>[], columns: string[]): string {
  if (rows.length === 0) return '(none)\n';
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((s, i) => s.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => r[c] ?? '')))].join('\n')}\n`;
}

/**
 * Run `weft secret VERB …` (checked by `secretUsage` first) against `client`; returns what to
 * print on stdout. Never prints or returns a secret's value; `init` without `--out` prints the
 * new seed, as `weft keys new` does.
 */
export async function secretCommand(
  client: LatticeClient,
  positionals: string[],
  values: Record<string, unknown>,
): Promise<string> {
  const [verb, name] = positionals;
  const lattice = client.subjects.lattice;
  const store = await SecretStore.open(client);
  switch (verb) {
    case 'init': {
      const force = values['force'] === true;
      const given = values['key'] as string | undefined;
      const out = values['out'] as string | undefined;
      if (given !== undefined) {
        const pub = secretsPublicKey(await loadSecretsSeed(given, '--key'));
        const r = await store.publishKey(pub, { force });
        return `public: ${pub}\n${r === 'unchanged' ? 'already' : 'now'} the secrets key of lattice '${lattice}'\n`;
      }
      const current = await store.publishedKey();
      if (current !== undefined && !force) {
        throw bad(
          `lattice '${lattice}' has secrets key ${shortKey(current)} already (weft secret key); give --force to replace it, after which every secret must be put again`,
        );
      }
      const { publicKey, seed } = createSecretsKey();
      // The seed is kept before the key is published: a published key without its seed would
      // seal secrets nobody can open.
      if (out !== undefined) await writeSeed(out, seed);
      await store.publishKey(publicKey, { force: true });
      return [
        `public: ${publicKey}`,
        out === undefined
          ? `seed: ${seed}`
          : `(seed written to ${out}; give it to hosts: weft host --secrets-key ${out})`,
        `published as the secrets key of lattice '${lattice}'`,
        '',
      ].join('\n');
    }
    case 'put': {
      assertSecretName(name!);
      const file = values['from-file'] as string | undefined;
      let value: string;
      if (values['value'] !== undefined) value = String(values['value']);
      else if (file !== undefined) {
        value = chompOnce(
          await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
            throw bad(`--from-file: cannot read ${file}: ${err.code ?? err.message}`);
          }),
        );
      } else value = chompOnce(await readStdin());
      const key = values['key'] as string | undefined;
      const info = await store.put(
        name!,
        value,
        key === undefined ? {} : { recipient: assertSecretsPublicKey(key) },
      );
      return `stored secret ${info.name} (revision ${info.revision}, sealed for ${shortKey(info.key)})\n`;
    }
    case 'list': {
      const list = await store.list();
      if (values['json'] === true) return `${JSON.stringify(list, null, 2)}\n`;
      return table(
        list.map((s) => ({
          name: s.name,
          updated: s.updatedAt,
          revision: String(s.revision),
          key: shortKey(s.key),
        })),
        ['name', 'updated', 'revision', 'key'],
      );
    }
    case 'rm':
      await store.delete(name!);
      return `removed secret ${name!}\n`;
    case 'key': {
      const pub = await store.publishedKey();
      if (pub === undefined) {
        throw new WeftError(
          ErrorCode.Secret,
          `lattice '${lattice}' has no secrets key: create one with weft secret init --out FILE`,
        );
      }
      return `${pub}\n`;
    }
    default:
      throw bad(SECRET_USAGE);
  }
}

/**
 * `weft up`'s secrets key: the one given (`--secrets-key`, `WEFT_SECRETS_KEY`), else this
 * machine's local one, `secrets.xkey` in `dir` (mode 0600), made on first use. Every local
 * lattice may share it: what is sealed names its lattice.
 */
export async function localSecretsKey(given: string | undefined, dir: string): Promise<string> {
  if (given !== undefined) return loadSecretsSeed(given);
  const file = join(dir, 'secrets.xkey');
  try {
    return await loadSecretsSeed(file);
  } catch (err) {
    const missing = await readFile(file).then(
      () => false,
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
    if (!missing) throw err;
  }
  await mkdir(dir, { recursive: true });
  const { seed } = createSecretsKey();
  await writeSeed(file, seed);
  return seed;
}

/**
 * Publish `seed`'s public key as the lattice's secrets key when it has none (`weft up`), so that
 * `weft secret put` works with no more setup. Another key published already is left alone, and
 * said.
 */
export async function publishLocalSecretsKey(
  client: LatticeClient,
  seed: string,
  log: Logger,
): Promise<void> {
  const pub = secretsPublicKey(seed);
  const store = await SecretStore.open(client);
  const current = await store.publishedKey();
  if (current === undefined) await store.publishKey(pub);
  else if (current !== pub) {
    log.warn(
      { published: current, local: pub },
      'the lattice publishes another secrets key than this one: secrets put for it will not open here',
    );
  }
}
