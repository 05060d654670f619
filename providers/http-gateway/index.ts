/** The HTTP gateway provider. */
export { Gateway } from './server.ts';
export type { GatewayOptions } from './server.ts';
export { RouteTable } from './routes.ts';
export type { RouteMatch } from './routes.ts';
