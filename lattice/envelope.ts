/**
 * The msgpack envelope every lattice payload travels in: `{ v, ok: true, body }` or
 * `{ v, ok: false, error: { code, message, details } }`. A version other than ours is refused with
 * WEFT_ERR_PROTOCOL rather than misread.
 */
import { Packr } from 'msgpackr';
import { ErrorCode, WeftError, fromWire, toWire, type WireError } from './errors.ts';

export const ENVELOPE_VERSION = 1;

// Plain maps (no record extension) so that any msgpack implementation can read the wire format.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

type Envelope = { v: number; ok: true; body: unknown } | { v: number; ok: false; error: WireError };

/** Encode a successful reply or request body. */
export function encode(body: unknown): Uint8Array {
  return packr.pack({ v: ENVELOPE_VERSION, ok: true, body });
}

/** Encode an error reply; unknown errors become WEFT_ERR_INTERNAL. */
export function encodeError(err: unknown): Uint8Array {
  return packr.pack({ v: ENVELOPE_VERSION, ok: false, error: toWire(err) });
}

/** Decode an envelope; throws the sender's error (rebuilt with its code) for `ok: false`. */
export function decode<T>(data: Uint8Array): T {
  let env: Envelope;
  try {
    env = packr.unpack(data) as Envelope;
  } catch (err) {
    throw new WeftError(ErrorCode.Protocol, 'undecodable lattice message', { cause: err });
  }
  if (typeof env !== 'object' || env === null || env.v !== ENVELOPE_VERSION) {
    throw new WeftError(
      ErrorCode.Protocol,
      `unsupported envelope version ${String((env as { v?: unknown } | null)?.v)}`,
    );
  }
  if (!env.ok) throw fromWire(env.error);
  return env.body as T;
}

/** msgpack without an envelope, for stored values (KV entries, bundles). */
export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}
export function unpack<T>(data: Uint8Array): T {
  return packr.unpack(data) as T;
}
