/** The HTTP gateway provider. */
export { Gateway } from './server.ts';
export type { GatewayOptions } from './server.ts';
export { RouteTable } from './routes.ts';
export type { RouteMatch } from './routes.ts';
export { Dashboard, DASHBOARD_PATH } from './dashboard/index.ts';
export type { DashboardOptions, DashboardSnapshot } from './dashboard/index.ts';
