import type { Command } from 'commander';
import { clientFor } from '../config';
import { UsageError } from '../errors';
import { seg } from '../http';
import { out, outJson } from '../io';
import { positive } from '../parse';
import type { Operation, OperationPage } from '../types';
import { auditTable } from '../views';

type Options = { limit: number; cursor?: string; all?: boolean; json?: boolean };

export const registerRollbacks = (program: Command): void => {
  program
    .command('rollbacks')
    .description("A world's audit trail of rollbacks and restores, newest first: who, when, why, scope, operation id")
    .argument('<worldId>', 'the world (a slug)')
    .option('--limit <n>', 'entries per page (1–200)', positive, 50)
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--all', 'follow the pages to the end')
    .option('--json', 'print the raw JSON answer (with --all: every item in one list)')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore rollbacks demo
  $ lorestore rollbacks demo --limit 200 --all --json > audit.json`,
    )
    .action(async (worldId: string, options: Options, command: Command) => {
      if (options.limit > 200) throw new UsageError('--limit is at most 200');
      const client = clientFor(command);
      const items: Operation[] = [];
      let cursor = options.cursor;
      let page: OperationPage;
      do {
        page = await client.get<OperationPage>(`/v1/admin/worlds/${seg(worldId)}/rollbacks`, { limit: options.limit, cursor });
        items.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (options.all && cursor);
      if (options.json) return outJson(options.all ? { items, nextCursor: null } : page);
      if (items.length === 0) return out(`no rollbacks or restores in world ${worldId}${options.cursor ? ' after that cursor' : ''}`);
      out(auditTable(items));
      if (!options.all && page.nextCursor) out(`\nmore: lorestore rollbacks ${worldId} --cursor ${page.nextCursor} (or --all)`);
    });
};
