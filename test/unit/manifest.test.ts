import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ErrorCode, ManifestInvalidError, fromWire, toWire } from '../../lattice/errors.ts';
import {
  DEFAULT_LIMITS,
  MANIFEST_SCHEMA,
  type ManifestProblem,
  manifestJsonSchema,
  manifestWarnings,
  parseManifest,
  parseModuleRef,
} from '../../lattice/manifest/index.ts';

const FIXTURES = new URL('../fixtures/manifests/', import.meta.url);

function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

function parseFixture(name: string) {
  return parseManifest(fixture(name), name);
}

/** The error a bad fixture raises; fails the test when it parses. */
function invalid(
  name: string,
  text = fixture(name),
): {
  err: ManifestInvalidError;
  errors: ManifestProblem[];
  lines: string[];
} {
  try {
    parseManifest(text, name);
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestInvalidError);
    const e = err as ManifestInvalidError;
    expect(e.code).toBe(ErrorCode.ManifestInvalid);
    expect(e.details?.['file']).toBe(name);
    const errors = e.details?.['errors'] as ManifestProblem[];
    const lines = e.message.split('\n');
    // One line per problem, each `file:line:column: [path: ]reason`, and the same in details.
    expect(lines).toHaveLength(errors.length);
    errors.forEach((p, i) => {
      const where = `${name}:${p.line}:${p.column}: `;
      expect(lines[i]).toBe(`${where}${p.path === '' ? '' : `${p.path}: `}${p.message}`);
    });
    return { err: e, errors, lines };
  }
  throw new Error(`${name} parsed, expected ManifestInvalidError`);
}

/** The problem at `path`, with its position. */
function problem(errors: ManifestProblem[], path: string): ManifestProblem {
  const found = errors.find((e) => e.path === path);
  if (found === undefined) {
    throw new Error(`no problem at ${path}; got ${JSON.stringify(errors, null, 2)}`);
  }
  return found;
}

describe('parseManifest: valid manifests', () => {
  it('applies every default to a minimal manifest', () => {
    const m = parseFixture('valid-minimal.yaml');
    expect(m).toEqual({
      apiVersion: 'weft/v1',
      kind: 'Application',
      metadata: { name: 'hello', version: '1.0.0' },
      spec: {
        actors: [
          {
            name: 'hello',
            module: './hello.wasm',
            mode: 'wcgi',
            port: 80,
            instances: 1,
            daemon: false,
            args: [],
            env: {},
            files: [],
            limits: DEFAULT_LIMITS,
            capabilities: { outboundHttp: [], sockets: { listen: [], connect: [] } },
            routes: [],
          },
        ],
      },
    });
    expect(m.spec.actors[0]).not.toHaveProperty('spread');
  });

  it('keeps every field of a full manifest and fills only the limits it leaves out', () => {
    const m = parseFixture('valid-full.yaml');
    expect(m.metadata).toEqual({
      name: 'shop',
      version: 'v2.1.0-rc.1+build.7',
      description: 'A shop with a front end and an API.',
      labels: { team: 'payments', 'app.kubernetes.io/part-of': 'shop' },
    });
    const [hello, api, files] = m.spec.actors;
    expect(hello).toEqual({
      name: 'hello',
      module: './hello.wasm',
      mode: 'wcgi',
      port: 80,
      instances: 2,
      daemon: false,
      spread: [
        { name: 'east', requirements: { zone: 'east' }, weight: 1 },
        { name: 'west', requirements: { zone: 'west' }, weight: 3 },
        { name: 'anywhere', requirements: {} },
      ],
      args: ['--verbose', '--level', '3'],
      env: { GREETING: 'hi', PORT: '8080', EMPTY: '' },
      files: [{ source: './public', guest: '/public' }],
      limits: {
        timeoutMs: 5000,
        memoryMiB: 64,
        maxRequestBytes: 1_048_576,
        maxResponseBytes: DEFAULT_LIMITS.maxResponseBytes,
        maxConcurrency: 8,
        maxQueue: DEFAULT_LIMITS.maxQueue,
        startTimeoutMs: DEFAULT_LIMITS.startTimeoutMs,
        maxThreads: DEFAULT_LIMITS.maxThreads,
        maxOutboundRequests: DEFAULT_LIMITS.maxOutboundRequests,
      },
      capabilities: {
        outboundHttp: ['https://api.example.com', 'http://*.svc.internal:8080'],
        sockets: { listen: [80], connect: ['tcp://db.internal:5432'] },
      },
      routes: [
        { path: '/hello/...', host: '*' },
        { path: '/hello', host: 'shop.example.com' },
      ],
    });
    expect(api?.mode).toBe('proxy');
    expect(api?.daemon).toBe(false);
    expect(files?.daemon).toBe(true);
    expect(api?.limits).toEqual({
      ...DEFAULT_LIMITS,
      timeoutMs: 30_000,
      memoryMiB: 4096,
      maxResponseBytes: 1024,
      maxQueue: 0,
    });
    expect(api?.routes).toEqual([
      { path: '/api/...', host: '*' },
      { path: '/hello/...', host: 'shop.example.com' },
    ]);
    expect(files?.routes).toEqual([{ path: '/...', host: '*' }]);
    expect(parseModuleRef(api?.module ?? '')).toEqual({
      kind: 'digest',
      digest: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    });
  });

  it('reads JSON as well as YAML', () => {
    const m = parseFixture('valid.json');
    expect(m.spec.actors[0]?.env).toEqual({ GREETING: 'hi' });
    expect(m.spec.actors[0]?.routes).toEqual([{ path: '/hello', host: '*' }]);
  });

  it('returns a deeply frozen manifest that shares nothing with defaults', () => {
    const m = parseFixture('valid-full.yaml');
    expect(Object.isFrozen(m)).toBe(true);
    expect(Object.isFrozen(m.spec.actors)).toBe(true);
    expect(Object.isFrozen(m.spec.actors[0]?.env)).toBe(true);
    expect(Object.isFrozen(m.spec.actors[0]?.capabilities.sockets?.listen)).toBe(true);
    const actor = m.spec.actors[0];
    if (actor === undefined) throw new Error('no actor');
    expect(() => actor.args.push('x')).toThrow(TypeError);
    expect(() => {
      actor.limits.timeoutMs = 1;
    }).toThrow(TypeError);
    const a = parseFixture('valid-minimal.yaml');
    const b = parseFixture('valid-minimal.yaml');
    expect(a.spec.actors[0]?.limits).not.toBe(b.spec.actors[0]?.limits);
    expect(a.spec.actors[0]?.limits).not.toBe(DEFAULT_LIMITS);
  });

  it('accepts the route and guest path forms users write', () => {
    const paths = [
      '/',
      '/...',
      '/hello',
      '/hello/',
      '/hello/...',
      '/a/b.c/d',
      '/%20x',
      '/v1.2/...',
    ];
    const yaml = `apiVersion: weft/v1
kind: Application
metadata: { name: a, version: "1" }
spec:
  actors:
    - name: a
      module: a.wasm
      files: [{ source: x, guest: / }, { source: y, guest: /a/b.c }]
      routes:
${paths.map((p) => `        - path: "${p}"`).join('\n')}
`;
    const m = parseManifest(yaml, 'routes.yaml');
    expect(m.spec.actors[0]?.routes.map((r) => r.path)).toEqual(paths);
  });
});

describe('parseManifest: invalid manifests', () => {
  it('reports a YAML syntax error at the position the yaml library gives', () => {
    const { errors, lines } = invalid('yaml-syntax-error.yaml');
    expect(errors[0]).toMatchObject({ path: '', line: 11, column: 7 });
    expect(lines[0]).toMatch(/^yaml-syntax-error\.yaml:11:7: YAML: Flow sequence/);
  });

  it('reports a duplicate key as a YAML error naming the key', () => {
    const { errors } = invalid('duplicate-key.yaml');
    expect(errors).toEqual([
      {
        path: '',
        line: 10,
        column: 7,
        message: "YAML: duplicate key 'module': mapping keys must be unique",
      },
    ]);
  });

  it('refuses an empty document and a document that is not a mapping', () => {
    expect(invalid('empty.yaml').lines).toEqual([
      'empty.yaml:1:1: the manifest is empty: expected a mapping with apiVersion, kind, metadata and spec',
    ]);
    expect(invalid('blank.yaml', '').errors).toHaveLength(1);
    expect(invalid('not-a-mapping.yaml').lines).toEqual([
      'not-a-mapping.yaml:1:1: expected object, got array',
    ]);
  });

  it('names an unknown field, where it is, the allowed fields and a likely typo', () => {
    const { lines } = invalid('unknown-field.yaml');
    expect(lines).toEqual([
      "unknown-field.yaml:6:3: metadata.owner: unknown field 'owner' (allowed: name, version, description, labels)",
      "unknown-field.yaml:12:9: spec.actors[0].limits.timeout: unknown field 'timeout' (allowed: timeoutMs, memoryMiB, maxRequestBytes, maxResponseBytes, maxConcurrency, maxQueue, startTimeoutMs, maxThreads, maxOutboundRequests); did you mean 'timeoutMs'?",
    ]);
  });

  it('names a missing required field at its parent object', () => {
    const { errors, lines } = invalid('missing-module.yaml');
    expect(errors).toEqual([
      {
        path: 'spec.actors[0].module',
        line: 8,
        column: 7,
        message: "missing required field 'module'",
      },
    ]);
    expect(lines[0]).toContain('missing-module.yaml:8:7: spec.actors[0].module');
  });

  it('says what type was expected and what was given', () => {
    const { lines } = invalid('wrong-type.yaml');
    expect(lines).toEqual([
      'wrong-type.yaml:10:18: spec.actors[0].instances: expected integer, got string "2"',
      'wrong-type.yaml:11:13: spec.actors[0].args: expected array, got string "--verbose"',
      'wrong-type.yaml:13:20: spec.actors[0].limits.timeoutMs: expected integer, got string "ten"',
    ]);
  });

  it('asks to quote numbers and booleans where strings are expected, as written', () => {
    const { errors } = invalid('env-number.yaml');
    expect(problem(errors, 'metadata.version')).toMatchObject({ line: 5, column: 12 });
    expect(problem(errors, 'metadata.version').message).toBe(
      'expected string, got number 1.0; quote the value: "1.0"',
    );
    expect(problem(errors, 'spec.actors[0].env.PORT')).toEqual({
      path: 'spec.actors[0].env.PORT',
      line: 11,
      column: 15,
      message: 'expected string, got number 8080; quote the value: "8080"',
    });
    expect(problem(errors, 'spec.actors[0].env.DEBUG').message).toContain(
      'quote the value: "true"',
    );
    expect(problem(errors, 'spec.actors[0].env.EMPTY').message).toContain(
      'write "" for an empty string',
    );
    expect(problem(errors, 'spec.actors[0].env["BAD-NAME"]')).toMatchObject({
      line: 14,
      column: 9,
      message: expect.stringContaining("invalid environment variable name 'BAD-NAME'"),
    });
  });

  it('names both actors that declare the same route', () => {
    const { errors, lines } = invalid('duplicate-route.yaml');
    expect(errors).toHaveLength(1);
    expect(lines[0]).toBe(
      "duplicate-route.yaml:16:11: spec.actors[1].routes[1]: route /hello/... on host '*' is declared by both actor 'front' and actor 'back' (first spec.actors[0].routes[0] at 11:11)",
    );
  });

  it('refuses two actors with one name', () => {
    expect(invalid('duplicate-actor-name.yaml').lines).toEqual([
      "duplicate-actor-name.yaml:10:13: spec.actors[1].name: duplicate actor name 'hello' (also spec.actors[0].name at 8:13)",
    ]);
  });

  it('refuses names that cannot be NATS subject tokens, and non-versions', () => {
    const { errors } = invalid('bad-names.yaml');
    expect(errors.map((e) => [e.path, e.line, e.column])).toEqual([
      ['metadata.name', 4, 9],
      ['metadata.version', 5, 12],
      ['spec.actors[0].name', 8, 13],
      ['spec.actors[1].name', 10, 13],
    ]);
    expect(errors[0]?.message).toMatch(/lowercase DNS label.*got "my\.app"/);
    expect(errors[1]?.message).toMatch(/version like 1\.0\.0.*got "latest"/);
  });

  it('explains each bad route path and host', () => {
    const { errors } = invalid('bad-routes.yaml');
    const byPath = Object.fromEntries(errors.map((e) => [e.path, e.message]));
    expect(byPath).toEqual({
      'spec.actors[0].routes[0].path': `must start with '/', got "hello"`,
      'spec.actors[0].routes[1].path': `may use ... only as the last segment (/prefix/...), got "/a/.../b"`,
      'spec.actors[0].routes[2].path': `must not contain '?' or '#' (routes match the path only), got "/a?x=1"`,
      'spec.actors[0].routes[3].path': `must not contain '..', got "/a/../b"`,
      'spec.actors[0].routes[4].path': `must not contain spaces or control characters, got "/a b"`,
      'spec.actors[0].routes[5].path': `must not contain '*'; end the path with /... for a wildcard, got "/a/*"`,
      'spec.actors[0].routes[6].host': `must be '*' or a host name without scheme, port or path, got "example.com:8080"`,
    });
    expect(errors[0]).toMatchObject({ line: 11, column: 17 });
  });

  it('refuses limits out of range', () => {
    const { lines } = invalid('bad-limits.yaml');
    expect(lines).toEqual([
      'bad-limits.yaml:10:18: spec.actors[0].instances: must be at least 1, got 0',
      'bad-limits.yaml:12:20: spec.actors[0].limits.timeoutMs: must be at least 1, got 0',
      'bad-limits.yaml:13:20: spec.actors[0].limits.memoryMiB: must be at most 4096, got 8192 (wasm32 memory is at most 4 GiB)',
      'bad-limits.yaml:14:26: spec.actors[0].limits.maxRequestBytes: expected integer, got number 1.5',
      'bad-limits.yaml:15:25: spec.actors[0].limits.maxConcurrency: must be at least 1, got -1',
    ]);
  });

  it('refuses module references that are none of the three forms', () => {
    const { errors } = invalid('bad-module-ref.yaml');
    expect(errors.map((e) => [e.path, e.line, e.column])).toEqual([
      ['spec.actors[0].module', 9, 15],
      ['spec.actors[1].module', 11, 15],
      ['spec.actors[2].module', 13, 15],
      ['spec.actors[3].module', 15, 15],
    ]);
    expect(errors[0]?.message).toContain('write ./hello for a file, or hello:<tag>');
    expect(errors[1]?.message).toContain('64 hex digits');
    expect(errors[3]?.message).toBe('must not be empty');
  });

  it('checks file mounts: absolute guest paths, no .., no mount point twice, source required', () => {
    const { errors } = invalid('bad-files.yaml');
    expect(errors.map((e) => [e.path, e.line, e.column])).toEqual([
      ['spec.actors[0].files[0].guest', 11, 38],
      ['spec.actors[0].files[1].guest', 12, 33],
      ['spec.actors[0].files[3].guest', 14, 33],
      ['spec.actors[0].files[4].source', 15, 11],
    ]);
    expect(errors[2]?.message).toContain('mounted twice');
  });

  it('checks capabilities: scheme required, ports in range, no unknown fields', () => {
    const { errors } = invalid('bad-capabilities.yaml');
    expect(errors.map((e) => [e.path, e.line, e.column])).toEqual([
      ['spec.actors[0].capabilities.outboundHttp[0]', 11, 24],
      ['spec.actors[0].capabilities.sockets.listen[0]', 12, 29],
      ['spec.actors[0].capabilities.sockets.bind', 12, 65],
    ]);
    expect(errors[0]?.message).toContain("'<scheme>://<host>[:<port>]'");
  });

  it('checks allowlist entries with the policy parser, and warns of a grant of every host', () => {
    const text = (outbound: string, connect: string) => `apiVersion: weft/v1
kind: Application
metadata: { name: caps, version: 1.0.0 }
spec:
  actors:
    - name: a
      module: ./a.wasm
      capabilities:
        outboundHttp: [${outbound}]
        sockets: { connect: [${connect}] }
`;
    const { lines } = invalid(
      'caps.yaml',
      text('"https://api.example.com:9000-8000", "http://10.0.0.0/33"', '"tcp://db.internal"'),
    );
    expect(lines).toEqual([
      "caps.yaml:9:24: spec.actors[0].capabilities.outboundHttp[0]: 'https://api.example.com:9000-8000': port range 9000-8000 is empty",
      expect.stringMatching(
        /^caps\.yaml:9:61: spec\.actors\[0\]\.capabilities\.outboundHttp\[1\]: 'http:\/\/10\.0\.0\.0\/33': .*33/,
      ),
      expect.stringMatching(
        /^caps\.yaml:10:30: spec\.actors\[0\]\.capabilities\.sockets\.connect\[0\]: 'tcp:\/\/db\.internal': a port is required/,
      ),
    ]);
    const ok = parseManifest(
      text('"https://api.example.com", "*://*:*"', '"tcp://db.internal:5432"'),
      'ok.yaml',
    );
    expect(manifestWarnings(ok)).toEqual([
      expect.stringMatching(
        /^actor 'a': capabilities\.outboundHttp '\*:\/\/\*:\*' grants every host/,
      ),
    ]);
    expect(manifestWarnings(parseFixture('valid-full.yaml'))).toEqual([]);
  });

  it('checks spreads: unique names, string requirements, not every weight 0', () => {
    const { errors } = invalid('bad-spread.yaml');
    expect(errors.map((e) => e.path)).toEqual([
      'spec.actors[0].spread',
      'spec.actors[0].spread[1].name',
      'spec.actors[0].spread[1].requirements.zone',
    ]);
  });

  it('refuses another apiVersion or kind, and an application without actors', () => {
    expect(invalid('wrong-api-version.yaml').lines).toEqual([
      `wrong-api-version.yaml:1:13: apiVersion: expected 'weft/v1', got string "v1"`,
      `wrong-api-version.yaml:2:7: kind: expected 'Application', got string "Deployment"`,
      'wrong-api-version.yaml:7:11: spec.actors: an application needs at least one actor',
    ]);
  });

  it('reports every problem at once, schema and semantic, in source order', () => {
    const { errors } = invalid('many-problems.yaml');
    expect(errors.map((e) => `${e.line}:${e.column} ${e.path}`)).toEqual([
      '11:28 spec.actors[0].limits.timeoutMs',
      '13:7 spec.actors[1].module',
      '14:7 spec.actors[1].modul',
      '15:16 spec.actors[1].routes[0]',
      '16:13 spec.actors[2].name',
      '18:20 spec.actors[2].env.PORT',
    ]);
    expect(errors[2]?.message).toContain("did you mean 'module'?");
    expect(errors[3]?.message).toContain("actor 'a' and actor 'b'");
  });

  it('reports unresolved aliases and refuses alias bombs', () => {
    const base = 'apiVersion: weft/v1\nkind: Application\nmetadata: { name: a, version: "1" }\n';
    expect(invalid('alias.yaml', `${base}spec: *nope\n`).lines).toEqual([
      'alias.yaml:4:7: YAML: alias *nope refers to no anchor defined before it',
    ]);
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    expect(invalid('bomb.yaml', bomb).lines[0]).toMatch(/^bomb\.yaml:1:1: YAML: .*alias/i);
  });

  it('refuses collection keys instead of stringifying them', () => {
    const text = 'apiVersion: weft/v1\n? [a, b]\n: 1\n';
    expect(invalid('key.yaml', text).errors[0]).toMatchObject({ line: 2, column: 3 });
  });

  it('keeps __proto__ as a plain key', () => {
    const text = `apiVersion: weft/v1
kind: Application
metadata: { name: a, version: "1" }
spec:
  actors:
    - name: a
      module: a.wasm
      env: { __proto__: x }
`;
    const m = parseManifest(text, 'proto.yaml');
    expect(Object.getPrototypeOf(m.spec.actors[0]?.env)).toBe(Object.prototype);
    expect(Object.keys(m.spec.actors[0]?.env ?? {})).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('refuses a second YAML document and tab indentation', () => {
    const base = 'apiVersion: weft/v1\nkind: Application\nmetadata: { name: a, version: "1" }\n';
    expect(invalid('multi.yaml', `${base}spec: {}\n---\nfoo: 1\n`).lines).toEqual([
      'multi.yaml:5:1: YAML: a manifest is a single document; found a second one after ---',
    ]);
    expect(invalid('tab.yaml', `${base}spec:\n\tactors: []\n`).errors[0]).toMatchObject({
      line: 5,
      column: 1,
    });
  });

  it('names a missing top-level field and points at the document', () => {
    const text = 'apiVersion: weft/v1\nkind: Application\nmetadata: { name: a, version: "1" }\n';
    expect(invalid('no-spec.yaml', text).lines).toEqual([
      "no-spec.yaml:1:1: spec: missing required field 'spec'",
    ]);
  });

  it('compares route hosts case-insensitively', () => {
    const text = `apiVersion: weft/v1
kind: Application
metadata: { name: a, version: "1" }
spec:
  actors:
    - { name: a, module: a.wasm, routes: [{ path: /x, host: Example.com }] }
    - { name: b, module: b.wasm, routes: [{ path: /x, host: example.COM }, { path: /x/... }] }
`;
    const { errors } = invalid('hosts.yaml', text);
    expect(errors.map((e) => e.path)).toEqual(['spec.actors[1].routes[0]']);
  });

  it('keeps every problem in details but caps the message', () => {
    const actors = Array.from(
      { length: 150 },
      (_, i) => `    - { name: a${i}, module: a.wasm, x: 1 }`,
    ).join('\n');
    const text = `apiVersion: weft/v1\nkind: Application\nmetadata: { name: a, version: "1" }\nspec:\n  actors:\n${actors}\n`;
    try {
      parseManifest(text, 'big.yaml');
      expect.unreachable();
    } catch (err) {
      const e = err as ManifestInvalidError;
      expect(e.details?.['errors']).toHaveLength(150);
      const lines = e.message.split('\n');
      expect(lines).toHaveLength(101);
      expect(lines[100]).toBe('big.yaml: … and 50 more problems');
    }
  });

  it('survives the wire: code, message and details round-trip', () => {
    const { err } = invalid('missing-module.yaml');
    const back = fromWire(JSON.parse(JSON.stringify(toWire(err))));
    expect(back).toBeInstanceOf(ManifestInvalidError);
    expect(back.message).toBe(err.message);
    expect(back.details).toEqual(err.details);
  });
});

describe('parseModuleRef', () => {
  it.each([
    ['./hello.wasm', { kind: 'path', path: './hello.wasm' }],
    ['hello.wasm', { kind: 'path', path: 'hello.wasm' }],
    ['/abs/x.wasm', { kind: 'path', path: '/abs/x.wasm' }],
    ['../build/app', { kind: 'path', path: '../build/app' }],
    ['dist/app.wasm', { kind: 'path', path: 'dist/app.wasm' }],
    ['hello:1.0.0', { kind: 'tag', name: 'hello', tag: '1.0.0' }],
    ['my-app:latest', { kind: 'tag', name: 'my-app', tag: 'latest' }],
    [`sha256:${'a'.repeat(64)}`, { kind: 'digest', digest: `sha256:${'a'.repeat(64)}` }],
    [`sha256:${'AB'.repeat(32)}`, { kind: 'digest', digest: `sha256:${'ab'.repeat(32)}` }],
  ])('%s', (input, expected) => {
    expect(parseModuleRef(input)).toEqual(expected);
  });

  it.each([
    ['', /empty/],
    ['hello', /not a path .* write \.\/hello for a file, or hello:<tag>/],
    ['sha256:abc', /64 hex digits/],
    [`sha256:${'g'.repeat(64)}`, /64 hex digits/],
    ['hello:', /invalid tag ''/],
    [':1.0', /invalid artifact name ''/],
    ['Hello:1.0', /invalid artifact name 'Hello'/],
    ['hello:-x', /invalid tag '-x'/],
  ])('refuses %j', (input, reason) => {
    expect(() => parseModuleRef(input)).toThrow(ManifestInvalidError);
    expect(() => parseModuleRef(input)).toThrow(reason);
  });
});

describe('MANIFEST_SCHEMA', () => {
  it('is the published docs/manifest.schema.json (run lattice/manifest/write-schema.ts)', () => {
    const published = readFileSync(
      new URL('../../docs/manifest.schema.json', import.meta.url),
      'utf8',
    );
    expect(JSON.parse(published)).toEqual(JSON.parse(manifestJsonSchema()));
    expect(JSON.parse(manifestJsonSchema())).toEqual(MANIFEST_SCHEMA);
  });

  it('is a valid draft-07 schema that other tools can use on their own', () => {
    const ajv = new Ajv({ strict: true, allErrors: true });
    const validate = ajv.compile(JSON.parse(manifestJsonSchema()));
    expect(
      validate({
        apiVersion: 'weft/v1',
        kind: 'Application',
        metadata: { name: 'a', version: '1' },
        spec: { actors: [{ name: 'a', module: 'a.wasm' }] },
      }),
    ).toBe(true);
    expect(
      validate({
        apiVersion: 'weft/v1',
        kind: 'Application',
        metadata: { name: 'a', version: '1' },
        spec: { actors: [{ name: 'a', module: 'a.wasm', extra: 1 }] },
      }),
    ).toBe(false);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(MANIFEST_SCHEMA)).toBe(true);
  });
});
