import { Option, type Command } from 'commander';
import { clientFor } from '../config';
import { UsageError } from '../errors';
import { pretty } from '../format';
import { seg } from '../http';
import { out, outJson } from '../io';
import { isoTime, nonNegative, positive } from '../parse';
import type { StreamState, WorldStatePage } from '../types';
import { worldStreamsTable } from '../views';

type Options = { position?: number; time?: string; limit: number; cursor?: string; all?: boolean; states?: boolean; json?: boolean };

export const registerStateAtWorld = (program: Command): void => {
  program
    .command('state-at-world')
    .description('A whole world at a global position or time: every stream folded to that point, a page at a time')
    .argument('<worldId>', 'the world (a slug)')
    .addOption(new Option('--position <p>', "at this global position (a command's \"position\")").argParser(nonNegative).conflicts('time'))
    .addOption(new Option('--time <iso>', 'as of this ISO-8601 time with a time zone').argParser(isoTime))
    .option('--limit <n>', 'streams per page (1–1000)', positive, 100)
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--all', 'follow the pages to the end')
    .option('--states', 'print each stream\'s state too, not only the table')
    .option('--json', 'print the raw JSON answer (with --all: every stream in one list)')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore state-at-world demo --position 18234
  $ lorestore state-at-world demo --time 2026-03-01T14:00:00Z --all --states
  $ lorestore state-at-world demo --time 2026-03-01T14:00:00Z --all --json > demo-at-1400.json

Streams with nothing at or before the point are left out.`,
    )
    .action(async (worldId: string, options: Options, command: Command) => {
      if ((options.position === undefined) === (options.time === undefined)) throw new UsageError('give one of --position <p> or --time <iso>');
      if (options.limit > 1000) throw new UsageError('--limit is at most 1000');
      const client = clientFor(command);
      const streams: StreamState[] = [];
      let cursor = options.cursor;
      let page: WorldStatePage;
      do {
        page = await client.get<WorldStatePage>(`/v1/admin/worlds/${seg(worldId)}/state-at`, {
          atPosition: options.position,
          asOf: options.time,
          limit: options.limit,
          cursor,
        });
        streams.push(...page.streams);
        cursor = page.nextCursor ?? undefined;
      } while (options.all && cursor);
      if (options.json) return outJson(options.all ? { ...page, streams, nextCursor: null } : page);
      const point = options.position !== undefined ? `position ${options.position}` : options.time;
      if (streams.length === 0) return out(`world ${worldId} had no streams at ${point}`);
      out(`world ${worldId} at ${point}: ${streams.length} stream(s)${options.all || !page.nextCursor ? '' : ' on this page'}`);
      out(worldStreamsTable(streams));
      if (options.states) for (const s of streams) out(`\n${s.streamId} (revision ${s.revision}):\n${pretty(s.state)}`);
      if (!options.all && page.nextCursor) out(`\nmore: add --cursor ${page.nextCursor} (or --all)`);
    });
};
