/**
 * Per-actor admission, the same for every mode: at most `maxConcurrency + maxQueue` invocations
 * in flight on a host (503 past it), counted in the actor's stats.
 */
import { ErrorCode, WeftError, type Limits } from '../../lattice/index.ts';

export interface ActorStats {
  invocations: number;
  errors: number;
  inFlight: number;
}

/** Run `work` as one invocation of actor `name`, or throw Overloaded (503) when it is full. */
export async function admitted<T>(
  name: string,
  limits: Limits,
  stats: ActorStats,
  work: () => Promise<T>,
): Promise<T> {
  if (stats.inFlight >= limits.maxConcurrency + limits.maxQueue) {
    throw new WeftError(
      ErrorCode.Overloaded,
      `actor '${name}' has ${stats.inFlight} requests in flight (limits.maxConcurrency ${limits.maxConcurrency} + limits.maxQueue ${limits.maxQueue})`,
      { details: { inFlight: stats.inFlight } },
    );
  }
  stats.inFlight++;
  stats.invocations++;
  try {
    return await work();
  } catch (err) {
    stats.errors++;
    throw err;
  } finally {
    stats.inFlight--;
  }
}
