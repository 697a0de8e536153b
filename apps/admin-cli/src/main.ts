import { CommanderError } from 'commander';
import { describeError, EXIT_OK, EXIT_USAGE, exitCodeOf } from './errors';
import { err } from './io';
import { buildProgram } from './program';

/** Runs one command line; resolves to the exit code (never throws). */
export const run = async (argv: string[]): Promise<number> => {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT_OK;
  } catch (error) {
    // Commander printed its own message (or the help); only the code is left to decide.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    for (const line of describeError(error)) err(line);
    return exitCodeOf(error);
  }
};

/** Output piped into `head` (or a closed pager): a closed pipe ends the CLI quietly, as for any Unix tool. */
const quietOnClosedPipe = (stream: NodeJS.WriteStream) =>
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? EXIT_OK);
  });

/** The CLI as a process runs it — `node main.js` or the package's bin shim (bin/lorestore): quiet on a closed pipe, the exit code set. */
export const runAsProcess = (argv: string[]): void => {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  void run(argv).then((code) => {
    process.exitCode = code;
  });
};

if (require.main === module) runAsProcess(process.argv);
