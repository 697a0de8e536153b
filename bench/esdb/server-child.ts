import { startEsdbTestServer } from '../../test/support/esdb-test-server';

/**
 * The EventStoreDB test double in a process of its own, so the bench's
 * client and mirror do not share a core with the server's encoding. Tells
 * its parent the connection string; answers `count` with the log's length.
 */
const main = async () => {
  const server = await startEsdbTestServer();
  process.send?.({ connectionString: server.connectionString });
  process.on('message', (message: unknown) => {
    if (message === 'count') process.send?.({ count: server.log().length });
    if (message === 'stop') void server.close().then(() => process.exit(0));
  });
};
void main();
