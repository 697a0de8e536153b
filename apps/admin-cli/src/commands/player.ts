import { randomUUID } from 'node:crypto';
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { clientFor } from '../config';
import { confirm } from '../confirm';
import { ApiError, isApiError, NetworkError, OperationFailedError, UsageError } from '../errors';
import { keyValues, num } from '../format';
import { seg } from '../http';
import { err, out, outJson } from '../io';
import { nonEmpty, uuid } from '../parse';
import { withRetries } from '../retry';
import type { PlayerErasure } from '../types';

type EraseOptions = { reason: string; yes?: boolean; json?: boolean };
type ExportOptions = { output?: string; force?: boolean };

const notFoundHint = 'check the player id: lorestore holds no key, profile or memory for it';

const addNotFoundHint = (error: unknown) => {
  if (isApiError(error, 'not-found')) error.hints.push(notFoundHint);
  return error;
};

const exists = async (file: string): Promise<boolean> => {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
};

const CLOSING_BRACE = 0x7d;
const isSpace = (byte: number) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/**
 * Counts what goes through and keeps the last non-blank byte: a JSON
 * document that does not end with `}` was cut short (the server stopped
 * mid-export without the connection saying so).
 */
const meter = () => {
  const seen = { bytes: 0, last: -1 };
  const through = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      seen.bytes += chunk.length;
      for (let i = chunk.length - 1; i >= 0; i--) {
        if (!isSpace(chunk[i]!)) {
          seen.last = chunk[i]!;
          break;
        }
      }
      yield chunk;
    }
  };
  return { seen, through };
};

const incomplete = (bytes: number, what: string) =>
  new OperationFailedError(`the export broke off after ${num(bytes)} bytes (the document does not end with "}"): ${what}`, ['run the command again']);

/**
 * Writes the export to `file`, created with mode 0600 (it holds personal
 * data). Without `force` the file is created exclusively (an existing one is
 * never touched); with it, the export goes to a new file next to it that
 * replaces the old one only once complete. On any failure the partial file
 * is removed. Resolves to the number of bytes written.
 */
const writePrivately = async (file: string, body: Readable, force: boolean): Promise<number> => {
  const target = force ? path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID().slice(0, 8)}.partial`) : file;
  let handle: FileHandle;
  try {
    handle = await open(target, 'wx', 0o600);
  } catch (error) {
    body.destroy();
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'EEXIST' && !force) throw new UsageError(`${file} exists already: refusing to overwrite it`, ['add --force to replace it, or choose another --output']);
    throw new UsageError(`cannot create ${target}: ${e.message}`);
  }
  let cleanUp = true;
  try {
    // The mode given to open() is narrowed by the umask; the file must be 0600, no more, no less.
    await handle.chmod(0o600);
    const { seen, through } = meter();
    // One chunk at a time straight to the file: the next is read once this one is written.
    for await (const chunk of through(body)) await handle.write(chunk);
    if (seen.last !== CLOSING_BRACE) throw incomplete(seen.bytes, 'nothing was written');
    await handle.sync();
    await handle.close();
    if (force) await rename(target, file);
    cleanUp = false;
    return seen.bytes;
  } finally {
    if (cleanUp) {
      await handle.close().catch(() => undefined);
      await unlink(target).catch(() => undefined);
    }
  }
};

const describeErasure = (erasure: PlayerErasure, reason: string) => {
  // The server answers every erasure after the first with the first one: a different reason gives that away.
  out(
    erasure.reason === reason
      ? `erased player ${erasure.playerId}: their profile, action contexts and the memories about them can no longer be read`
      : `player ${erasure.playerId} had been erased already; the first erasure:`,
  );
  out(
    keyValues([
      ['playerId', erasure.playerId],
      ['erasedAt', erasure.erasedAt],
      ['erasedBy', erasure.erasedBy],
      ['reason', erasure.reason],
      ['position', erasure.position],
    ]),
  );
  if (erasure.position !== null) {
    out('');
    out(`position ${erasure.position} is a consistency token: reads with ?minPosition=${erasure.position} see the read models erased`);
  }
};

export const registerPlayer = (program: Command): void => {
  const player = program
    .command('player')
    .description("A player's personal data (GDPR): export everything held about them, or erase it for good")
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore player export 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 --output player.json
  $ lorestore player erase 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 --reason "erasure request #4711"`,
    );

  player
    .command('erase')
    .description("Erase a player's personal data everywhere (crypto-shredding): irreversible")
    .argument('<playerId>', 'the player (a UUID)', uuid)
    .requiredOption('--reason <text>', 'why, up to 500 characters (recorded in the audit trail: name no one here)', nonEmpty)
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--json', 'print the raw JSON answer on stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore player erase 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 --reason "erasure request #4711"
  $ lorestore player erase 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 --reason "erasure request #4711" --yes --json

Destroys the player's data key: their profile, action contexts and the memories about them can
never be read again, in the log, its mirrors or any backup. There is no undo (a rollback does not
bring anything back). Asks "Erase ...? [y/N]" first; --yes skips the question (required without a
terminal). Erasing a player again changes nothing and prints the first erasure.
Export the player's data first if it has to be handed over: \`lorestore player export\`.`,
    )
    .action(async (playerId: string, options: EraseOptions, command: Command) => {
      const client = clientFor(command);
      if (!options.yes) {
        // With --json, stdout is for the answer: what is about to happen goes to stderr.
        const write = options.json ? err : out;
        write(`player ${playerId}: erasing destroys their data key; their profile, action contexts and the memories about them`);
        write('can never be read again (log, mirrors, backups). This cannot be undone.');
        await confirm(`Erase the personal data of player ${playerId}?`, 'erase a player');
      }
      let erasure: PlayerErasure;
      try {
        erasure = await withRetries(
          () => client.post<PlayerErasure>(`/v1/admin/players/${seg(playerId)}/erase`, { reason: options.reason }),
          `erasure of player ${playerId}`,
        );
      } catch (error) {
        addNotFoundHint(error);
        if (error instanceof NetworkError || (error instanceof ApiError && error.status >= 500)) {
          error.hints.push('the erasure may or may not have been applied: run the same command again (erasing twice changes nothing)');
        }
        throw error;
      }
      if (options.json) return outJson(erasure);
      describeErasure(erasure, options.reason);
    });

  player
    .command('export')
    .description('Everything lorestore holds about a player, decrypted, as one JSON document (stdout or a file)')
    .argument('<playerId>', 'the player (a UUID)', uuid)
    .option('-o, --output <file>', 'write the document to this file (created with mode 0600) instead of stdout', nonEmpty)
    .option('--force', 'with --output: replace the file if it exists')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore player export 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 --output player-7d1e0f2a.json
  $ lorestore player export 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 | jq '.worlds[].profile'

The document is { playerId, exportedAt, erased, erasure, worlds, actions, memories }, streamed as
the server writes it. It holds personal data: --output creates the file readable by you only
(0600) and refuses to overwrite an existing file unless --force (then the old file is replaced
only once the new one is complete).`,
    )
    .action(async (playerId: string, options: ExportOptions, command: Command) => {
      const client = clientFor(command);
      if (options.force && options.output === undefined) throw new UsageError('--force only goes with --output <file>');
      const file = options.output === undefined ? undefined : path.resolve(options.output);
      if (file !== undefined && !options.force && (await exists(file))) {
        throw new UsageError(`${options.output} exists already: refusing to overwrite it`, ['add --force to replace it, or choose another --output']);
      }
      let body: Readable;
      try {
        body = await client.download(`/v1/admin/players/${seg(playerId)}/export`);
      } catch (error) {
        throw addNotFoundHint(error);
      }
      if (file === undefined) {
        const { seen, through } = meter();
        await pipeline(body, through, process.stdout, { end: false });
        if (seen.last !== CLOSING_BRACE) throw incomplete(seen.bytes, 'what went to stdout is not the whole document');
        process.stdout.write('\n');
        return;
      }
      const bytes = await writePrivately(file, body, options.force ?? false);
      out(`exported player ${playerId} to ${options.output} (${num(bytes)} bytes, mode 0600: it holds personal data)`);
    });
};
