/** The live dashboard (`/_weft/` on a gateway, and `weft ui`). */
export { Dashboard, DASHBOARD_PATH } from './dashboard.ts';
export type { DashboardOptions } from './dashboard.ts';
export { LatticeCollector, DEFAULT_STEP_MS, DEFAULT_WINDOW_MS } from './collector.ts';
export type {
  ActorHostView,
  ActorView,
  AppView,
  DashboardSnapshot,
  HostView,
} from './collector.ts';
export { RateRing, growth } from './rates.ts';
