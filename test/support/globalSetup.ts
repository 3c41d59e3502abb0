import { startServices, type RunningServices } from '../../scripts/services';

declare global {
  var __apexServices: RunningServices | undefined;
}

/** One Redis, FerretDB and MinIO for the whole run; each suite isolates itself by prefix/db/bucket. */
export default async function globalSetup() {
  const services = await startServices();
  Object.assign(process.env, services.env, { LOG_SILENT: process.env.LOG_SILENT ?? '1' });
  globalThis.__apexServices = services;
}
