/**
 * One Jest run for every tier: *.unit.spec.ts, *.int.spec.ts, *.e2e.spec.ts,
 * and the end-to-end suite once more in EventStoreDB mode (project
 * `e2e-esdb`: every test app appends to a protocol-level EventStoreDB test
 * double and reads from its PostgreSQL mirror).
 */
const swcrc = JSON.parse(require('node:fs').readFileSync(`${__dirname}/.swcrc`, 'utf8'));
delete swcrc.$schema;

const shared = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { ...swcrc, jsc: { ...swcrc.jsc, baseUrl: __dirname } }],
    // NestJS 12 (and a few others) ship ES modules only, and Jest on Node 20 cannot require() them:
    // compile those to CommonJS too. The service itself loads them natively through require(esm).
    '^.+/node_modules/.+\\.m?js$': ['@swc/jest', { module: { type: 'commonjs', ignoreDynamic: false }, jsc: { target: 'es2022', parser: { syntax: 'ecmascript' } } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|@fastify|cookie|file-type|strtok3|token-types|@tokenizer|uint8array-extras|zod)/)'],
  moduleNameMapper: {
    '^@lorestore/event-store/testing$': '<rootDir>/libs/event-store/src/testing',
    '^@lorestore/(.*)$': '<rootDir>/libs/$1/src',
  },
};

module.exports = {
  projects: [
    { ...shared, displayName: 'postgres', testMatch: ['<rootDir>/{apps,libs,test}/**/*.spec.ts'] },
    {
      ...shared,
      displayName: 'e2e-esdb',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e.spec.ts'],
      setupFiles: ['<rootDir>/test/support/esdb-mode.ts'],
    },
  ],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  // A global option (in a project's config Jest ignores it).
  testTimeout: 30000,
  maxWorkers: 2,
};
