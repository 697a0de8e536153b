import { createInterface } from 'node:readline/promises';
import { UsageError } from './errors';
import { stdinIsTTY } from './io';

/**
 * Asks a yes/no question on the terminal (the prompt on stderr, so stdout can
 * be redirected). Only an explicit "y"/"yes" goes ahead; Ctrl-C, Ctrl-D or
 * anything else declines. Without a terminal to ask on, refuses: a script
 * must say `--yes`.
 */
export const confirm = async (question: string, what: string): Promise<void> => {
  if (!stdinIsTTY()) {
    throw new UsageError(`refusing to ${what} without confirmation: stdin is not a terminal`, ['re-run with --yes to confirm non-interactively']);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const abort = new AbortController();
  rl.on('SIGINT', () => abort.abort());
  rl.on('close', () => abort.abort());
  let answer = '';
  try {
    answer = await rl.question(`${question} [y/N] `, { signal: abort.signal });
  } catch {
    process.stderr.write('\n');
  } finally {
    rl.close();
  }
  if (!/^(y|yes)$/i.test(answer.trim())) throw new UsageError(`not confirmed: nothing was done (${what})`);
};
