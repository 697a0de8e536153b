import type { Command } from 'commander';
import { clientFor } from '../config';
import { out, outJson } from '../io';
import { failIfFailed, getJob, watchJob } from '../job-watch';
import { uuid } from '../parse';
import { isFinished } from '../types';
import { jobSummary, jobView } from '../views';

type Options = { watch?: boolean; json?: boolean };

export const registerJob = (program: Command): void => {
  program
    .command('job')
    .description('Show a rebuild job (state, progress, rate, ETA), or follow it to its end with --watch')
    .argument('<jobId>', 'the job id printed by `lorestore rebuild`', uuid)
    .option('-w, --watch', 'poll every 500 ms with a progress bar until the job succeeds or fails')
    .option('--json', 'print the raw JSON answer (with --watch: the final state, no progress bar)')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore job 0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f
  $ lorestore job 0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f --watch

Exit code 1 when the job has failed.`,
    )
    .action(async (jobId: string, options: Options, command: Command) => {
      const client = clientFor(command);
      let job = await getJob(client, jobId);
      if (options.watch && !isFinished(job)) {
        job = await watchJob(client, job, { quiet: options.json });
        if (options.json) outJson(job);
        else out(`${jobView(job)}\n\n${jobSummary(job)}`);
      } else if (options.json) {
        outJson(job);
      } else {
        out(jobView(job));
        if (isFinished(job)) out(`\n${jobSummary(job)}`);
      }
      failIfFailed(job);
    });
};
