/**
 * Live bodies over a real nats-server: a producer pushes pieces while a receiver pulls them (a
 * proxy actor's streamed response between host and gateway), with flow control, errors after
 * partial bodies, cancels and idle producers.
 */
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import {
  ErrorCode,
  LiveBody,
  WeftError,
  connectLattice,
  offerLive,
  pullLive,
  type LatticeClient,
} from '../../lattice/index.ts';
import { newLattice } from '../helpers/stack.ts';
import { until } from '../helpers/until.ts';

let host: LatticeClient;
let gateway: LatticeClient;

beforeAll(async () => {
  const lattice = newLattice();
  host = await connectLattice({ servers: inject('natsUrl'), lattice });
  gateway = await connectLattice({ servers: inject('natsUrl'), lattice });
});

afterAll(async () => {
  await host?.close();
  await gateway?.close();
});

const text = (s: string) => new TextEncoder().encode(s);

/**
 * Offer `body` from the host's connection, once the server has the offer's subscription: as
 * when the host replies with the offer on that same connection, after subscribing.
 */
async function offer(body: LiveBody, idleMs = 5_000) {
  const ref = offerLive(host, body, idleMs);
  await host.nc.flush();
  return ref;
}
const opts = { timeoutMs: 5_000, maxBytes: 1 << 20, tooLarge: ErrorCode.ResponseTooLarge };

it('delivers pieces pushed while the receiver reads, in order, and ends', async () => {
  const body = new LiveBody({ length: 12 });
  const ref = await offer(body, 5_000);
  expect(ref).toMatchObject({ live: true, size: 12 });
  const got: string[] = [];
  const reader = (async () => {
    for await (const piece of pullLive(gateway, ref, opts)) {
      got.push(new TextDecoder().decode(piece));
      // Each piece is pushed only once the previous one was read: nothing was buffered whole.
      if (got.join('') === 'part1') body.push(text('part2'));
      if (got.join('') === 'part1part2') {
        body.push(text('!!'));
        body.end();
      }
    }
  })();
  body.push(text('part1'));
  await reader;
  expect(got.join('')).toBe('part1part2!!');
});

it('tells the producer to pause at its high-water mark and to resume once read', async () => {
  const flow: boolean[] = [];
  const body = new LiveBody({ highWaterBytes: 4096, onFlow: (paused) => flow.push(paused) });
  const ref = await offer(body, 5_000);
  body.push(new Uint8Array(3000));
  expect(flow).toEqual([]);
  body.push(new Uint8Array(3000));
  expect(flow).toEqual([true]);
  const pieces = pullLive(gateway, ref, opts);
  const first = await pieces.next();
  expect(first.done).toBe(false);
  expect((first.value as Uint8Array).length).toBe(6000);
  expect(flow).toEqual([true, false]);
  body.end();
  expect((await pieces.next()).done).toBe(true);
});

it('passes on the bytes it had, then the error with its code', async () => {
  const body = new LiveBody();
  const ref = await offer(body, 5_000);
  body.push(text('partial'));
  body.fail(new WeftError(ErrorCode.InstanceCrashed, 'the instance crashed'));
  const got: string[] = [];
  const err = await (async () => {
    for await (const piece of pullLive(gateway, ref, opts))
      got.push(new TextDecoder().decode(piece));
  })().catch((e: unknown) => e);
  expect(got.join('')).toBe('partial');
  expect(err).toBeInstanceOf(WeftError);
  expect((err as WeftError).code).toBe(ErrorCode.InstanceCrashed);
});

it('refuses a body over the receiver limit, declared or as it grows', async () => {
  const declared = new LiveBody({ length: 10_000 });
  const small = { ...opts, maxBytes: 1000 };
  const r1 = pullLive(gateway, await offer(declared, 5_000), small);
  await expect(r1.next()).rejects.toMatchObject({ code: ErrorCode.ResponseTooLarge });

  const growing = new LiveBody();
  let abandoned = false;
  growing.onAbandon = () => (abandoned = true);
  const ref = await offer(growing, 5_000);
  growing.push(new Uint8Array(600));
  const reader = (async () => {
    let n = 0;
    for await (const piece of pullLive(gateway, ref, small)) {
      n += piece.length;
      growing.push(new Uint8Array(600));
    }
    return n;
  })();
  await expect(reader).rejects.toMatchObject({ code: ErrorCode.ResponseTooLarge });
  // The receiver's cancel reaches the producer.
  await until(() => abandoned, { name: 'the producer told to stop', timeoutMs: 5_000 });
});

it('a receiver that stops early cancels; one that never pulls is given up after the idle time', async () => {
  const body = new LiveBody();
  let abandoned = false;
  body.onAbandon = () => (abandoned = true);
  const ref = await offer(body, 60_000);
  body.push(text('one'));
  for await (const piece of pullLive(gateway, ref, opts)) {
    expect(new TextDecoder().decode(piece)).toBe('one');
    break;
  }
  await until(() => abandoned, { name: 'cancelled by the receiver', timeoutMs: 5_000 });

  const idle = new LiveBody();
  let idleAbandoned = false;
  idle.onAbandon = () => (idleAbandoned = true);
  await offer(idle, 200);
  idle.push(text('nobody reads this'));
  await until(() => idleAbandoned, { name: 'given up when idle', timeoutMs: 5_000 });
});
