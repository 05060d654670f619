/**
 * The CLI's commands as data: for each, its group, a one-line summary, usage, the options it
 * accepts (bin/weft.ts parses its arguments with exactly these tables), the words its first
 * argument may be, and examples. `weft --help`, `weft CMD --help`, `weft completion` and the test
 * of compose.yaml read this table, so a flag shown or completed is a flag the CLI takes.
 *
 * A new command gets an entry in COMMANDS (and its `case` in bin/weft.ts's `main`, which parses
 * with `optionsOf(name)`); a unit test fails while a dispatched command has no entry here.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The option may be repeated; its values are collected in order. */
  multiple?: boolean;
  /** Placeholder of a string option's value in help (`URL`, `FILE`, `k=v`). */
  value?: string;
  /** The value is a file name (shells complete files). */
  file?: boolean;
  /** The values the option takes, when they are few (shells complete them). */
  choices?: readonly string[];
  /** The variable read when the option is left out. */
  env?: string;
  description: string;
}

export const CommandGroup = {
  Local: 'Running locally',
  Lattice: 'Lattice',
  Apps: 'Apps',
  Actors: 'Actors',
  Security: 'Security',
  Shell: 'Shell',
} as const;
export type CommandGroup = (typeof CommandGroup)[keyof typeof CommandGroup];

export interface CommandSpec {
  name: string;
  group: CommandGroup;
  /** One line, lower case, no final period: what the command does. */
  summary: string;
  /** Usage lines, each without the leading `weft `. */
  usage: readonly string[];
  /** More about the command: a few sentences, wrapped by whoever prints them. */
  description?: string;
  options: Readonly<Record<string, OptionSpec>>;
  /** Words the first argument may be (`get hosts`, `app validate`). */
  words?: readonly string[];
  /** Arguments are file names (shells complete files after the words, if any). */
  files?: boolean;
  /** The global options (NATS servers, lattice, credentials) apply: it talks to the lattice. */
  lattice: boolean;
  /** Command lines, each without the leading `weft `, with what they do after `  # `. */
  examples: readonly string[];
}

/** Options every command takes (the NATS ones matter to commands that talk to the lattice). */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  nats: {
    type: 'string',
    value: 'URL[,URL]',
    env: 'WEFT_NATS_URL',
    description: 'NATS servers, comma-separated (default nats://127.0.0.1:4222)',
  },
  lattice: {
    type: 'string',
    value: 'NAME',
    env: 'WEFT_LATTICE',
    description: 'the lattice (default "default"): several can share one NATS',
  },
  'log-level': {
    type: 'string',
    value: 'LEVEL',
    env: 'WEFT_LOG_LEVEL',
    choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    description: 'pino level (default info for services, warn for commands)',
  },
  user: {
    type: 'string',
    value: 'USER',
    env: 'WEFT_USER',
    description: 'NATS user name, with --password',
  },
  password: {
    type: 'string',
    value: 'PASSWORD',
    env: 'WEFT_PASSWORD',
    description: 'its password (prefer the variable to the command line)',
  },
  token: { type: 'string', value: 'TOKEN', env: 'WEFT_TOKEN', description: 'a NATS token' },
  creds: {
    type: 'string',
    value: 'FILE',
    file: true,
    env: 'WEFT_CREDS',
    description: 'a NATS .creds file (user JWT and nkey seed)',
  },
  nkey: {
    type: 'string',
    value: 'FILE',
    file: true,
    env: 'WEFT_NKEY',
    description: 'a file holding a user nkey seed (SU...)',
  },
  'tls-ca': {
    type: 'string',
    value: 'FILE',
    file: true,
    env: 'WEFT_TLS_CA',
    description: "the CA that signed the NATS server's certificate (PEM)",
  },
  'tls-cert': {
    type: 'string',
    value: 'FILE',
    file: true,
    env: 'WEFT_TLS_CERT',
    description: "this client's certificate, for servers that verify clients",
  },
  'tls-key': {
    type: 'string',
    value: 'FILE',
    file: true,
    env: 'WEFT_TLS_KEY',
    description: 'its key',
  },
  help: { type: 'boolean', short: 'h', description: 'this help' },
};

const json: OptionSpec = { type: 'boolean', description: 'JSON for programs, not a table' };
const progress: OptionSpec = {
  type: 'boolean',
  description: 'show progress even when stderr is not a terminal (also WEFT_PROGRESS=1)',
};

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'up',
    group: CommandGroup.Local,
    summary: 'NATS, a host, a gateway and the example app on this machine; Ctrl-C stops them',
    usage: [
      'up [--http-port PORT] [--nats URL] [--metrics ADDR:PORT]',
      'up --cluster 3|5 [--http-port PORT]',
    ],
    description:
      'Starts a nats-server with JetStream (on 4222 when free; none with --nats), a host and a gateway, deploys actors/app.yaml and prints the URLs. With --cluster, a local cluster of routed nats-servers, whose buckets are replicated R3. State is kept in .weft/.',
    options: {
      'http-port': {
        type: 'string',
        value: 'PORT',
        env: 'WEFT_HTTP_PORT',
        description: "the gateway's HTTP port (default 8080)",
      },
      metrics: {
        type: 'string',
        value: 'ADDR:PORT',
        env: 'WEFT_METRICS',
        description:
          "the host's /metrics, /livez, /readyz (default 127.0.0.1:9464, or a free port)",
      },
      cluster: {
        type: 'string',
        value: 'N',
        choices: ['3', '5'],
        description: 'run a cluster of N nats-servers (3 or 5) instead of one',
      },
      'secrets-key': {
        type: 'string',
        value: 'SEED_OR_FILE',
        file: true,
        env: 'WEFT_SECRETS_KEY',
        description:
          "the lattice's secrets key (default: .weft/secrets.xkey, made on first use and published)",
      },
    },
    lattice: true,
    examples: [
      "up  # then: curl 'http://127.0.0.1:8080/hello?name=you'",
      'up --cluster 3 --http-port 9090',
      'up --nats nats://127.0.0.1:4222  # use a running NATS',
    ],
  },
  {
    name: 'run',
    group: CommandGroup.Local,
    summary: 'run a WASI module on this machine, no lattice (or serve it over HTTP)',
    usage: [
      'run [--dir HOST[::GUEST]]... [--env K=V]... [--memory-mib N] MODULE.wasm [--] [ARGS...]',
      'run --serve [--listen ADDR:PORT] [--dir ...] [--env ...] MODULE.wasm',
      'run [--serve] --allow-connect tcp://HOST:PORT... MODULE.wasm',
    ],
    description:
      "Options come before the module; everything after it is the guest's argv. The exit code is the guest's. With --serve, a WCGI module answers each request with a fresh instance, and a WASIX proxy module's port 80 is relayed to ADDR:PORT.",
    options: {
      dir: {
        type: 'string',
        multiple: true,
        value: 'HOST[::GUEST]',
        file: true,
        description: 'a host directory the guest may read, at GUEST (default the same path)',
      },
      env: {
        type: 'string',
        multiple: true,
        value: 'K=V',
        description: "a variable of the guest's environment (it sees no other)",
      },
      'memory-mib': {
        type: 'string',
        value: 'N',
        description: "cap the guest's linear memory at N MiB (1 to 4096)",
      },
      serve: { type: 'boolean', description: 'serve the module over HTTP instead of running it' },
      listen: {
        type: 'string',
        value: 'ADDR:PORT',
        description: 'with --serve: where to listen (default 127.0.0.1:8000)',
      },
      'allow-connect': {
        type: 'string',
        multiple: true,
        value: 'tcp://HOST:PORT',
        description:
          'a WASIX module may open TCP connections here (as capabilities.sockets.connect; see docs/security.md)',
      },
    },
    files: true,
    lattice: false,
    examples: [
      'run --dir ./data::/data actors/dist/catalog.wasm',
      'run --env NAME=you app.wasm -- --verbose',
      'run --serve --listen 127.0.0.1:8000 actors/dist/hello.wasm',
    ],
  },
  {
    name: 'host',
    group: CommandGroup.Lattice,
    summary: 'join the lattice and run the actors the scheduler places on this host',
    usage: [
      'host [--label k=v]... [--workers N] [--host-id ID] [--heartbeat-ms MS] [--no-scheduler] [--trusted-issuer PUBKEY]...',
      'host --metrics ADDR:PORT',
    ],
    description:
      'Runs until stopped. SIGTERM drains: the placements move to other hosts first, and requests in flight finish. Every host also stands for scheduler, unless --no-scheduler.',
    options: {
      label: {
        type: 'string',
        multiple: true,
        value: 'k=v',
        env: 'WEFT_LABEL',
        description: "a label that manifests' spread requirements match",
      },
      workers: {
        type: 'string',
        value: 'N',
        env: 'WEFT_WORKERS',
        description: 'worker threads for WCGI invocations (default: the CPUs)',
      },
      'host-id': {
        type: 'string',
        value: 'ID',
        env: 'WEFT_HOST_ID',
        description: "this host's id, unique in the lattice (default: random)",
      },
      'heartbeat-ms': {
        type: 'string',
        value: 'MS',
        env: 'WEFT_HEARTBEAT_MS',
        description: 'heartbeat period (default 2000); silent for 3 of them, a host is dead',
      },
      'no-scheduler': { type: 'boolean', description: 'never lead the scheduler' },
      metrics: {
        type: 'string',
        value: 'ADDR:PORT',
        env: 'WEFT_METRICS',
        description: 'serve /metrics, /livez, /readyz there (default: not served)',
      },
      'trusted-issuer': {
        type: 'string',
        multiple: true,
        value: 'PUBKEY',
        env: 'WEFT_TRUSTED_ISSUERS',
        description: 'run only modules signed by these issuers (see docs/signing.md)',
      },
      'secrets-key': {
        type: 'string',
        value: 'SEED_OR_FILE',
        file: true,
        env: 'WEFT_SECRETS_KEY',
        description:
          "the lattice's secrets key (SX...), to open the secrets actors' env refers to (see docs/security.md)",
      },
    },
    lattice: true,
    examples: [
      'host --label zone=east --label tier=web --nats nats://n1:4222,nats://n2:4222',
      'host --host-id east-1 --workers 4',
    ],
  },
  {
    name: 'gateway',
    group: CommandGroup.Lattice,
    summary: "serve HTTP from the lattice's route table",
    usage: ['gateway [--listen ADDR:PORT] [--metrics ADDR:PORT]'],
    description:
      'Stateless: run any number. Requests become invocations over NATS on whichever host runs the actor; idempotent ones are sent again when a host is lost.',
    options: {
      listen: {
        type: 'string',
        value: 'ADDR:PORT',
        env: 'WEFT_LISTEN',
        description: 'where to listen (default 127.0.0.1:8080)',
      },
      metrics: {
        type: 'string',
        value: 'ADDR:PORT',
        env: 'WEFT_METRICS',
        description:
          'serve /metrics, /livez, /readyz there too (the HTTP listener has them under /_weft/)',
      },
      'no-dashboard': {
        type: 'boolean',
        env: 'WEFT_NO_DASHBOARD',
        description: 'do not serve the live dashboard at /_weft/ (see weft ui)',
      },
    },
    lattice: true,
    examples: ['gateway --listen 0.0.0.0:8080 --nats nats://n1:4222,nats://n2:4222'],
  },
  {
    name: 'ui',
    group: CommandGroup.Lattice,
    summary: 'serve the live dashboard of the lattice: hosts, apps, actors, routes, request rates',
    usage: ['ui [--listen ADDR:PORT]'],
    description:
      'The page a gateway serves at /_weft/, on a port of its own: hosts with labels and load, applications with status and version, actors with placements and request and error rates over the last 10 minutes, routes; updated every second. With operator credentials it shows what a gateway may not read.',
    options: {
      listen: {
        type: 'string',
        value: 'ADDR:PORT',
        env: 'WEFT_LISTEN',
        description: 'where to listen (default 127.0.0.1:8090)',
      },
    },
    lattice: true,
    examples: ['ui', 'ui --listen 127.0.0.1:9000 --lattice prod --creds operator.creds'],
  },
  {
    name: 'get',
    group: CommandGroup.Lattice,
    summary: 'list the hosts, apps, actors or routes of the lattice',
    usage: ['get hosts|apps|actors|routes [--json]'],
    options: { json },
    words: ['hosts', 'apps', 'actors', 'routes'],
    lattice: true,
    examples: ['get hosts', 'get routes --json'],
  },
  {
    name: 'deploy',
    group: CommandGroup.Apps,
    summary: 'validate a manifest, push its modules and run the application (or roll back)',
    usage: [
      'deploy FILE.yaml [--wait | --no-wait] [--progress]',
      'deploy NAME --version V [--wait | --no-wait]',
    ],
    description:
      "Pushes local modules and file trees, stores the application and waits until every actor runs as wanted (30 s). Deploying a new version is a rolling update. With --version, deploys a version kept in the app's history again.",
    options: {
      wait: {
        type: 'boolean',
        description: 'wait until every actor runs as wanted, with a progress bar (the default)',
      },
      'no-wait': { type: 'boolean', description: 'return once stored, without waiting' },
      progress,
      version: {
        type: 'string',
        value: 'V',
        description: 'deploy this kept version of application NAME again (roll back)',
      },
    },
    files: true,
    lattice: true,
    examples: ['deploy actors/app.yaml', 'deploy examples --version 1.0.0  # roll back'],
  },
  {
    name: 'undeploy',
    group: CommandGroup.Apps,
    summary: 'stop an application everywhere and remove its routes',
    usage: ['undeploy NAME'],
    options: {},
    lattice: true,
    examples: ['undeploy examples'],
  },
  {
    name: 'status',
    group: CommandGroup.Apps,
    summary: 'per actor: instances wanted and running, on which hosts, and what is wrong',
    usage: ['status NAME [--json]'],
    description: 'Exits 1 unless every actor runs as wanted.',
    options: { json },
    lattice: true,
    examples: ['status examples'],
  },
  {
    name: 'app',
    group: CommandGroup.Apps,
    summary: "check a manifest offline, or list an application's kept versions",
    usage: ['app validate FILE.yaml', 'app history NAME [--json]'],
    description:
      'validate needs no lattice; history lists the 10 versions kept, the current one starred.',
    options: { json },
    words: ['validate', 'history'],
    files: true,
    lattice: true,
    examples: ['app validate actors/app.yaml', 'app history examples'],
  },
  {
    name: 'push',
    group: CommandGroup.Actors,
    summary: 'check and store a module, print its sha256 digest',
    usage: ['push FILE.wasm [--tag NAME:TAG] [--progress]'],
    options: {
      tag: {
        type: 'string',
        value: 'NAME:TAG',
        description: 'also tag it, for manifests that say module: NAME:TAG',
      },
      progress,
    },
    files: true,
    lattice: true,
    examples: ['push actors/dist/hello.wasm --tag hello:1.0.0'],
  },
  {
    name: 'call',
    group: CommandGroup.Actors,
    summary: 'invoke an actor over NATS, no gateway',
    usage: ["call ACTOR [-X METHOD] [--path P] [-H 'K: V']... [-d @FILE|TEXT] [-i] [--timeout MS]"],
    description: 'Writes the response body to stdout; exits 1 on a status of 400 or more.',
    options: {
      method: {
        type: 'string',
        short: 'X',
        value: 'METHOD',
        choices: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        description: 'the HTTP method (default GET, or POST with --data)',
      },
      path: {
        type: 'string',
        value: 'PATH',
        description: 'the request path and query (default /)',
      },
      header: {
        type: 'string',
        short: 'H',
        multiple: true,
        value: "'K: V'",
        description: 'a request header',
      },
      data: {
        type: 'string',
        short: 'd',
        value: '@FILE|TEXT',
        description: 'the request body: TEXT, or the bytes of FILE',
      },
      include: { type: 'boolean', short: 'i', description: 'print the status and headers too' },
      timeout: {
        type: 'string',
        value: 'MS',
        description: 'give up after MS milliseconds (default 30000)',
      },
    },
    lattice: true,
    examples: ["call hello --path '/hello?name=you'", 'call echo -d @README.md -i'],
  },
  {
    name: 'logs',
    group: CommandGroup.Actors,
    summary: "an application's actor output (stderr; a proxy actor's stdout too) from every host",
    usage: ['logs APP [--actor A] [--tail N] [--follow] [--json]'],
    description:
      'Each line with its time, host, actor (and proxy instance) and invocation id. Hosts keep the last 1000 lines of each application; --follow then prints new lines as they come, until Ctrl-C. See docs/operations.md#logs.',
    options: {
      actor: { type: 'string', value: 'A', description: "only this actor's lines" },
      tail: {
        type: 'string',
        value: 'N',
        description: 'print the last N kept lines first (default 100, at most 1000)',
      },
      follow: { type: 'boolean', short: 'f', description: 'keep printing new lines' },
      json: { type: 'boolean', description: 'one JSON record a line' },
    },
    lattice: true,
    examples: ['logs examples --follow', 'logs examples --actor hello --json'],
  },
  {
    name: 'spy',
    group: CommandGroup.Actors,
    summary: "an actor's invocations live: method, path, status, duration, host",
    usage: ['spy ACTOR|APP/ACTOR [--count N] [--json]'],
    description:
      'One line per invocation as hosts finish them, until Ctrl-C (or N lines). Hosts send these only while someone spies. See docs/operations.md#logs.',
    options: {
      count: { type: 'string', value: 'N', description: 'stop after N invocations' },
      json: { type: 'boolean', description: 'one JSON event a line' },
    },
    lattice: true,
    examples: ['spy hello', 'spy examples/echo --count 10 --json'],
  },
  {
    name: 'keys',
    group: CommandGroup.Security,
    summary: 'make a new issuer key for signing modules',
    usage: ['keys new [--out FILE]'],
    description:
      'Prints the public key (A...) and the seed (SA...), or writes the seed to FILE (mode 0600, never over an existing file) and prints the public key.',
    options: {
      out: { type: 'string', value: 'FILE', file: true, description: 'write the seed to FILE' },
    },
    words: ['new'],
    lattice: false,
    examples: ['keys new --out issuer.nk'],
  },
  {
    name: 'sign',
    group: CommandGroup.Security,
    summary: 'embed a signed JWT (issuer, name, module hash) in a module',
    usage: ['sign MODULE --issuer SEED_OR_FILE --name N [--expires 30d|SECONDS] [-o OUT.wasm]'],
    description:
      'The JWT goes in the custom section weft-jwt; hosts started with --trusted-issuer check it. Default OUT: MODULE_s.wasm.',
    options: {
      issuer: {
        type: 'string',
        value: 'SEED_OR_FILE',
        file: true,
        env: 'WEFT_ISSUER',
        description: "the issuer's seed, or a file holding it",
      },
      name: { type: 'string', value: 'N', description: 'the name the claims give the actor' },
      expires: {
        type: 'string',
        value: '30d|SECONDS',
        description: 'validity from now (default: no expiry)',
      },
      out: {
        type: 'string',
        short: 'o',
        value: 'OUT.wasm',
        file: true,
        description: 'where to write the signed module',
      },
    },
    files: true,
    lattice: false,
    examples: ['sign actors/dist/hello.wasm --issuer issuer.nk --name hello --expires 90d'],
  },
  {
    name: 'inspect',
    group: CommandGroup.Security,
    summary: "show a signed module's claims and whether its hash and signature hold",
    usage: ['inspect MODULE [--json]'],
    description: 'Exits 1 if the module is unsigned or its signature is not valid now.',
    options: { json },
    files: true,
    lattice: false,
    examples: ['inspect hello_s.wasm'],
  },
  {
    name: 'secret',
    group: CommandGroup.Security,
    summary: "the lattice's secrets: values actors' env takes, encrypted at rest",
    usage: [
      'secret init [--out FILE | --key SEED_OR_FILE] [--force]',
      'secret put NAME [--value V | --from-file FILE] [--key X...]',
      'secret list [--json]',
      'secret rm NAME',
      'secret key',
    ],
    description:
      'init makes the secrets key pair, writes the seed to FILE (mode 0600) for hosts (weft host --secrets-key FILE) and publishes the public key in the lattice. put seals a value (--value, --from-file, else stdin; a file or stdin loses one final line break) for the published key: it needs no seed, and cannot read a secret back. list shows names and times, never values. A manifest refers to a secret as env: { VAR: { secret: NAME } }. See docs/security.md.',
    options: {
      value: {
        type: 'string',
        value: 'V',
        description: 'put: the value (visible in ps: prefer stdin)',
      },
      'from-file': {
        type: 'string',
        value: 'FILE',
        file: true,
        description: 'put: read the value from FILE',
      },
      key: {
        type: 'string',
        value: 'KEY',
        file: true,
        description: 'put: seal for this public key (X...); init: publish the key of this seed',
      },
      out: {
        type: 'string',
        value: 'FILE',
        file: true,
        description: 'init: write the seed to FILE',
      },
      force: {
        type: 'boolean',
        description: 'init: replace a published key (secrets sealed for it must be put again)',
      },
      json,
    },
    words: ['init', 'put', 'list', 'rm', 'key'],
    lattice: true,
    examples: [
      'secret init --out secrets.xkey  # then: weft host --secrets-key secrets.xkey',
      'secret put db-password < password.txt',
      'secret list',
    ],
  },
  // Commands added to bin/weft.ts get their entry here, in the group where a user would look.
  {
    name: 'completion',
    group: CommandGroup.Shell,
    summary: 'print a completion script for bash or zsh',
    usage: ['completion bash|zsh'],
    description:
      'bash: `source <(weft completion bash)` in ~/.bashrc, or save it as ~/.local/share/bash-completion/completions/weft. zsh: save it as _weft in a directory on $fpath, before compinit.',
    options: {},
    words: ['bash', 'zsh'],
    lattice: false,
    examples: [
      'completion bash > ~/.local/share/bash-completion/completions/weft',
      'completion zsh > ~/.zfunc/_weft',
    ],
  },
];

/** The entry of command `name`, if there is one. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

function toParseArgs(options: Readonly<Record<string, OptionSpec>>): ParseArgsOptionsConfig {
  const out: ParseArgsOptionsConfig = {};
  for (const [name, o] of Object.entries(options)) {
    out[name] = {
      type: o.type,
      ...(o.short === undefined ? {} : { short: o.short }),
      ...(o.multiple === true ? { multiple: true } : {}),
    };
  }
  return out;
}

/** The node:util parseArgs options every command takes. */
export function globalParseOptions(): ParseArgsOptionsConfig {
  return toParseArgs(GLOBAL_OPTIONS);
}

/** The node:util parseArgs options of command `name`, the global ones included. */
export function optionsOf(name: string): ParseArgsOptionsConfig {
  const spec = findCommand(name);
  if (spec === undefined) throw new Error(`no command '${name}' in bin/commands.ts`);
  return { ...toParseArgs(GLOBAL_OPTIONS), ...toParseArgs(spec.options) };
}

/**
 * Parse `args` (after the command name) as bin/weft.ts does: strictly, so an option the command
 * does not take throws (ERR_PARSE_ARGS_UNKNOWN_OPTION). `weft run`, whose guest arguments follow
 * the module, has its own parser in bin/weft.ts; here its options end at the first argument.
 */
export function parseCommandArgs(name: string, args: string[]) {
  const options = optionsOf(name);
  if (name === 'run') {
    const end = firstPositional(args, options);
    return {
      ...parseArgs({ args: args.slice(0, end), options, allowPositionals: true, strict: true }),
      guestArgs: args.slice(end),
    };
  }
  return { ...parseArgs({ args, options, allowPositionals: true, strict: true }), guestArgs: [] };
}

/** Index of the first argument that is neither an option nor an option's value (or `--`). */
function firstPositional(args: string[], options: ParseArgsOptionsConfig): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--' || !a.startsWith('-') || a === '-') return i;
    if (a.includes('=')) continue;
    const long = a.startsWith('--') ? a.slice(2) : undefined;
    const o = long
      ? options[long]
      : Object.values(options).find((x) => x.short !== undefined && `-${x.short}` === a);
    if (o?.type === 'string') i++;
  }
  return args.length;
}

/**
 * True when `args` ask for the command's help: `-h` or `--help` among its options, not as an
 * option's value, after `--`, or (`weft run`) among the guest's arguments.
 */
export function wantsHelp(name: string, args: string[]): boolean {
  const options = optionsOf(name);
  const end = name === 'run' ? firstPositional(args, options) : args.length;
  for (let i = 0; i < end; i++) {
    const a = args[i]!;
    if (a === '--') return false;
    if (a === '-h' || a === '--help') return true;
    if (a.startsWith('-') && !a.includes('=')) {
      const o = a.startsWith('--')
        ? options[a.slice(2)]
        : Object.values(options).find((x) => x.short !== undefined && `-${x.short}` === a);
      if (o?.type === 'string') i++;
    }
  }
  return false;
}

/** Words wrapped to `width` columns, continuation lines indented by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/[ \n\t]+/).filter(Boolean)) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  // A no-break space keeps `env WEFT_X` on one line.
  return lines.join(`\n${' '.repeat(indent)}`).replaceAll('\u00a0', ' ');
}

const WIDTH = 100;

/** `--name VALUE` or `-s, --name VALUE`, as help shows an option. */
function optionLabel(name: string, o: OptionSpec): string {
  const short = o.short === undefined ? '    ' : `-${o.short}, `;
  return `${short}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const entries = Object.entries(options);
  const col = Math.min(30, Math.max(...entries.map(([n, o]) => optionLabel(n, o).length)) + 2);
  return entries.map(([n, o]) => {
    const label = optionLabel(n, o);
    const text = `${o.description}${o.multiple === true ? ' (repeatable)' : ''}${o.env === undefined ? '' : ` (env\u00a0${o.env})`}`;
    const pad =
      label.length + 2 > col ? `\n${' '.repeat(2 + col)}` : ' '.repeat(col - label.length);
    return `  ${label}${pad}${wrap(text, WIDTH, 2 + col)}`;
  });
}

function exampleLines(examples: readonly string[]): string[] {
  return examples.map((e) => {
    const [cmd, note] = e.split('  # ');
    return note === undefined ? `  weft ${cmd}` : `  weft ${cmd}\n      ${note}`;
  });
}

/** `weft --help`: the commands by group, one line each, examples and the global options. */
export function mainHelp(): string {
  const col = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  const groups = Object.values(CommandGroup)
    .map((g) => {
      const cmds = COMMANDS.filter((c) => c.group === g);
      if (cmds.length === 0) return '';
      const lines = cmds.map((c) => `  ${c.name.padEnd(col)}${wrap(c.summary, WIDTH, 2 + col)}`);
      return `${g}\n${lines.join('\n')}\n`;
    })
    .filter(Boolean);
  return [
    'weft: a distributed WebAssembly actor mesh on NATS',
    '',
    'Usage: weft COMMAND [options]       weft COMMAND --help: its options and examples',
    '',
    ...groups.map((g) => `${g}`),
    'Examples',
    ...exampleLines([
      'up  # a whole lattice on this machine: NATS, a host, a gateway, the example app',
      'deploy actors/app.yaml  # validate, push and run an application',
      'get hosts --nats nats://n1:4222,nats://n2:4222',
      "call hello --path '/hello?name=you'",
      'completion bash > ~/.local/share/bash-completion/completions/weft',
    ]),
    '',
    'Global options (for the commands that talk to the lattice)',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Docs: README.md, docs/operations.md, docs/troubleshooting.md (every WEFT_ERR_* code)',
    '',
  ].join('\n');
}

/** `weft CMD --help`, or undefined for a command without an entry. */
export function commandHelp(name: string): string | undefined {
  const c = findCommand(name);
  if (c === undefined) return undefined;
  const options = Object.entries(c.options);
  return [
    `weft ${c.name}: ${c.summary}`,
    '',
    'Usage',
    ...c.usage.map((u) => `  weft ${wrap(u, WIDTH, 7)}`),
    ...(c.description === undefined ? [] : ['', wrap(c.description, WIDTH, 0)]),
    ...(options.length === 0 ? [] : ['', 'Options', ...optionLines(c.options)]),
    '',
    'Examples',
    ...exampleLines(c.examples),
    '',
    c.lattice
      ? 'Global options: --nats URL[,URL], --lattice NAME, --log-level, credentials, TLS (weft --help)'
      : '  -h, --help  this help',
    '',
  ].join('\n');
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The candidate closest to `word` (a typo or a prefix), if any is close enough. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const prefixed = candidates.filter((c) => c.startsWith(word));
  if (word.length > 0 && prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}
