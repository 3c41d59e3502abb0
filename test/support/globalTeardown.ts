export default async function globalTeardown() {
  await globalThis.__apexServices?.stop();
}
