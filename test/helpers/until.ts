/**
 * Poll `fn` until it returns a value other than undefined/false, or fail after `timeoutMs` with a
 * message naming what was awaited. Errors thrown by `fn` stop the wait at once.
 */
export async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  opts: { name: string; timeoutMs?: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const interval = opts.intervalMs ?? 25;
  let last: unknown;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    last = v;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${opts.name} (last: ${String(last)})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
