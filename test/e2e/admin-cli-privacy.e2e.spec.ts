import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI_ROOT, buildCli as buildCliInto, runCli, type CliRun } from '../support/cli';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app';

/**
 * `lorestore player export` and `lorestore player erase`, run as their users
 * run them: the compiled CLI in a child process, talking HTTP to a real
 * service on a loopback port, stdin a pipe (not a terminal) throughout.
 */

const ROOT = CLI_ROOT;
/** A build of its own (inside the project, so node_modules resolve; .lorestore/ is gitignored). */
const OUT = path.join(ROOT, '.lorestore', 'test-build', `cli-privacy-${process.pid}`);
const MAIN = path.join(OUT, 'apps', 'admin-cli', 'src', 'main.js');
const buildCli = () => buildCliInto(OUT);


type Run = CliRun;

type Export = {
  playerId: string;
  exportedAt: string;
  erased: boolean;
  erasure: { erasedAt: string } | null;
  worlds: { worldId: string; profile: { displayName: string; email?: string } | null }[];
  actions: unknown[];
  memories: unknown[];
};

describe('lorestore player export / erase (e2e)', () => {
  let t: TestApp;
  let url: string;
  let dir: string;
  const tag = randomUUID().slice(0, 8);
  const world = `cli-gdpr-${tag}`;
  const player = randomUUID();
  const displayName = `Mira Oakenshield ${tag}`;
  const email = `mira.${tag}@example.test`;

  /** Runs the CLI with stdin closed at once; LORESTORE_* come only from `env`. */
  const cli = (args: string[], env: Record<string, string> = { LORESTORE_URL: url, LORESTORE_API_KEY: ADMIN_KEY }, timeoutMs = 60_000): Promise<Run> =>
    runCli(MAIN, args, env, timeoutMs);

  /** The export as the API answers it (not through the CLI). */
  const exportOf = async (playerId: string): Promise<Export> => {
    const r = await t.request({ method: 'GET', url: `/v1/admin/players/${playerId}/export`, key: ADMIN_KEY });
    expect(r.status).toBe(200);
    return r.body as Export;
  };

  const modeOf = (file: string) => statSync(file).mode & 0o777;
  const inDir = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    buildCli();
    dir = mkdtempSync(path.join(tmpdir(), 'lorestore-cli-privacy-'));
    t = await startTestApp('e2e_admin_cli_privacy');
    await t.app.listen(0, '127.0.0.1');
    const address = t.app.getHttpServer().address() as AddressInfo;
    url = `http://127.0.0.1:${address.port}`;
    // A player with a profile, written by the game (its key) as any game writes it.
    const r = await t.request({
      method: 'POST',
      url: `/v1/worlds/${world}/commands`,
      body: { commandId: randomUUID(), type: 'player.set_profile', payload: { playerId: player, displayName, email } },
    });
    expect(r.status).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(OUT, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('usage', () => {
    it.each([
      [['player'], ['erase', 'export']],
      [['player', 'erase'], ['--reason', '--yes', '--json']],
      [['player', 'export'], ['--output', '--force']],
    ])('prints the help of %p with its options and examples', async (command, options) => {
      const r = await cli([...command, '--help'], {});
      expect(r.code).toBe(0);
      for (const option of options) expect(r.stdout).toContain(option);
      expect(r.stdout).toContain('Examples:');
    });

    it('lists the player commands in the root help', async () => {
      const r = await cli(['--help'], {});
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^\s+player\s/m);
      expect(r.stdout).toContain('$ lorestore player export');
    });

    it('exits 2 for a player id that is not a UUID, before any request', async () => {
      for (const args of [
        ['player', 'erase', 'player-42', '--reason', 'x', '--yes'],
        ['player', 'export', 'player-42'],
      ]) {
        // No key and no server: the id is refused first.
        const r = await cli(args, {});
        expect(r.code).toBe(2);
        expect(r.stderr).toContain('expected a UUID, got "player-42"');
      }
    });

    it('exits 2 for an erasure without --reason', async () => {
      const r = await cli(['player', 'erase', player, '--yes']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--reason');
    });
  });

  it('exits 2 with the 404 for a player lorestore knows nothing about', async () => {
    const unknown = randomUUID();
    const erase = await cli(['player', 'erase', unknown, '--reason', 'test', '--yes']);
    expect(erase.code).toBe(2);
    expect(erase.stderr).toContain('(404)');
    expect(erase.stderr).toContain(`lorestore holds nothing about player ${unknown}`);
    const file = inDir('unknown.json');
    const exported = await cli(['player', 'export', unknown, '--output', file]);
    expect(exported.code).toBe(2);
    expect(exported.stderr).toContain('(404)');
    expect(() => statSync(file)).toThrow(); // no file left behind
  });

  it('exports to a file created with mode 0600, holding the profile', async () => {
    const file = inDir('export.json');
    const r = await cli(['player', 'export', player, '--output', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`exported player ${player} to ${file}`);
    expect(modeOf(file)).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(displayName);
    const doc = JSON.parse(text) as Export;
    expect(doc).toMatchObject({ playerId: player, erased: false, erasure: null });
    expect(doc.worlds).toEqual([expect.objectContaining({ worldId: world, profile: expect.objectContaining({ displayName, email }) })]);
  });

  it('refuses to overwrite an existing file without --force, and replaces it (mode 0600) with it', async () => {
    const file = inDir('existing.json');
    writeFileSync(file, 'keep me');
    chmodSync(file, 0o644);
    const refused = await cli(['player', 'export', player, '--output', file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('refusing to overwrite');
    expect(refused.stderr).toContain('--force');
    expect(readFileSync(file, 'utf8')).toBe('keep me');

    const forced = await cli(['player', 'export', player, '--output', file, '--force']);
    expect(forced.code).toBe(0);
    expect(modeOf(file)).toBe(0o600);
    expect((JSON.parse(readFileSync(file, 'utf8')) as Export).playerId).toBe(player);
  });

  it('exports to stdout', async () => {
    const r = await cli(['player', 'export', player]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Export;
    expect(doc).toMatchObject({ playerId: player, erased: false });
    expect(doc.worlds[0]!.profile).toMatchObject({ displayName, email });
  });

  it('refuses to erase without --yes when stdin is not a terminal, and erases nothing', async () => {
    const r = await cli(['player', 'erase', player, '--reason', 'erasure request']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('stdin is not a terminal');
    expect(r.stderr).toContain('--yes');
    const doc = await exportOf(player);
    expect(doc.erased).toBe(false);
    expect(doc.worlds[0]!.profile).toMatchObject({ displayName });
  });

  it('erases with --yes; erasing again answers the first erasure', async () => {
    const r = await cli(['player', 'erase', player, '--reason', 'erasure request', '--yes']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`erased player ${player}`);
    const erasedAt = /^erasedAt\s+(\S+)$/m.exec(r.stdout)?.[1];
    expect(erasedAt).toBeDefined();

    const doc = await exportOf(player);
    expect(doc.erased).toBe(true);
    expect(doc.erasure).toMatchObject({ erasedAt });
    expect(JSON.stringify(doc)).not.toContain(displayName);
    expect(JSON.stringify(doc)).not.toContain(email);

    const again = await cli(['player', 'erase', player, '--reason', 'erasure request', '--yes', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ playerId: player, erasedAt, reason: 'erasure request' });

    // Another reason: the server still answers the first erasure, and the CLI says so.
    const other = await cli(['player', 'erase', player, '--reason', 'a second request', '--yes']);
    expect(other.code).toBe(0);
    expect(other.stdout).toContain('had been erased already');
    expect(other.stdout).toMatch(new RegExp(`^erasedAt\\s+${erasedAt!.replace(/[.]/g, '\\.')}$`, 'm'));

    const exported = await cli(['player', 'export', player]);
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ playerId: player, erased: true });
    expect(exported.stdout).not.toContain(displayName);
  });
});
