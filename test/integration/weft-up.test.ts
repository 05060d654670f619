/**
 * `weft up`: a nats-server of its own, a host, a gateway and the example application from one
 * command; SIGTERM stops every child it started.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT, newLattice } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('serves the example application and cleans up on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'weft.ts'), 'up', '--http-port', '0', '--lattice', newLattice()],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_NATS_URL: '' } },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const url = await until(() => /HTTP {2}(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1], {
      name: 'weft up banner',
      timeoutMs: 40_000,
    });
    const natsPid = Number(/"natsPid":(\d+),"msg":"nats-server started"/.exec(out)?.[1]);
    expect(natsPid).toBeGreaterThan(0);
    expect(alive(natsPid)).toBe(true);
    const res = await fetch(`${url}/hello?name=up`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('up');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until(() => !alive(natsPid), { name: 'nats-server stopped', timeoutMs: 10_000 });
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
