import type { TestProject } from 'vitest/node';
import { startNatsServer, type NatsServerHandle } from './nats-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    natsUrl: string;
  }
}

let server: NatsServerHandle | undefined;

/** One real nats-server per test run; each test uses its own lattice name on it. */
export async function setup(project: TestProject): Promise<void> {
  server = await startNatsServer();
  project.provide('natsUrl', server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
