import type { TestProject } from 'vitest/node';
import { startNatsServer } from './nats-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    natsUrl: string;
  }
}

let stop: (() => Promise<void>) | undefined;

/**
 * One real nats-server per test run; each test uses its own lattice name on it. By default the
 * nats-server binary (PATH or NATS_SERVER_BIN); with WEFT_TEST_NATS=testcontainers and a Docker
 * engine, the same server from testcontainers' NATS module (install `@testcontainers/nats`).
 */
export async function setup(project: TestProject): Promise<void> {
  if (process.env['WEFT_TEST_NATS'] === 'testcontainers') {
    const moduleName = '@testcontainers/nats';
    let mod: { NatsContainer: new (image: string) => NatsContainerBuilder };
    try {
      mod = (await import(moduleName)) as typeof mod;
    } catch {
      throw new Error(
        `WEFT_TEST_NATS=testcontainers needs ${moduleName}: npm install --no-save ${moduleName}`,
      );
    }
    const started = await new mod.NatsContainer('nats:2.10-alpine').withJetStream().start();
    // The module creates a user; nats.js takes credentials from the URL.
    const { user, pass } = started.getConnectionOptions();
    const auth = user ? `${encodeURIComponent(user)}:${encodeURIComponent(pass ?? '')}@` : '';
    project.provide('natsUrl', `nats://${auth}${started.getHost()}:${started.getMappedPort(4222)}`);
    stop = async () => {
      await started.stop();
    };
    return;
  }
  const server = await startNatsServer();
  project.provide('natsUrl', server.url);
  stop = () => server.stop();
}

interface NatsContainerBuilder {
  withJetStream(): NatsContainerBuilder;
  start(): Promise<{
    getHost(): string;
    getMappedPort(p: number): number;
    getConnectionOptions(): { user?: string; pass?: string };
    stop(): Promise<unknown>;
  }>;
}

export async function teardown(): Promise<void> {
  await stop?.();
}
