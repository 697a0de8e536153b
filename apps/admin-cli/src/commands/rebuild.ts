import type { Command } from 'commander';
import { clientFor } from '../config';
import { isApiError } from '../errors';
import { seg } from '../http';
import { out, outJson } from '../io';
import { failIfFailed, watchJob } from '../job-watch';
import { nonEmpty } from '../parse';
import type { Job } from '../types';
import { jobSummary, jobView } from '../views';

type Options = { reason?: string; wait: boolean; json?: boolean };

export const registerRebuild = (program: Command): void => {
  program
    .command('rebuild')
    .description('Rebuild a projection blue-green from the start of the log, and follow the job to its end')
    .argument('<projection>', 'the projection name, as `lorestore projections` lists them (e.g. entities)')
    .option('--reason <text>', 'why (recorded on the job)', nonEmpty)
    .option('--no-wait', 'start the job and return at once (follow it with `lorestore job <jobId> --watch`)')
    .option('--json', 'print the job as JSON (the final state, or the started job with --no-wait); no progress bar')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore rebuild entities --reason "fixed the location index"
  $ lorestore rebuild players --no-wait

The new tables and hot-state keys are built while the live ones keep serving; readers switch
over in one transaction once the rebuild has caught up. The job is polled every 500 ms: a
progress bar on a terminal, a plain line every few seconds otherwise. Exit code 1 if the job
fails. Ctrl-C stops watching, not the job.`,
    )
    .action(async (projection: string, options: Options, command: Command) => {
      const client = clientFor(command);
      let job: Job;
      try {
        job = await client.post<Job>(`/v1/admin/projections/${seg(projection)}/rebuild`, options.reason ? { reason: options.reason } : {});
      } catch (error) {
        if (isApiError(error, 'rebuild-in-progress')) {
          const jobId = String(error.problem.jobId ?? 'unknown');
          error.hints.push(`follow it with: lorestore job ${jobId} --watch`);
        }
        throw error;
      }
      if (!options.wait) {
        if (options.json) return outJson(job);
        out(`rebuild of ${job.projection} started: job ${job.jobId}`);
        out(jobView(job));
        out(`\nfollow it with: lorestore job ${job.jobId} --watch`);
        return;
      }
      if (!options.json) out(`rebuild of ${job.projection} started: job ${job.jobId}`);
      const final = await watchJob(client, job, { quiet: options.json });
      if (options.json) outJson(final);
      else out(jobSummary(final));
      failIfFailed(final);
    });
};
