import { Command } from 'commander';
import { registerJob } from './commands/job';
import { registerPlayer } from './commands/player';
import { registerProjections } from './commands/projections';
import { registerRebuild } from './commands/rebuild';
import { registerRestore } from './commands/restore';
import { registerRollback } from './commands/rollback';
import { registerRollbacks } from './commands/rollbacks';
import { registerStateAt } from './commands/state-at';
import { registerStateAtWorld } from './commands/state-at-world';
import { DEFAULT_URL } from './config';
import { positive } from './parse';
import { cliVersion } from './version';

const rootHelp = `
Environment:
  LORESTORE_URL       the API to talk to (default ${DEFAULT_URL}); --url overrides it
  LORESTORE_API_KEY   an admin API key, required by every command; --api-key overrides it
                      (for a local \`npm start\`: export LORESTORE_API_KEY=$(cat .lorestore/admin.key))

Exit codes:
  0  done
  1  the server or the operation failed (5xx, unreachable server, failed rebuild job)
  2  usage error, declined confirmation, or the request was refused (4xx)

Examples:
  $ lorestore projections
  $ lorestore state-at demo entity-demo-3f1c2a9e-6b0d-4c59-9d4e-1a2b3c4d5e6f --revision 0
  $ lorestore rollback world demo --to-time 2026-03-01T14:00:00Z --reason "exploit" --dry-run
  $ lorestore rebuild entities --reason "new index"
  $ lorestore player export 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 --output player.json
  $ lorestore <command> --help`;

/**
 * The \`lorestore\` program. Commander's own errors (unknown option, missing
 * argument, --help) are thrown instead of exiting (exitOverride), so main
 * decides every exit code; subcommands inherit that from here, which is why
 * the settings come before the commands.
 */
export const buildProgram = (): Command => {
  const program = new Command('lorestore')
    .description('The lorestore admin command line: state at any point, rollbacks and restores, projection rebuilds, player export and erasure. Talks to the HTTP API only.')
    .version(cliVersion(), '-V, --version', 'print the version')
    .option('--url <url>', `the lorestore API (default: $LORESTORE_URL, else ${DEFAULT_URL})`)
    .option('--api-key <key>', 'an admin API key (default: $LORESTORE_API_KEY; prefer the variable: arguments show in ps)')
    .option('--timeout <ms>', 'give up on a request after this many milliseconds', positive, 30_000)
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', rootHelp);
  program.configureHelp({ sortSubcommands: false, showGlobalOptions: true });

  registerStateAt(program);
  registerStateAtWorld(program);
  registerRollback(program);
  registerRestore(program);
  registerRollbacks(program);
  registerRebuild(program);
  registerJob(program);
  registerProjections(program);
  registerPlayer(program);
  return program;
};
