/** The lattice protocol: subjects, envelope, errors, client, streams, stores. Imports nothing of host/ or providers/. */
export * from './errors.ts';
export * from './subjects.ts';
export * from './envelope.ts';
export * from './client.ts';
export * from './streams.ts';
export * from './stores.ts';
export * from './invocation.ts';
export * from './http.ts';
export * from './app.ts';
export * from './wasm.ts';
export * from './manifest/index.ts';
export * from './http-path.ts';
export * from './deploy.ts';
export * from './inventory.ts';
export * from './http-io.ts';
export * from './status.ts';
export * from './liveness.ts';
