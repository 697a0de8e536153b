import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';

export type LoadOptions = {
  url: string;
  worldId: string;
  apiKey: string;
  connections: number;
  seconds: number;
  playerIds: string[];
};

export type LoadResult = {
  requests: number;
  requestsPerSecond: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  latency: { meanMs: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number };
  durationSeconds: number;
  /** The first few non-2xx bodies, to tell a bug from overload. */
  non2xxSamples: string[];
};

/**
 * POST /v1/worlds/{w}/commands with autocannon: a `player.record_action` per
 * request, a fresh commandId each time (setupRequest runs per request), players
 * drawn round-robin from a fixed pool.
 */
export const driveCommands = (options: LoadOptions): Promise<LoadResult> => {
  let next = 0;
  const non2xxSamples: string[] = [];
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.seconds,
        pipelining: 1,
        timeout: 10,
        requests: [
          {
            method: 'POST',
            path: `/v1/worlds/${options.worldId}/commands`,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${options.apiKey}` },
            setupRequest: (request) => ({
              ...request,
              body: JSON.stringify({
                commandId: randomUUID(),
                type: 'player.record_action',
                payload: { playerId: options.playerIds[next++ % options.playerIds.length], action: 'jump', context: { x: 1 } },
              }),
            }),
            onResponse: (status, body) => {
              if ((status < 200 || status > 299) && non2xxSamples.length < 5) non2xxSamples.push(`${status} ${body.slice(0, 300)}`);
            },
          },
        ],
      },
      (error, result) => {
        if (error) return reject(error instanceof Error ? error : new Error(String(error)));
        const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count ?? 0]));
        const requests = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
        resolve({
          requests,
          requestsPerSecond: Math.round(requests / result.duration),
          ok2xx: result['2xx'],
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCodes,
          latency: {
            meanMs: result.latency.mean,
            p50Ms: result.latency.p50,
            p90Ms: result.latency.p90,
            p99Ms: result.latency.p99,
            maxMs: result.latency.max,
          },
          durationSeconds: result.duration,
          non2xxSamples,
        });
      },
    );
  });
};
