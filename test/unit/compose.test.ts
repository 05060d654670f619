/**
 * compose.yaml, checked without Docker: its weft services run real weft commands with flags the
 * CLI takes, its NATS URLs name its NATS services, the cluster routes every server to the others,
 * dependencies, build contexts and the Dockerfile's COPY sources exist, the deployed application
 * validates, and no two services publish one port. Each check is also shown to fail on a broken
 * copy of the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { composeProblems, parseDockerfile } from '../helpers/compose-check.ts';
import { ROOT } from '../helpers/stack.ts';

const compose = readFileSync(join(ROOT, 'compose.yaml'), 'utf8');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

const problemsOf = (text: string, dockerfiles?: Record<string, string>) =>
  composeProblems({ root: ROOT, compose: text, ...(dockerfiles ? { dockerfiles } : {}) });

/** compose.yaml with `from` replaced by `to` (which must occur). */
function broken(from: string, to: string): string {
  expect(compose, `compose.yaml contains ${from}`).toContain(from);
  return compose.replace(from, to);
}

describe('compose.yaml', () => {
  it('is consistent with the CLI, the Dockerfile and the repository', () => {
    expect(problemsOf(compose)).toEqual([]);
  });

  it('runs a 3-server NATS cluster, three labelled hosts, two gateways and a deploy', () => {
    const doc = parseYaml(compose, { merge: true }) as {
      services: Record<string, { command?: string[]; entrypoint?: string[] }>;
    };
    const byCommand = (c: string) =>
      Object.values(doc.services).filter((s) => s.entrypoint === undefined && s.command?.[0] === c);
    const natsServers = Object.values(doc.services).filter(
      (s) => s.entrypoint?.[0] === 'nats-server',
    );
    expect(natsServers).toHaveLength(3);
    expect(byCommand('host')).toHaveLength(3);
    expect(byCommand('gateway')).toHaveLength(2);
    expect(byCommand('deploy')).toHaveLength(1);
    expect(byCommand('deploy')[0]!.command).toContain('actors/app.yaml');
  });

  it('fails on a weft command or flag the CLI does not have', () => {
    expect(problemsOf(broken('command: [gateway,', 'command: [gatewya,'))).toEqual([
      "gateway-1: 'gatewya' is not a weft command",
    ]);
    expect(
      problemsOf(broken('--label, zone=east, --label, tier=web', '--labels, zone=east')),
    ).toEqual([expect.stringMatching(/^host-east-1: weft host: Unknown option '--labels'/)]);
    expect(problemsOf(broken('[host, --host-id, east-1', '[host, --host-id'))).toEqual([
      expect.stringMatching(/^host-east-1: weft host: /),
    ]);
  });

  it('fails on a NATS URL that names no NATS service or the wrong port', () => {
    expect(
      problemsOf(broken('nats://nats-3:4222', 'nats://nats-4:4222')).filter((p) =>
        p.includes('nats-4'),
      ),
    ).not.toEqual([]);
    expect(problemsOf(broken('nats://nats-2:4222', 'nats://nats-2:4223'))).toContain(
      'host-east-1: NATS URL nats://nats-2:4223: nats-2 listens on 4222',
    );
    expect(
      problemsOf(
        broken('    WEFT_NATS_URL: nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222\n', ''),
      ),
    ).toContain('host-east-1: no --nats or WEFT_NATS_URL: weft would try 127.0.0.1:4222');
    expect(problemsOf(broken('WEFT_LATTICE:', 'WEFT_LATTICES:'))).toContain(
      'host-east-1: weft host reads no variable WEFT_LATTICES',
    );
  });

  it('fails on cluster routes that miss a server, name a stranger, or reuse a name', () => {
    expect(
      problemsOf(
        broken('--routes=nats://nats-2:6222,nats://nats-3:6222', '--routes=nats://nats-2:6222'),
      ),
    ).toEqual(['nats-1: no route to nats-3']);
    expect(
      problemsOf(
        broken(
          '--routes=nats://nats-1:6222,nats://nats-3:6222',
          '--routes=nats://nats-1:6222,nats://nats-9:6222',
        ),
      ),
    ).toEqual([
      'nats-2: route nats://nats-9:6222 names no NATS service',
      'nats-2: no route to nats-3',
    ]);
    expect(problemsOf(broken('--server_name=nats-2', '--server_name=nats-1'))).toEqual([
      "nats-2: server name nats-1 is also nats-1's",
    ]);
    expect(
      problemsOf(
        broken(
          '--routes=nats://nats-1:6222,nats://nats-2:6222',
          '--routes=nats://nats-1:7222,nats://nats-2:6222',
        ),
      ),
    ).toEqual(['nats-3: route nats://nats-1:7222: nats-1 listens for routes on 6222, not 7222']);
    expect(
      problemsOf(broken('      - --cluster_name=weft\n', '      - --cluster_name=other\n')),
    ).toEqual(['nats: servers name different clusters: other, weft']);
    expect(
      problemsOf(broken('      - --store_dir=/data\n', '      - --store-dir=/data\n')),
    ).toEqual(['nats-1: nats-server has no option --store-dir']);
  });

  it('fails on a dependency that is not a service, or a wait for a health never checked', () => {
    expect(
      problemsOf(
        broken(
          'host-west-1: { condition: service_healthy }',
          'host-west-2: { condition: service_healthy }',
        ),
      ),
    ).toEqual(['deploy: depends_on host-west-2, which is not a service']);
    expect(problemsOf(broken('    healthcheck: *host-probe\n', ''))).toEqual([
      'deploy: waits for host-east-2 to be healthy, which has no healthcheck',
    ]);
  });

  it('fails on a build context without its Dockerfile, or a COPY of a missing file', () => {
    const noDockerfile = compose.replaceAll(
      'dockerfile: Dockerfile',
      'dockerfile: Dockerfile.nope',
    );
    expect(problemsOf(noDockerfile)).toContain('nats-1: build context has no Dockerfile.nope');
    expect(
      problemsOf(compose, {
        Dockerfile: dockerfile.replace(
          'COPY scheduler/ scheduler/',
          'COPY schedulers/ schedulers/',
        ),
      }),
    ).toContain('Dockerfile: COPY schedulers/: no such file');
    expect(problemsOf(compose, { Dockerfile: `${dockerfile}\nCOPY test/ test/\n` })).toContain(
      'Dockerfile: COPY test/: left out by .dockerignore',
    );
  });

  it('fails when the deployed application is missing or does not validate', () => {
    expect(problemsOf(broken('[deploy, actors/app.yaml]', '[deploy, actors/nope.yaml]'))).toEqual([
      'deploy: actors/nope.yaml: no such file in the repository',
    ]);
    // A manifest that does not validate: the test fixtures hold a few.
    expect(
      problemsOf(broken('[deploy, actors/app.yaml]', '[deploy, package.json]')).join('\n'),
    ).toMatch(/deploy: .*is not copied into the image|deploy: package\.json/);
  });

  it('fails on a healthcheck that probes a port nothing listens on', () => {
    expect(problemsOf(broken('127.0.0.1:9464/readyz', '127.0.0.1:9465/readyz'))).toEqual([
      'host-east-1: healthcheck probes port 9465, where weft host does not listen',
      'host-east-2: healthcheck probes port 9465, where weft host does not listen',
      'host-west-1: healthcheck probes port 9465, where weft host does not listen',
    ]);
    expect(problemsOf(broken('127.0.0.1:8222/healthz', '127.0.0.1:8223/healthz'))).toEqual([
      'nats-1: healthcheck probes port 8223, monitoring is on 8222',
      'nats-2: healthcheck probes port 8223, monitoring is on 8222',
      'nats-3: healthcheck probes port 8223, monitoring is on 8222',
    ]);
  });

  it('fails when two services publish one host port', () => {
    expect(problemsOf(broken("ports: ['8081:8080']", "ports: ['8080:8080']"))).toEqual([
      'gateway-2: host port 8080 is also published by gateway-1',
    ]);
    expect(problemsOf(broken("ports: ['8081:8080']", "ports: ['8081:9090']"))).toEqual([
      'gateway-2: publishes container port 9090, gateway listens on 8080',
    ]);
  });

  it("reads the Dockerfile's stages, copies and entrypoint", () => {
    const d = parseDockerfile('Dockerfile', dockerfile);
    expect(d.entrypoint).toEqual(['node', 'bin/weft.ts']);
    expect(d.copies).toContain('package.json');
    expect(d.copies).toContain('actors/');
    // The actors stage's output is copied from the stage, not the context.
    expect(d.copies).not.toContain('/src/actors/dist/');
  });
});
