import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { CLI_ROOT, buildCli as buildCliInto, runCli, type CliRun } from '../support/cli';
import { ADMIN_KEY, GAME_KEY, startTestApp, type TestApp } from '../support/app';

/**
 * The `lorestore` admin CLI, run as its users run it: the compiled
 * dist/apps/admin-cli/src/main.js in a child process, talking HTTP to a real
 * service on a loopback port. stdin is a pipe (not a terminal) throughout.
 */

const ROOT = CLI_ROOT;
/** A build of its own (inside the project, so node_modules resolve; .lorestore/ is gitignored): `npm run build` elsewhere empties dist/. */
const OUT = path.join(ROOT, '.lorestore', 'test-build', `cli-${process.pid}`);
const MAIN = path.join(OUT, 'apps', 'admin-cli', 'src', 'main.js');
const buildCli = () => buildCliInto(OUT);


type Run = CliRun;

describe('lorestore admin CLI (e2e)', () => {
  let t: TestApp;
  let url: string;
  const world = `cli-${randomUUID().slice(0, 8)}`;

  /** Runs the CLI with stdin closed at once; LORESTORE_* come only from `env`. */
  const cli = (args: string[], env: Record<string, string> = { LORESTORE_URL: url, LORESTORE_API_KEY: ADMIN_KEY }, timeoutMs = 60_000): Promise<Run> =>
    runCli(MAIN, args, env, timeoutMs);

  const send = async (type: string, payload: unknown, extra: Record<string, unknown> = {}) => {
    const r = await t.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload, ...extra } });
    expect(r.status).toBe(200);
    return r.body as { streamId: string; revision: number; position: number };
  };

  const eventCount = async (streamId: string) => {
    const r = await t.request({ method: 'GET', url: `/v1/worlds/${world}/streams/${streamId}/events?limit=1000` });
    expect(r.status).toBe(200);
    return (r.body.events as unknown[]).length;
  };

  const entityAt = (entityId: string, minPosition: number) =>
    t.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${entityId}?minPosition=${minPosition}` });

  /** An NPC spawned with hp 10, then set to hp 3: revision 1. */
  const woundedNpc = async (extra: Record<string, unknown> = {}) => {
    const entityId = randomUUID();
    await send('entity.spawn', { entityId, kind: 'npc', attributes: { hp: 10 } }, extra);
    const updated = await send('entity.update', { entityId, set: { hp: 3 }, unset: [] }, extra);
    return { entityId, streamId: `entity-${world}-${entityId}`, position: updated.position };
  };

  const operationIdIn = (text: string) => /operationId\s+([0-9a-f-]{36})/.exec(text)?.[1];
  const positionIn = (text: string) => Number(/^position\s+(\d+)/m.exec(text)?.[1]);

  beforeAll(async () => {
    buildCli();
    t = await startTestApp('e2e_admin_cli');
    await t.app.listen(0, '127.0.0.1');
    const address = t.app.getHttpServer().address() as AddressInfo;
    url = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await t?.close();
    rmSync(OUT, { recursive: true, force: true });
  });

  describe('usage', () => {
    const helps: [string[], string[]][] = [
      [['state-at'], ['--revision', '--position', '--time', '--json']],
      [['state-at-world'], ['--position', '--time', '--limit', '--all']],
      [['rollback'], ['stream', 'world', 'actor']],
      [['rollback', 'stream'], ['--to-revision', '--reason', '--yes', '--operation-id', '--dry-run']],
      [['rollback', 'world'], ['--to-position', '--to-time', '--reason', '--yes']],
      [['rollback', 'actor'], ['--since', '--reason', '--yes']],
      [['restore'], ['--reason', '--force', '--yes']],
      [['rollbacks'], ['--limit', '--all']],
      [['rebuild'], ['--reason', '--no-wait']],
      [['job'], ['--watch']],
      [['projections'], ['--json']],
    ];

    it('prints the root help with every command, the environment and the exit codes, without a key', async () => {
      const r = await cli(['--help'], {});
      expect(r.code).toBe(0);
      for (const word of ['state-at', 'state-at-world', 'rollback', 'restore', 'rollbacks', 'rebuild', 'job', 'projections', 'LORESTORE_URL', 'LORESTORE_API_KEY', 'Exit codes']) {
        expect(r.stdout).toContain(word);
      }
    });

    it.each(helps)('prints the help of %p with its options and examples', async (command, options) => {
      const r = await cli([...command, '--help'], {});
      expect(r.code).toBe(0);
      for (const option of options) expect(r.stdout).toContain(option);
      expect(r.stdout).toContain('Examples:');
    });

    it('ends quietly with 0 when its output is piped into something that closed (head), run directly or as the bin shim runs it', async () => {
      // The bin shim (bin/lorestore.js) requires the compiled main and calls runAsProcess; `node main.js` runs it as the main module.
      const entries = [[MAIN, '--help'], ['-e', `require(${JSON.stringify(MAIN)}).runAsProcess([process.execPath, 'lorestore', '--help'])`]];
      for (const args of entries) {
        const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.destroy(); // the reader is gone before the CLI writes a byte
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      }
    });

    it('exits 2 on commander usage errors: unknown command, bad option value, missing required option', async () => {
      const unknown = await cli(['frobnicate']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("unknown command 'frobnicate'");
      const badValue = await cli(['state-at', world, `world-${world}`, '--revision', 'soon']);
      expect(badValue.code).toBe(2);
      expect(badValue.stderr).toContain('--revision');
      const missing = await cli(['rollback', 'stream', world, `world-${world}`, '--to-revision', '0']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('--reason');
    });

    it('exits 2 with a clear message when no API key is set', async () => {
      const r = await cli(['projections'], { LORESTORE_URL: url });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('no API key: set LORESTORE_API_KEY');
    });

    it('exits 2 and says so for a game key, and for an unknown key', async () => {
      const game = await cli(['projections'], { LORESTORE_URL: url, LORESTORE_API_KEY: GAME_KEY });
      expect(game.code).toBe(2);
      expect(game.stderr).toContain('error: Forbidden (403)');
      expect(game.stderr).toContain('not an admin key');
      const unknown = await cli(['projections', '--url', url, '--api-key', 'nobody-knows-me'], {});
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('check LORESTORE_API_KEY');
    });

    it('exits 1 with "cannot reach" when nothing listens at the URL', async () => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const r = await cli(['projections'], { LORESTORE_URL: `http://127.0.0.1:${port}`, LORESTORE_API_KEY: ADMIN_KEY });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot reach http://127.0.0.1:${port}`);
    });
  });

  it('lists the projections as a table', async () => {
    const r = await cli(['projections']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^name\s+checkpoint\s+lag events\s+lag ms\s+status\s+eventsProcessed$/m);
    expect(r.stdout).toMatch(/^entities\s/m);
  });

  it('prints a stream at an earlier revision, and the raw body with --json', async () => {
    const { streamId } = await woundedNpc();
    const r = await cli(['state-at', world, streamId, '--revision', '0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^revision\s+0$/m);
    expect(r.stdout).toMatch(/^eventsFolded\s+1$/m);
    expect(r.stdout).toContain('"hp": 10');
    const json = await cli(['state-at', world, streamId, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ streamId, revision: 1, state: expect.anything() });
    const beyond = await cli(['state-at', world, streamId, '--revision', '7']);
    expect(beyond.code).toBe(2);
    expect(beyond.stderr).toContain('(422)');
  });

  it('prints a whole world at a position', async () => {
    const { streamId, position } = await woundedNpc();
    const r = await cli(['state-at-world', world, '--position', String(position), '--all']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(streamId);
    const none = await cli(['state-at-world', world]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--position');
  });

  it('refuses to roll back without --yes when stdin is not a terminal, and appends nothing', async () => {
    const { streamId } = await woundedNpc();
    const r = await cli(['rollback', 'stream', world, streamId, '--to-revision', '0', '--reason', 'test']);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('1 event on 1 stream');
    expect(r.stderr).toContain('stdin is not a terminal');
    expect(r.stderr).toContain('--yes');
    expect(await eventCount(streamId)).toBe(2);
  });

  it('rolls a stream back, is idempotent under --operation-id, lists it in the audit trail, and restores it', async () => {
    const { entityId, streamId } = await woundedNpc();
    const rolled = await cli(['rollback', 'stream', world, streamId, '--to-revision', '0', '--reason', 'test', '--yes']);
    expect(rolled.code).toBe(0);
    expect(rolled.stdout).toContain('rolled back 1 event on 1 stream');
    const operationId = operationIdIn(rolled.stdout);
    expect(operationId).toBeDefined();
    const position = positionIn(rolled.stdout);
    expect(position).toBeGreaterThan(0);
    const read = await entityAt(entityId, position);
    expect(read.status).toBe(200);
    expect(read.body.attributes).toEqual({ hp: 10 });
    expect(await eventCount(streamId)).toBe(3);

    // The same operation id again: the first result, nothing appended.
    const again = await cli(['rollback', 'stream', world, streamId, '--to-revision', '0', '--reason', 'test', '--yes', '--operation-id', operationId!]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('carried out already');
    expect(await eventCount(streamId)).toBe(3);

    const audit = await cli(['rollbacks', world]);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/^createdAt\s+operationId\s+kind\s+actor\s+scope\s+streams\s+reason\s+restoredBy$/m);
    expect(audit.stdout).toContain(operationId);

    const restored = await cli(['restore', operationId!, '--yes']);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain('restored 1 stream');
    const after = await entityAt(entityId, positionIn(restored.stdout));
    expect(after.body.attributes).toEqual({ hp: 3 });
    const twice = await cli(['restore', operationId!, '--yes']);
    expect(twice.code).toBe(0);
    expect(twice.stdout).toContain('restored already');
  });

  it('rolls back with --json: the plan on stderr, the operation as JSON on stdout', async () => {
    const { streamId } = await woundedNpc();
    const r = await cli(['rollback', 'stream', world, streamId, '--to-revision', '-1', '--reason', 'json test', '--yes', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('2 events on 1 stream');
    const op = JSON.parse(r.stdout);
    expect(op).toMatchObject({ kind: 'rollback', reason: 'json test', streams: [{ streamId, fromRevision: 1, toRevision: -1, events: 2 }] });
  });

  it('refuses a restore over later writes with the streams that changed, and says to use --force', async () => {
    const { entityId, streamId } = await woundedNpc();
    const rolled = await cli(['rollback', 'stream', world, streamId, '--to-revision', '0', '--reason', 'test', '--yes']);
    expect(rolled.code).toBe(0);
    const operationId = operationIdIn(rolled.stdout)!;
    await send('entity.update', { entityId, set: { hp: 7 }, unset: [] });
    const refused = await cli(['restore', operationId, '--yes']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('(409)');
    expect(refused.stderr).toContain(streamId);
    expect(refused.stderr).toContain('use --force to restore anyway');
    const forced = await cli(['restore', operationId, '--yes', '--force']);
    expect(forced.code).toBe(0);
    expect((await entityAt(entityId, positionIn(forced.stdout))).body.attributes).toEqual({ hp: 3 });
  });

  it("shows an actor rollback's collateral: other actors' later events on the same streams", async () => {
    const since = new Date(Date.now() - 60_000).toISOString();
    const actor = `cheater-${randomUUID().slice(0, 8)}`;
    const { entityId, streamId } = await woundedNpc({ actorId: actor });
    await send('entity.update', { entityId, set: { healed: true }, unset: [] }, { actorId: 'medic' });
    const r = await cli(['rollback', 'actor', world, actor, '--since', since, '--reason', 'exploit', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(streamId);
    expect(r.stdout).toContain("also undone: other actors' later events on these streams");
    expect(r.stdout).toMatch(/medic\s+1\s+2/);
    expect(await eventCount(streamId)).toBe(3);
  });

  it('exits 2 for a world rollback beyond the head of the log', async () => {
    const r = await cli(['rollback', 'world', world, '--to-position', '999999999', '--reason', 'x', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error: .*\(422\): .*beyond the head/);
  });

  it('exits 2 for an unknown projection', async () => {
    const r = await cli(['rebuild', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown projection');
  });

  it('rebuilds a projection to the end, with progress lines off a terminal and a summary; the entity is still readable', async () => {
    const { entityId, position } = await woundedNpc();
    const r = await cli(['rebuild', 'entities', '--reason', 'cli test'], undefined, 30_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/rebuild of entities started: job [0-9a-f-]{36}/);
    expect(r.stdout).toMatch(/^entities: (pending|running|switching|succeeded)/m);
    const summary = /rebuild of entities succeeded: (\d+) events? in .+, mean [\d,.]+ events\/s/.exec(r.stdout);
    expect(summary).not.toBeNull();
    expect(Number(summary![1])).toBeGreaterThanOrEqual(2);
    const jobId = /job ([0-9a-f-]{36})/.exec(r.stdout)![1]!;
    const job = await cli(['job', jobId]);
    expect(job.code).toBe(0);
    expect(job.stdout).toMatch(/^state\s+succeeded$/m);
    const read = await entityAt(entityId, position);
    expect(read.status).toBe(200);
    expect(read.body.attributes).toEqual({ hp: 3 });
  }, 60_000);

  it('starts a rebuild with --no-wait, and refuses a second one of the same projection naming the running job', async () => {
    // A small projection's rebuild may finish before a second CLI process is up on a loaded machine:
    // then the second one starts (and waits for) its own job; try again, up to three times.
    let jobId: string | undefined;
    let again: Run = { code: -1, stdout: '', stderr: '' };
    for (let attempt = 0; attempt < 3 && again.code !== 2; attempt++) {
      const started = await cli(['rebuild', 'narrative_state', '--no-wait']);
      expect(started.code).toBe(0);
      jobId = /job ([0-9a-f-]{36})/.exec(started.stdout)?.[1];
      expect(jobId).toBeDefined();
      expect(started.stdout).toContain(`lorestore job ${jobId} --watch`);
      again = await cli(['rebuild', 'narrative_state']);
      if (again.code !== 2) expect(again.code).toBe(0); // the first had finished: the second ran to its end
    }
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('(409)');
    expect(again.stderr).toContain(`follow it with: lorestore job ${jobId} --watch`);
    const job = await cli(['job', jobId!, '--json']);
    expect(job.code).toBe(0);
    expect(JSON.parse(job.stdout)).toMatchObject({ jobId, projection: 'narrative_state' });
  });
});
