/**
 * What to do next, for the errors a CLI user meets most: one line printed under the error, naming
 * a command to run or a flag to give. docs/troubleshooting.md has the long form of every code.
 */
import { ErrorCode, type WeftError } from '../lattice/index.ts';
import { COMMANDS, GLOBAL_OPTIONS, closest, findCommand } from './commands.ts';

/** The next step after `err`, raised by `weft cmd`; undefined when there is nothing to add. */
export function nextStep(err: WeftError, cmd: string | undefined): string | undefined {
  const c = cmd ?? 'COMMAND';
  switch (err.code) {
    case ErrorCode.LatticeUnavailable:
      if (err.message.startsWith('cannot connect to NATS') && !err.message.includes('TLS')) {
        return 'is a nats-server running there? Start a local lattice with `weft up`, or pass --nats URL[,URL] (env WEFT_NATS_URL)';
      }
      return 'JetStream did not answer: check that the NATS servers are up and, on a cluster, that most of them are (docs/operations.md)';
    case ErrorCode.Unauthorized:
      return "give this lattice's credentials: --creds FILE, --nkey FILE, --user with --password, or --token (docs/security.md)";
    case ErrorCode.AppNotFound:
      return '`weft get apps` lists the applications of this lattice (--lattice NAME for another)';
    case ErrorCode.ManifestInvalid:
      if (err.message.startsWith('cannot read manifest')) return 'check the path of the manifest';
      return 'fix the fields named above, then check with `weft app validate FILE.yaml`; every field is in docs/manifest-reference.md';
    case ErrorCode.ArtifactNotFound:
      return 'push the module first (`weft push FILE.wasm --tag NAME:TAG`), or give its path in the manifest';
    case ErrorCode.NoHost:
      return cmd === 'deploy' || cmd === 'up'
        ? '`weft status NAME` says what each actor waits for; `weft get hosts` lists the hosts and their labels'
        : 'no host runs it: start one (`weft host`), or see `weft get hosts` and `weft status NAME`';
    case ErrorCode.ActorNotFound:
      return '`weft get actors` lists the actors running in this lattice';
    case ErrorCode.RouteNotFound:
      return '`weft get routes` lists the routes the gateways serve';
    case ErrorCode.HostNotFound:
      return '`weft get hosts` lists the hosts of this lattice';
    case ErrorCode.ModuleInvalid:
      return 'build it for wasm32-wasi (clang --target=wasm32-wasi, see actors/README.md)';
    case ErrorCode.Untrusted:
      return 'sign it with `weft sign` by an issuer the hosts trust (docs/signing.md)';
    case ErrorCode.HostIdTaken:
      return 'give another --host-id, or leave it out for a random one';
    case ErrorCode.Timeout:
      return c === 'call'
        ? 'the actor took longer than its limits.timeoutMs or --timeout; `weft status NAME` shows where it runs'
        : 'see docs/troubleshooting.md';
    default:
      return 'see docs/troubleshooting.md';
  }
}

/** "unknown command 'frob'" with the closest command, if one is close. */
export function unknownCommand(word: string): string {
  const near = closest(
    word,
    COMMANDS.map((c) => c.name),
  );
  return `unknown command '${word}'${near === undefined ? '' : `; did you mean '${near}'?`}\n  \`weft --help\` lists the commands`;
}

/**
 * A node:util parseArgs error, said as weft: which command, which option, the closest one, and
 * where the options are listed.
 */
export function usageHint(message: string, code: string, cmd: string | undefined): string {
  const where = cmd === undefined ? 'weft' : `weft ${cmd}`;
  const help = findCommand(cmd ?? '') === undefined ? '`weft --help`' : `\`${where} --help\``;
  const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(message);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== null) {
    const spec = findCommand(cmd ?? '');
    const names = Object.keys({ ...GLOBAL_OPTIONS, ...spec?.options }).map((n) => `--${n}`);
    const near = closest(unknown[1]!, names);
    return `${where}: unknown option '${unknown[1]}'${near === undefined ? '' : `; did you mean ${near}?`}\n  ${help} lists its options`;
  }
  const missing = /Option '(-\S+)(?:, (--\S+))? <value>' argument missing/.exec(message);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && missing !== null) {
    return `${where}: ${missing[2] ?? missing[1]} needs a value\n  ${help} lists its options`;
  }
  return `${where}: ${message}\n  ${help} lists its options`;
}
