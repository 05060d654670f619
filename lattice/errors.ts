/**
 * The error catalogue. Codes are stable and append-only: a client that receives an error over the
 * lattice rebuilds the same class with `fromWire()`, so `err.code` on the CLI or gateway is the
 * code the host raised.
 */

export const ErrorCode = {
  Internal: 'WEFT_ERR_INTERNAL',
  BadRequest: 'WEFT_ERR_BAD_REQUEST',
  RouteNotFound: 'WEFT_ERR_ROUTE_NOT_FOUND',
  ActorNotFound: 'WEFT_ERR_ACTOR_NOT_FOUND',
  NoHost: 'WEFT_ERR_NO_HOST',
  HostNotFound: 'WEFT_ERR_HOST_NOT_FOUND',
  AppNotFound: 'WEFT_ERR_APP_NOT_FOUND',
  ArtifactNotFound: 'WEFT_ERR_ARTIFACT_NOT_FOUND',
  ManifestInvalid: 'WEFT_ERR_MANIFEST_INVALID',
  ModuleInvalid: 'WEFT_ERR_MODULE_INVALID',
  Timeout: 'WEFT_ERR_TIMEOUT',
  Overloaded: 'WEFT_ERR_OVERLOADED',
  RequestTooLarge: 'WEFT_ERR_REQUEST_TOO_LARGE',
  ResponseTooLarge: 'WEFT_ERR_RESPONSE_TOO_LARGE',
  ActorTrap: 'WEFT_ERR_ACTOR_TRAP',
  ActorExited: 'WEFT_ERR_ACTOR_EXITED',
  BadCgiResponse: 'WEFT_ERR_BAD_CGI_RESPONSE',
  PolicyDenied: 'WEFT_ERR_POLICY_DENIED',
  LatticeUnavailable: 'WEFT_ERR_LATTICE_UNAVAILABLE',
  Stream: 'WEFT_ERR_STREAM',
  Protocol: 'WEFT_ERR_PROTOCOL',
  /** A proxy actor answered with bytes that are not a valid HTTP/1.1 response. */
  BadProxyResponse: 'WEFT_ERR_BAD_PROXY_RESPONSE',
  /** A proxy instance crashed or closed the connection before its response was complete. */
  InstanceCrashed: 'WEFT_ERR_INSTANCE_CRASHED',
  /** No instance of a proxy actor is listening yet (starting, restarting, or failing to start). */
  ActorNotReady: 'WEFT_ERR_ACTOR_NOT_READY',
  /** A host started with the id of a host already in the lattice. */
  HostIdTaken: 'WEFT_ERR_HOST_ID_TAKEN',
  /** The host serving an invocation died (missed its heartbeats) before it answered. */
  HostLost: 'WEFT_ERR_HOST_LOST',
  /** A host that trusts certain issuers refused a module: unsigned, another issuer's, altered, expired. */
  Untrusted: 'WEFT_ERR_UNTRUSTED',
  /**
   * NATS refused this process's credentials (or it gave none where the server wants some), or its
   * user may not publish or subscribe to a subject it needed (a permission violation).
   */
  Unauthorized: 'WEFT_ERR_UNAUTHORIZED',
  /**
   * A secret an actor needs cannot be had: not in the lattice's secret store, no host variable of
   * that name, no secrets key on the host, or an entry that does not decrypt (altered, or sealed
   * for another key). Messages name the secret, never a value.
   */
  Secret: 'WEFT_ERR_SECRET',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** HTTP status the gateway answers for each code. One table, used by every HTTP surface. */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze({
  WEFT_ERR_INTERNAL: 500,
  WEFT_ERR_BAD_REQUEST: 400,
  WEFT_ERR_ROUTE_NOT_FOUND: 404,
  WEFT_ERR_ACTOR_NOT_FOUND: 404,
  WEFT_ERR_NO_HOST: 503,
  WEFT_ERR_HOST_NOT_FOUND: 404,
  WEFT_ERR_APP_NOT_FOUND: 404,
  WEFT_ERR_ARTIFACT_NOT_FOUND: 404,
  WEFT_ERR_MANIFEST_INVALID: 400,
  WEFT_ERR_MODULE_INVALID: 400,
  WEFT_ERR_TIMEOUT: 504,
  WEFT_ERR_OVERLOADED: 503,
  WEFT_ERR_REQUEST_TOO_LARGE: 413,
  WEFT_ERR_RESPONSE_TOO_LARGE: 502,
  WEFT_ERR_ACTOR_TRAP: 500,
  WEFT_ERR_ACTOR_EXITED: 502,
  WEFT_ERR_BAD_CGI_RESPONSE: 502,
  WEFT_ERR_POLICY_DENIED: 403,
  WEFT_ERR_LATTICE_UNAVAILABLE: 503,
  WEFT_ERR_STREAM: 502,
  WEFT_ERR_PROTOCOL: 502,
  WEFT_ERR_HOST_ID_TAKEN: 409,
  WEFT_ERR_BAD_PROXY_RESPONSE: 502,
  WEFT_ERR_INSTANCE_CRASHED: 502,
  WEFT_ERR_ACTOR_NOT_READY: 503,
  WEFT_ERR_HOST_LOST: 502,
  WEFT_ERR_UNTRUSTED: 403,
  WEFT_ERR_UNAUTHORIZED: 401,
  WEFT_ERR_SECRET: 500,
});

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** Structured, JSON-safe details attached to an error (paths, limits, ids). */
export type ErrorDetails = Record<string, unknown>;

/** Every error weft raises on purpose. `details` travels over the wire with the code. */
export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    options?: ErrorOptions & { details?: ErrorDetails | undefined },
  ) {
    super(message, options);
    this.code = code;
    this.details = options?.details;
    this.name = new.target.name;
  }
  /** HTTP status for this error's code. */
  get httpStatus(): number {
    return HTTP_STATUS_BY_CODE[this.code];
  }
}

/** A manifest failed YAML parsing, schema validation or semantic checks. */
export class ManifestInvalidError extends WeftError {
  constructor(message: string, options?: ErrorOptions & { details?: ErrorDetails }) {
    super(ErrorCode.ManifestInvalid, message, options);
  }
}

/** A module is not WebAssembly, or not one weft can run. */
export class ModuleInvalidError extends WeftError {
  constructor(message: string, options?: ErrorOptions & { details?: ErrorDetails }) {
    super(ErrorCode.ModuleInvalid, message, options);
  }
}

/** An invocation ran past its deadline. */
export class TimeoutError extends WeftError {
  constructor(message: string, options?: ErrorOptions & { details?: ErrorDetails }) {
    super(ErrorCode.Timeout, message, options);
  }
}

/** The wire form of an error. */
export interface WireError {
  code: string;
  message: string;
  details?: ErrorDetails;
}

/** Serialize any thrown value; unknown errors become WEFT_ERR_INTERNAL without their stack. */
export function toWire(err: unknown): WireError {
  if (err instanceof WeftError) {
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: ErrorCode.Internal, message };
}

/** Rebuild an error from its wire form, keeping the sender's code (unknown codes → Internal). */
export function fromWire(wire: WireError): WeftError {
  const code = (KNOWN_CODES.has(wire.code) ? wire.code : ErrorCode.Internal) as ErrorCode;
  const opts = wire.details === undefined ? undefined : { details: wire.details };
  switch (code) {
    case ErrorCode.ManifestInvalid:
      return new ManifestInvalidError(wire.message, opts);
    case ErrorCode.ModuleInvalid:
      return new ModuleInvalidError(wire.message, opts);
    case ErrorCode.Timeout:
      return new TimeoutError(wire.message, opts);
    default:
      return new WeftError(code, wire.message, opts);
  }
}
