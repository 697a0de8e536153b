export default async function globalTeardown(): Promise<void> {
  await globalThis.__LORESTORE_EMBEDDED_PG__?.stop();
  globalThis.__LORESTORE_EMBEDDED_PG__ = undefined;
}
