import { Option, type Command } from 'commander';
import { clientFor } from '../config';
import { seg } from '../http';
import { out, outJson } from '../io';
import { isoTime, nonNegative } from '../parse';
import type { StreamState } from '../types';
import { streamStateView } from '../views';

type Options = { revision?: number; position?: number; time?: string; json?: boolean };

export const registerStateAt = (program: Command): void => {
  program
    .command('state-at')
    .description("A stream's state at a revision, a global position or a time (its head without one), folded from the log")
    .argument('<worldId>', 'the world (a slug)')
    .argument('<streamId>', 'the stream, e.g. entity-<worldId>-<entityId>, world-<worldId>, narrative-<worldId>')
    .addOption(new Option('--revision <n>', 'after this revision of the stream').argParser(nonNegative).conflicts(['position', 'time']))
    .addOption(new Option('--position <p>', "as of this global position (a command's \"position\")").argParser(nonNegative).conflicts('time'))
    .addOption(new Option('--time <iso>', 'as of this ISO-8601 time with a time zone').argParser(isoTime))
    .option('--json', 'print the raw JSON answer')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore state-at demo entity-demo-3f1c2a9e-6b0d-4c59-9d4e-1a2b3c4d5e6f --revision 0
  $ lorestore state-at demo world-demo --time 2026-03-01T14:00:00Z
  $ lorestore state-at demo narrative-demo --position 18234 --json

Prints the revision, position and time of the last event folded, the snapshot the fold
started from, the number of events folded, and the state.`,
    )
    .action(async (worldId: string, streamId: string, options: Options, command: Command) => {
      const state = await clientFor(command).get<StreamState>(`/v1/admin/worlds/${seg(worldId)}/streams/${seg(streamId)}/state`, {
        atRevision: options.revision,
        atPosition: options.position,
        asOf: options.time,
      });
      if (options.json) outJson(state);
      else out(streamStateView(state));
    });
};
