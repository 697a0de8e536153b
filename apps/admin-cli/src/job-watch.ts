import { ApiError, isTransient, NetworkError, OperationFailedError } from './errors';
import type { ApiClient } from './http';
import { seg } from './http';
import { err } from './io';
import { progressView } from './progress';
import { isFinished, type Job } from './types';

export const POLL_MS = 500;
/** Consecutive failed polls (network, 5xx) tolerated before giving up: the job runs on regardless. */
const MAX_POLL_FAILURES = 10;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const getJob = (client: ApiClient, jobId: string): Promise<Job> => client.get<Job>(`/v1/admin/jobs/${seg(jobId)}`);

/**
 * Polls a job every POLL_MS until it succeeds or fails, showing its progress.
 * Ctrl-C stops watching (the job keeps running on the server) with exit 130.
 */
export const watchJob = async (client: ApiClient, first: Job, options: { quiet?: boolean } = {}): Promise<Job> => {
  const view = progressView(options);
  const followUp = `the job keeps running on the server; follow it with: lorestore job ${first.jobId} --watch`;
  const onSigint = () => {
    view.stop();
    err(`\nstopped watching; ${followUp}`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  let job = first;
  let failures = 0;
  try {
    view.update(job);
    while (!isFinished(job)) {
      await sleep(POLL_MS);
      try {
        job = await getJob(client, job.jobId);
        failures = 0;
      } catch (error) {
        if (!isTransient(error) || ++failures >= MAX_POLL_FAILURES) {
          view.stop();
          if (error instanceof ApiError || error instanceof NetworkError) error.hints.push(followUp);
          throw error;
        }
        continue;
      }
      view.update(job);
    }
  } finally {
    view.stop();
    process.removeListener('SIGINT', onSigint);
  }
  return job;
};

/** A failed job is exit 1 with the job's own error. */
export const failIfFailed = (job: Job): void => {
  if (job.state === 'failed') throw new OperationFailedError(`rebuild of ${job.projection} failed: ${job.error ?? 'no error recorded'}`, [`job ${job.jobId}`]);
};
