/** Where the CLI writes: results on stdout, errors, prompts and notes on stderr. */
export const out = (text = ''): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};

export const err = (text = ''): void => {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
};

export const stdoutIsTTY = (): boolean => Boolean(process.stdout.isTTY);
export const stdinIsTTY = (): boolean => Boolean(process.stdin.isTTY);

/** Pretty JSON for humans, raw bodies for `--json`. */
export const outJson = (value: unknown): void => out(JSON.stringify(value, null, 2));
