/** The HTTP gateway provider. */
export { Gateway, traceparentFor } from './server.ts';
export type { GatewayOptions } from './server.ts';
export { RouteTable } from './routes.ts';
export type { RouteMatch } from './routes.ts';
