/** Jest project `e2e-esdb`: every test app of this run is started in EventStoreDB mode (see test/support/app.ts). */
process.env.LORESTORE_TEST_EVENT_STORE = 'esdb';
