import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Pool } from 'pg';
import { COMMAND_TYPES } from '../../apps/state-api/src/commands/command.schemas';
import { PG_POOL } from '../../apps/state-api/src/persistence/tokens';
import { ADMIN_KEY, GAME_KEY, startTestApp, type TestApp } from '../support/app';
import {
  anyJson,
  badAuthorization,
  consistencyToken,
  deepJson,
  edgeTime,
  describeExchange,
  summary,
  extraHeaders,
  hostileSegment,
  invalidFor,
  mutate,
  notJson,
  pct,
  queryString,
  storeBreaking,
  toJson,
  violations,
  wrongContentType,
  type FuzzRequest,
  type FuzzResponse,
  type Mutated,
  type Template,
} from '../support/http-fuzz';

/**
 * DESIGN.md invariant 7, by property: random and malformed requests over every
 * route, each one invalid by construction (bad credentials, bad bytes, one
 * field wrong, hostile ids, a conflict the log refuses…). Every answer must be
 * a 4xx problem+json (a 504 only after a consistency wait the request asked
 * for), a 400 must name the bad field, and the log, the read models and the
 * audit trail must be exactly as they were.
 */
const BODY_LIMIT = 16_384;
/** FUZZ_SCALE=10 for a long hunt; the default keeps the file well under a minute on two cores. */
const runs = (n: number) => Math.max(1, Math.round(n * Number(process.env.FUZZ_SCALE ?? 1)));
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const SLUG = /^[A-Za-z0-9_.-]{1,64}$/;
const STREAM = /^[a-z]+-[A-Za-z0-9_.-]{1,64}(-[0-9a-fA-F-]{36})?$/;

type Param = { name: string; valid: string; pattern: RegExp | null };
/** `unserved`: in the contract (API.md) but not (yet) served: a 404 is right too. */
type Route = { name?: string; method: 'GET' | 'POST' | 'DELETE'; path: string; params: Param[]; admin: boolean; query: string[]; template?: Template; unserved?: boolean };

describe('HTTP API fuzz (e2e)', () => {
  let t: TestApp;
  const world = `fuzz-${randomUUID().slice(0, 8)}`;
  const [npcId, itemId, locationId, playerId, factionA, factionB] = Array.from({ length: 6 }, () => randomUUID());
  const streams = { npc: `entity-${world}-${npcId}`, world: `world-${world}`, narrative: `narrative-${world}`, player: `player-${world}-${playerId}` };
  let memoryId: string;
  let npcRevision: number;
  let spawnCommandId: string;
  let projections: string[];
  let routes: Route[];
  let before: unknown;

  const inject = async (req: FuzzRequest): Promise<FuzzResponse> => {
    const res = await t.app.getHttpAdapter().getInstance().inject({
      method: req.method as 'GET',
      url: req.url,
      headers: req.headers,
      ...(req.payload !== undefined ? { payload: req.payload } : {}),
    });
    return { statusCode: res.statusCode, headers: res.headers, body: res.body };
  };

  /** Sends one fuzzed request and fails, with the exchange, on any broken rule. */
  const exchange = async (req: FuzzRequest): Promise<FuzzResponse> => {
    let res: FuzzResponse;
    try {
      res = await inject(req);
    } catch (error) {
      throw new Error(describeExchange(req, null, [`inject threw: ${String(error)}`]), { cause: error });
    }
    const problems = violations(req, res);
    if (problems.length > 0) throw new Error(describeExchange(req, res, problems));
    return res;
  };

  const ok = async (url: string, body: unknown) => {
    const res = await t.request({ method: 'POST', url, body });
    expect({ url, status: res.status, body: res.body }).toMatchObject({ status: 200 });
    return res.body;
  };
  const command = (type: string, payload: unknown, commandId: string = randomUUID()) => ok(`/v1/worlds/${world}/commands`, { commandId, type, payload });

  /** What fuzzing must not change: the log, the idempotency and audit tables, and the read models as a client sees them. */
  const fingerprint = async () => {
    const pool = t.app.get<Pool>(PG_POOL);
    const { rows } = await pool.query(`
      SELECT (SELECT count(*) FROM events)::int AS events, (SELECT coalesce(max(position), 0) FROM events)::text AS head,
             (SELECT count(*) FROM streams)::int AS streams, (SELECT count(*) FROM commands)::int AS commands,
             (SELECT count(*) FROM rollback_operations)::int AS rollbacks, (SELECT count(*) FROM projection_jobs)::int AS jobs,
             (SELECT count(*) FROM npc_memories)::int AS memories,
             (SELECT count(*) || ' ' || count(erased_at) FROM player_keys) AS player_keys,
             (SELECT count(*) || ' ' || coalesce(max(last_accessed_at)::text, '-') FROM npc_memory_access) AS retrievals`);
    const reads: Record<string, unknown> = {};
    for (const url of [
      `/v1/worlds/${world}/entities/${npcId}`,
      `/v1/worlds/${world}/entities/${itemId}`,
      `/v1/worlds/${world}/entities?limit=500`,
      `/v1/worlds/${world}/state`,
      `/v1/worlds/${world}/narrative`,
      `/v1/worlds/${world}/players/${playerId}`,
      `/v1/worlds/${world}/players/${playerId}/history`,
      `/v1/worlds/${world}/streams/${streams.npc}/events`,
      `/v1/admin/worlds/${world}/rollbacks`,
      `/v1/admin/players/${playerId}/export`,
    ]) {
      const res = await t.request({ method: 'GET', url, key: ADMIN_KEY });
      // An export says when it was made: everything else in it must not change.
      const body = url.endsWith('/export') && res.status === 200 ? { ...res.body, exportedAt: '<time>' } : res.body;
      reads[url] = { status: res.status, body };
    }
    return { tables: rows[0], esdbLog: t.esdb?.log().length ?? null, reads };
  };

  beforeAll(async () => {
    // Short waits: a request that asks to wait for a far position answers its 504 quickly (and, in EventStoreDB mode, an unmirrored command its 200).
    t = await startTestApp('e2e_fuzz', { BODY_LIMIT_BYTES: String(BODY_LIMIT), CONSISTENCY_WAIT_MS: '25', MIRROR_WAIT_MS: '300' });
    spawnCommandId = randomUUID();
    await command('entity.spawn', { entityId: npcId, kind: 'npc', attributes: { name: 'Mira', mood: 'calm' } }, spawnCommandId);
    await command('entity.spawn', { entityId: itemId, kind: 'item', attributes: {} });
    await command('entity.spawn', { entityId: locationId, kind: 'location', attributes: { name: 'Inn' } });
    await command('entity.move', { entityId: npcId, locationId });
    await command('world.advance_time', { ticks: 3 });
    await command('world.set_weather', { weather: 'rain', regionId: 'north' });
    await command('world.set_faction_standing', { factionId: factionA, otherFactionId: factionB, standing: -20 });
    await command('player.set_profile', { playerId, displayName: 'Ann', email: 'ann@example.com', locale: 'en-GB' });
    await command('player.record_action', { playerId, action: 'jump', context: { where: 'inn' } });
    await command('player.change_relationship', { playerId, targetId: npcId, delta: 5 });
    await command('narrative.advance_plot', { plotId: 'main', stage: 'intro' });
    await command('narrative.set_flag', { flag: 'bridge', value: true });
    const memory = await ok(`/v1/worlds/${world}/npcs/${npcId}/memories`, { text: 'met a stranger', embedding: [1, 0], subjects: [playerId] });
    memoryId = memory.memoryId;
    npcRevision = memory.revision;
    // Every read model (and the memory index) caught up with the seed, so the fingerprint is stable: each
    // checkpoint at the last seed command's position (a lag of 0 alone is not enough: the gap-safe feed it is
    // counted on stops short of the seed while another suite's older transaction is open on the server).
    for (const deadline = Date.now() + 20_000; ; ) {
      const res = await t.request({ method: 'GET', url: `/v1/admin/projections`, key: ADMIN_KEY });
      const lagging = (res.body as { name: string; checkpoint: number | null; lag: { events: number } }[]).filter(
        (p) => p.lag.events > 0 || (p.name !== 'esdb_mirror' && (p.checkpoint ?? 0) < memory.position),
      );
      if (lagging.length === 0) {
        projections = (res.body as { name: string }[]).map((p) => p.name);
        break;
      }
      if (Date.now() > deadline) throw new Error(`read models did not catch up: ${JSON.stringify(lagging)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    routes = buildRoutes();
    before = await fingerprint();
  }, 60_000);
  afterAll(async () => t?.close());

  // ------------------------------------------------------------------ routes and valid bodies

  const cmdId = randomUUID();
  /** One valid payload per command type: the fuzzer only ever sends them with something broken. */
  const payloadTemplates = (): Template[] => {
    const t_ = (type: string, body: Record<string, unknown>, fields: Template['fields'], required: string[]): Template => ({ name: type, body, fields, required, at: 'payload' });
    const uuid = { kind: 'uuid' } as const;
    return [
      t_('entity.spawn', { entityId: randomUUID(), kind: 'npc', attributes: { a: 1 }, locationId }, { entityId: uuid, kind: { kind: 'text', max: 64 }, attributes: { kind: 'object' }, locationId: uuid }, ['entityId', 'kind']),
      t_('entity.update', { entityId: npcId, set: { mood: 'angry' }, unset: ['name'] }, { entityId: uuid, set: { kind: 'object' }, unset: { kind: 'strings' } }, ['entityId']),
      t_('entity.move', { entityId: itemId, locationId }, { entityId: uuid, locationId: uuid }, ['entityId', 'locationId']),
      t_('entity.despawn', { entityId: itemId, reason: 'lost' }, { entityId: uuid, reason: { kind: 'text', max: 500 } }, ['entityId']),
      t_('world.advance_time', { ticks: 5 }, { ticks: { kind: 'int', min: 1, max: 1_000_000_000 } }, ['ticks']),
      t_('world.set_weather', { weather: 'snow', regionId: 'south' }, { weather: { kind: 'slug' }, regionId: { kind: 'slug' } }, ['weather']),
      t_('world.set_faction_standing', { factionId: factionA, otherFactionId: factionB, standing: 10 }, { factionId: uuid, otherFactionId: uuid, standing: { kind: 'int', min: -100, max: 100 } }, ['factionId', 'otherFactionId', 'standing']),
      t_('player.record_action', { playerId, action: 'wave', context: { x: 1 }, at: '2026-01-01T00:00:00Z' }, { playerId: uuid, action: { kind: 'text', max: 100 }, context: { kind: 'object' }, at: { kind: 'iso' } }, ['playerId', 'action']),
      t_('player.change_relationship', { playerId, targetId: npcId, delta: 3, reason: 'helped' }, { playerId: uuid, targetId: uuid, delta: { kind: 'int', min: -200, max: 200 }, reason: { kind: 'text', max: 500 } }, ['playerId', 'targetId', 'delta']),
      t_('player.set_profile', { playerId, displayName: 'Bob', email: 'bob@example.com', locale: 'en' }, { playerId: uuid, displayName: { kind: 'text', max: 100 }, email: { kind: 'email' }, locale: { kind: 'locale' } }, ['playerId', 'displayName']),
      t_('narrative.advance_plot', { plotId: 'main', stage: 'act2', choices: { sided: 'guild' } }, { plotId: { kind: 'slug' }, stage: { kind: 'text', max: 128 }, choices: { kind: 'object' } }, ['plotId', 'stage']),
      t_('narrative.set_flag', { flag: 'door', value: [1, { open: true }] }, { flag: { kind: 'slug' }, value: { kind: 'json' } }, ['flag', 'value']),
      t_('npc.record_memory', { npcId, text: 'hi', embedding: [0.5, 0.5], importance: 3, subjects: [playerId] }, { npcId: uuid, text: { kind: 'text', max: 4000 }, embedding: { kind: 'embedding' }, importance: { kind: 'int', min: 1, max: 10 }, subjects: { kind: 'uuids', max: 32 } }, ['npcId', 'text', 'embedding']),
      t_('npc.forget_memory', { npcId, memoryId }, { npcId: uuid, memoryId: uuid }, ['npcId', 'memoryId']),
    ];
  };
  const envelope = (type: string, payload: unknown): Record<string, unknown> => ({ commandId: cmdId, type, payload });
  const envelopeTemplate = (): Template => ({
    name: 'envelope',
    body: { commandId: cmdId, type: 'world.advance_time', expectedRevision: 'any', actorId: 'svc:fuzz', payload: { ticks: 1 } },
    fields: { commandId: { kind: 'uuid' }, type: { kind: 'commandType', known: COMMAND_TYPES }, expectedRevision: { kind: 'revisionOrName' }, actorId: { kind: 'actorId' }, payload: { kind: 'object' } },
    required: ['commandId', 'type', 'payload'],
    at: '',
  });
  const memoryTemplate = (): Template => ({
    name: 'memory',
    body: { text: 'fuzz memory', embedding: [0.5, 0.5], importance: 3, subjects: [playerId], commandId: cmdId },
    fields: { text: { kind: 'text', max: 4000 }, embedding: { kind: 'embedding' }, importance: { kind: 'int', min: 1, max: 10 }, subjects: { kind: 'uuids', max: 32 }, commandId: { kind: 'uuid' } },
    required: ['text', 'embedding'],
    at: '',
  });
  const searchTemplate = (): Template => ({
    name: 'search',
    body: { embedding: [1, 0], topK: 3, minScore: -1, weights: { relevance: 1, recency: 1, importance: 1 } },
    fields: { embedding: { kind: 'embedding' }, topK: { kind: 'int', min: 1, max: 100 }, minScore: { kind: 'number' }, minPosition: { kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER }, weights: { kind: 'weights' } },
    required: ['embedding'],
    at: '',
  });
  const revision = { kind: 'int', min: -1, max: Number.MAX_SAFE_INTEGER } as const;
  const reason = { kind: 'text', max: 500 } as const;
  const streamRollbackTemplate = (): Template => ({
    name: 'stream rollback',
    body: { toRevision: 0, reason: 'fuzz', dryRun: true, operationId: randomUUID(), expectedRevision: npcRevision },
    fields: { toRevision: revision, reason, dryRun: { kind: 'bool' }, operationId: { kind: 'uuid' }, expectedRevision: revision },
    required: ['toRevision', 'reason'],
    at: '',
  });
  const worldRollbackTemplates = (): Template[] => {
    const shared = { reason, dryRun: { kind: 'bool' }, operationId: { kind: 'uuid' } } as const;
    return [
      { name: 'world rollback', body: { toPosition: 1, reason: 'fuzz', dryRun: true }, fields: { toPosition: { kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER }, ...shared }, required: ['toPosition', 'reason'], at: '' },
      { name: 'world rollback by time', body: { toTime: '2026-01-01T00:00:00Z', reason: 'fuzz', dryRun: true }, fields: { toTime: { kind: 'pastIso' }, ...shared }, required: ['toTime', 'reason'], at: '' },
      { name: 'actor rollback', body: { actorId: playerId, since: '2026-01-01T00:00:00Z', reason: 'fuzz', dryRun: true }, fields: { actorId: { kind: 'actorId' }, since: { kind: 'pastIso' }, ...shared }, required: ['actorId', 'since', 'reason'], at: '' },
    ];
  };
  const optionalReason = (name: string, extra: Template['fields'] = {}): Template => ({ name, body: { reason: 'fuzz' }, fields: { reason, ...extra }, required: [], at: '' });

  const buildRoutes = (): Route[] => {
    const w: Param = { name: 'worldId', valid: world, pattern: SLUG };
    const u = (name: string, valid: string): Param => ({ name, valid, pattern: UUID });
    const s: Param = { name: 'streamId', valid: streams.npc, pattern: STREAM };
    const pit = ['atRevision', 'atPosition', 'asOf', 'minPosition'];
    const get = (path: string, params: Param[], query: string[] = pit, admin = false): Route => ({ method: 'GET', path, params, admin, query });
    const post = (name: string, path: string, params: Param[], template: Template, admin = false): Route => ({ name, method: 'POST', path, params, admin, query: [], template });
    return [
      post('commands', '/v1/worlds/{worldId}/commands', [w], envelopeTemplate()),
      post('memories', '/v1/worlds/{worldId}/npcs/{npcId}/memories', [w, u('npcId', npcId)], memoryTemplate()),
      post('search', '/v1/worlds/{worldId}/npcs/{npcId}/memories/search', [w, u('npcId', npcId)], searchTemplate()),
      { method: 'DELETE', path: '/v1/worlds/{worldId}/npcs/{npcId}/memories/{memoryId}', params: [w, u('npcId', npcId), u('memoryId', randomUUID())], admin: false, query: ['commandId', 'minPosition'] },
      get('/v1/worlds/{worldId}/entities/{entityId}', [w, u('entityId', npcId)]),
      get('/v1/worlds/{worldId}/entities', [w], [...pit, 'kind', 'locationId', 'updatedSince', 'limit', 'cursor']),
      get('/v1/worlds/{worldId}/state', [w]),
      get('/v1/worlds/{worldId}/narrative', [w]),
      get('/v1/worlds/{worldId}/players/{playerId}', [w, u('playerId', playerId)]),
      get('/v1/worlds/{worldId}/players/{playerId}/history', [w, u('playerId', playerId)], [...pit, 'from', 'to', 'limit', 'cursor']),
      get('/v1/worlds/{worldId}/streams/{streamId}/events', [w, s], [...pit, 'fromRevision', 'limit']),
      post('stream rollback', '/v1/admin/worlds/{worldId}/streams/{streamId}/rollback', [w, s], streamRollbackTemplate(), true),
      post('world rollback', '/v1/admin/worlds/{worldId}/rollback', [w], worldRollbackTemplates()[0]!, true),
      post('restore', '/v1/admin/rollbacks/{operationId}/restore', [u('operationId', randomUUID())], optionalReason('restore', { force: { kind: 'bool' } }), true),
      post('rebuild', '/v1/admin/projections/{name}/rebuild', [{ name: 'name', valid: 'no_such_projection', pattern: null }], optionalReason('rebuild'), true),
      get('/v1/admin/worlds/{worldId}/rollbacks', [w], ['limit', 'cursor'], true),
      get('/v1/admin/rollbacks/{operationId}', [u('operationId', randomUUID())], [], true),
      get('/v1/admin/worlds/{worldId}/streams/{streamId}/state', [w, s], ['atRevision', 'atPosition', 'asOf'], true),
      get('/v1/admin/worlds/{worldId}/state-at', [w], ['atPosition', 'asOf', 'limit', 'cursor'], true),
      get('/v1/admin/jobs/{jobId}', [u('jobId', randomUUID())], [], true),
      get('/v1/admin/projections', [], [], true),
      // The contract's privacy routes (API.md).
      post('erase', '/v1/admin/players/{playerId}/erase', [u('playerId', playerId)], { name: 'erase', body: { reason: 'fuzz' }, fields: { reason }, required: ['reason'], at: '' }, true),
      get('/v1/admin/players/{playerId}/export', [u('playerId', playerId)], [], true),
    ];
  };
  const OPEN = ['/health/live', '/health/ready', '/metrics', '/docs/json', '/docs/yaml'];

  const fill = (route: Route, values: Record<string, string> = {}) =>
    route.path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? pct(route.params.find((p) => p.name === name)!.valid));
  const json = { 'content-type': 'application/json' };
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
  const sized = (payload: string | Buffer, expect400: number[] = [400]) => (Buffer.byteLength(payload) > BODY_LIMIT ? [413] : expect400);

  // ------------------------------------------------------------------ request families

  const mutatedBody = (route: Route): fc.Arbitrary<Mutated> => {
    if (route.name === 'commands') {
      return fc.oneof(
        mutate(envelopeTemplate()),
        fc.constantFrom(...payloadTemplates()).chain((p) => mutate(p, (inner) => envelope(p.name, inner))),
      );
    }
    if (route.name === 'world rollback') return fc.constantFrom(...worldRollbackTemplates()).chain((tpl) => mutate(tpl));
    return mutate(route.template!);
  };

  /** One field of a body wrong, everything else valid: a 400 naming the field (413 if it grew past the limit). */
  const byName = (name: string) => routes.find((r) => r.name === name)!;
  const oneFieldWrong = fc
    .constantFrom('commands', 'memories', 'search', 'stream rollback', 'world rollback', 'restore', 'rebuild', 'erase')
    .chain((name) => fc.tuple(fc.constant(byName(name)), mutatedBody(byName(name)), fc.constantFrom(...projections), extraHeaders))
    .map(([route, m, projection, headers]): FuzzRequest => {
      const payload = toJson(m.body);
      // A rebuild of a real projection: its body is the only thing wrong.
      const url = fill(route, route.name === 'rebuild' ? { name: pct(projection) } : {});
      return { family: `one field wrong (${route.name})`, method: 'POST', url, headers: { ...headers, ...json, ...bearer(route.admin ? ADMIN_KEY : GAME_KEY) }, payload, field: m.field, unknownKey: m.unknownKey, expect: sized(payload) };
    });

  /** Well-formed commands the domain or the log refuses: conflicts, refusals, a reused commandId. */
  const refused = fc
    .tuple(
      fc.constantFrom('spawn again', 'stale revision', 'no_stream on a stream', 'never spawned', 'memory of an item', 'reused commandId', 'memory route: item', 'memory route: unknown npc'),
      fc.integer({ min: 1, max: 1000 }),
      fc.uuid(),
    )
    .map(([kind, k, fresh]): FuzzRequest => {
      const commands = `/v1/worlds/${world}/commands`;
      const body = (() => {
        switch (kind) {
          case 'spawn again':
            return { commandId: fresh, type: 'entity.spawn', payload: { entityId: npcId, kind: 'npc', attributes: {} } };
          case 'stale revision':
            return { commandId: fresh, type: 'entity.update', expectedRevision: k % 2 ? npcRevision + k : Math.max(0, npcRevision - k), payload: { entityId: npcId, set: { x: 1 } } };
          case 'no_stream on a stream':
            return { commandId: fresh, type: 'world.advance_time', expectedRevision: 'no_stream', payload: { ticks: 1 } };
          case 'never spawned':
            return { commandId: fresh, type: 'entity.move', payload: { entityId: fresh, locationId } };
          case 'memory of an item':
            return { commandId: fresh, type: 'npc.record_memory', payload: { npcId: itemId, text: 'x', embedding: [1, 0] } };
          case 'reused commandId':
            return { commandId: spawnCommandId, type: 'world.advance_time', payload: { ticks: k } };
          default:
            return { text: 'x', embedding: [1, 0] };
        }
      })();
      const url = kind === 'memory route: item' ? `/v1/worlds/${world}/npcs/${itemId}/memories` : kind === 'memory route: unknown npc' ? `/v1/worlds/${world}/npcs/${fresh}/memories` : commands;
      return { family: `refused (${kind})`, method: 'POST', url, headers: { ...json, ...bearer(GAME_KEY) }, payload: JSON.stringify(body), expect: [404, 409, 410, 422] };
    });

  /** Valid requests (even valid commands) without a good key: 401; admin routes with the game key: 403. */
  const badCredentials = fc
    .tuple(fc.nat(), fc.boolean(), badAuthorization([ADMIN_KEY, GAME_KEY]), extraHeaders)
    .map(([i, wrongRole, authorization, headers]): FuzzRequest => {
      const route = routes[i % routes.length]!;
      const role = wrongRole && route.admin;
      const body = route.name === 'commands' ? envelope('world.advance_time', { ticks: 1 }) : route.template?.body;
      return {
        family: role ? 'game key on an admin route' : 'bad credentials',
        method: route.method,
        url: fill(route),
        headers: { ...headers, ...(body !== undefined ? json : {}), ...(role ? bearer(GAME_KEY) : authorization !== undefined ? { authorization } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
        expect: [role ? 403 : 401, ...(route.unserved ? [404] : [])],
      };
    });

  /** One path parameter hostile (the body, if any, is broken too): a 400 naming the parameter when it reaches the handler. */
  const hostileIds = fc
    .tuple(fc.nat(), fc.nat(), hostileSegment)
    .filter(([i]) => routes[i % routes.length]!.params.length > 0)
    .chain(([i, j, segment]) => {
      const route = routes[i % routes.length]!;
      const param = route.params[j % route.params.length]!;
      const body: fc.Arbitrary<Mutated | null> = route.template ? mutatedBody(route) : fc.constant(null);
      return body.map((m): FuzzRequest => {
        let decoded: string | null = null;
        try {
          decoded = decodeURIComponent(segment);
        } catch {
          // a malformed escape: the router's business
        }
        // A clean segment the parameter's schema refuses: the handler must name it (parameters are checked before bodies and queries).
        const clean = decoded !== null && param.pattern !== null && !route.unserved && !decoded.includes('/') && decoded !== '.' && decoded !== '..' && segment.length <= 100 && !param.pattern.test(decoded);
        const payload = m ? toJson(m.body) : undefined;
        return {
          family: `hostile ${param.name}`,
          method: route.method,
          url: fill(route, { [param.name]: segment }),
          headers: { ...(payload !== undefined ? json : {}), ...bearer(ADMIN_KEY) },
          ...(payload !== undefined ? { payload } : {}),
          ...(clean && (payload === undefined || Buffer.byteLength(payload) <= BODY_LIMIT) ? { field: param.name, expect: [400] } : {}),
        };
      });
    });

  const validText = (route: Route) => JSON.stringify(route.name === 'commands' ? envelope('world.advance_time', { ticks: 1 }) : (route.template?.body ?? {}));
  const postRoutes = () => routes.filter((r) => r.method === 'POST');
  /** A route the build does not serve answers 404 before it reads the body. */
  const or404 = (route: Route, statuses: number[]) => (route.unserved ? [...statuses, 404] : statuses);

  /** Bytes that are not JSON, wrong content types, empty and oversized bodies, any JSON value, very deep JSON. */
  const transport = fc.oneof(
    fc
      .nat()
      .chain((i) => {
        const route = postRoutes()[i % postRoutes().length]!;
        return notJson(validText(route)).map((payload): FuzzRequest => ({ family: 'not JSON', method: 'POST', url: fill(route), headers: { ...json, ...bearer(ADMIN_KEY) }, payload, expect: or404(route, sized(payload)) }));
      }),
    fc.tuple(fc.nat(), wrongContentType).map(([i, type]): FuzzRequest => {
      const route = postRoutes()[i % postRoutes().length]!;
      // A text/plain body reaches the handler as a string: refused there (the restore of no operation: 404).
      return { family: 'wrong content type', method: 'POST', url: fill(route), headers: { 'content-type': type, ...bearer(ADMIN_KEY) }, payload: validText(route), expect: [400, 404, 415] };
    }),
    fc.nat().map((i): FuzzRequest => {
      const route = postRoutes()[i % postRoutes().length]!;
      return { family: 'no body', method: 'POST', url: fill(route), headers: bearer(ADMIN_KEY), expect: route.path.includes('/restore') || route.path.includes('/rebuild') || route.path.includes('/erase') ? [400, 404] : [400] };
    }),
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 3 * BODY_LIMIT }), fc.constantFrom('application/json', 'text/plain', 'application/octet-stream')).map(([i, extra, type]): FuzzRequest => {
      const route = postRoutes()[i % postRoutes().length]!;
      const text = validText(route);
      const payload = `${text.slice(0, -1)},"pad":"${'x'.repeat(BODY_LIMIT + extra - text.length)}"}`;
      return { family: 'over the body limit', method: 'POST', url: fill(route), headers: { 'content-type': type, ...bearer(ADMIN_KEY) }, payload, expect: or404(route, type === 'application/json' ? [413] : [413, 415]) };
    }),
    fc.tuple(fc.nat(), anyJson).map(([i, value]): FuzzRequest => {
      const route = postRoutes()[i % postRoutes().length]!;
      const payload = toJson(value);
      return { family: 'any JSON value', method: 'POST', url: fill(route), headers: { ...json, ...bearer(ADMIN_KEY) }, payload, expect: route.path.includes('/restore') || route.path.includes('/rebuild') || route.path.includes('/erase') ? [400, 404, 413] : sized(payload) };
    }),
    // Deep JSON where any JSON is welcome (a flag's value, attributes), with another field wrong: the validator walks it all.
    fc.tuple(fc.integer({ min: 100, max: 6_000 }), fc.boolean(), fc.constantFrom('value', 'attributes')).map(([depth, arrays, where]): FuzzRequest => {
      const deep = deepJson(depth, arrays);
      const body = where === 'value' ? envelope('narrative.set_flag', { flag: 'bad flag!', value: deep }) : envelope('entity.spawn', { entityId: 'not-a-uuid', kind: 'npc', attributes: { deep } });
      const payload = toJson(body);
      return { family: `deep JSON in ${where}`, method: 'POST', url: `/v1/worlds/${world}/commands`, headers: { ...json, ...bearer(GAME_KEY) }, payload, expect: sized(payload) };
    }),
  );

  /** Methods a route does not take, on every route (HEAD of a GET route is served; nothing that writes is). */
  const methods = fc
    .tuple(fc.nat(), fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD', 'GET', 'POST', 'DELETE', 'PROPFIND', 'SEARCH', 'TRACE'), fc.option(anyJson, { nil: undefined }))
    .filter(([i, method]) => method !== routes[i % routes.length]!.method)
    .map(([i, method, body]): FuzzRequest => {
      const route = routes[i % routes.length]!;
      const payload = body === undefined || method === 'GET' || method === 'HEAD' || method === 'TRACE' ? undefined : toJson(body);
      return { family: 'wrong method', method, url: fill(route), headers: { ...(payload !== undefined ? json : {}), ...bearer(ADMIN_KEY) }, ...(payload !== undefined ? { payload } : {}) };
    });

  /** Every GET (and the DELETE) with random query strings, ids good or hostile, consistency tokens good or garbage. */
  const queries = fc
    .tuple(fc.nat(), fc.option(consistencyToken, { freq: 3, nil: undefined }), extraHeaders, fc.option(fc.tuple(fc.nat(), hostileSegment), { freq: 4, nil: undefined }))
    .chain(([i, token, headers, hostile]) => {
      const candidates = [...routes.filter((r) => r.method === 'GET' || r.method === 'DELETE'), ...OPEN.map((path): Route => ({ method: 'GET', path, params: [], admin: false, query: [] }))];
      const route = candidates[i % candidates.length]!;
      return queryString(route.query).map(({ qs, waits }): FuzzRequest => {
        const param = hostile && route.params.length > 0 ? route.params[hostile[0] % route.params.length] : undefined;
        return {
          family: `query ${route.method} ${route.path}`,
          method: route.method,
          url: `${fill(route, param ? { [param.name]: hostile![1] } : {})}${qs}`,
          headers: { ...headers, ...bearer(ADMIN_KEY), ...(token !== undefined ? { 'x-consistency-token': token } : {}) },
          waits: waits || token !== undefined,
        };
      });
    });

  /** What z.coerce.number().int().min(0) takes: such a token or minPosition is valid. */
  const isPosition = (v: string) => Number.isSafeInteger(Number(v)) && Number(v) >= 0;

  /** Memory routes beyond one wrong field: a garbage token, a memory that is not this NPC's, forgetting with a bad query. */
  const memory = fc.oneof(
    fc.tuple(consistencyToken, fc.boolean()).map(([token, far]): FuzzRequest => {
      const farToken = String(10_000_000 + token.length);
      const garbage = isPosition(token) ? `x${token}` : token;
      return {
        family: 'search with a consistency token',
        method: 'POST',
        url: `/v1/worlds/${world}/npcs/${npcId}/memories/search`,
        headers: { ...json, ...bearer(GAME_KEY), 'x-consistency-token': far ? farToken : garbage },
        payload: JSON.stringify(searchTemplate().body),
        waits: far,
        ...(far ? { expect: [504] } : { field: 'minPosition', expect: [400] }),
      };
    }),
    fc.tuple(fc.constantFrom('another npc', 'an item', 'a random memory', 'far minPosition'), fc.uuid()).map(([kind, fresh]): FuzzRequest => {
      const [npc, memory, qs] =
        kind === 'another npc' ? [fresh, memoryId, ''] : kind === 'an item' ? [itemId, memoryId, ''] : kind === 'a random memory' ? [npcId, fresh, ''] : [npcId, memoryId, '?minPosition=999999999'];
      return { family: `forget: ${kind}`, method: 'DELETE', url: `/v1/worlds/${world}/npcs/${npc}/memories/${memory}${qs}`, headers: bearer(GAME_KEY), waits: kind === 'far minPosition', expect: kind === 'far minPosition' ? [504] : [404] };
    }),
    fc
      .tuple(fc.constantFrom('commandId', 'minPosition', 'stranger'), fc.oneof(invalidFor({ kind: 'uuid' }), invalidFor({ kind: 'int', min: 0, max: 2 ** 30 })))
      .map(([key, value]): FuzzRequest => {
        const v = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
        const invalid = key === 'stranger' || (key === 'commandId' ? !UUID.test(v) : !isPosition(v));
        return {
          family: 'forget with a bad query',
          method: 'DELETE',
          url: `/v1/worlds/${world}/npcs/${npcId}/memories/${memoryId}?${pct(key)}=${pct(invalid ? v : `${v}x`)}`,
          headers: bearer(GAME_KEY),
          expect: [400],
          field: key === 'stranger' ? '' : key,
          ...(key === 'stranger' ? { unknownKey: key } : {}),
        };
      }),
  );

  const family = (name: string, arb: () => fc.Arbitrary<FuzzRequest>, numRuns: number) =>
    it(
      `${name}: a 4xx problem, the field named, nothing changed`,
      async () => {
        await fc.assert(
          // Printed as the exchange's first lines (a counterexample can be a 40 KB body).
          fc.asyncProperty(arb().map((req) => Object.assign(req, { [fc.toStringMethod]: () => summary(req) })), async (req) => void (await exchange(req))),
          { numRuns: runs(numRuns) },
        );
        expect(await fingerprint()).toEqual(before);
      },
      60_000,
    );

  /**
   * Not invalid: commands the schema takes, carrying what PostgreSQL cannot store
   * as-is (NUL, lone surrogates) or dates at the edge of its range, and dry or
   * real rollbacks with such reasons and times, all in a world of their own.
   * Each may be accepted or refused, never a 5xx; an accepted one must not stall
   * the read models. Last, as it may change state.
   */
  const scratch = `fuzz-edge-${randomUUID().slice(0, 8)}`;
  const scratchNpc = randomUUID();
  const edge = fc
    .tuple(
      fc.constantFrom('kind', 'attribute', 'attribute key', 'update', 'action', 'context', 'at', 'displayName', 'reason', 'stage', 'choices', 'flag value', 'memory', 'world rollback', 'time rollback', 'actor rollback'),
      storeBreaking,
      edgeTime,
      fc.boolean(),
      fc.uuid(),
    )
    .map(([where, text, time, dryRun, fresh]): FuzzRequest => {
      const cmd = (type: string, payload: Record<string, unknown>) => ({ url: `/v1/worlds/${scratch}/commands`, body: { commandId: fresh, type, payload }, key: GAME_KEY });
      const rollback = (body: Record<string, unknown>) => ({ url: `/v1/admin/worlds/${scratch}/rollback`, body: { ...body, dryRun }, key: ADMIN_KEY });
      const { url, body, key } = (() => {
        switch (where) {
          case 'kind': return cmd('entity.spawn', { entityId: fresh, kind: text, attributes: {} });
          case 'attribute': return cmd('entity.spawn', { entityId: fresh, kind: 'item', attributes: { a: text } });
          case 'attribute key': return cmd('entity.spawn', { entityId: fresh, kind: 'item', attributes: { [text]: 1 } });
          case 'update': return cmd('entity.update', { entityId: scratchNpc, set: { [text]: text } });
          case 'action': return cmd('player.record_action', { playerId: fresh, action: text, context: {} });
          case 'context': return cmd('player.record_action', { playerId: fresh, action: 'x', context: { c: text } });
          case 'at': return cmd('player.record_action', { playerId: fresh, action: 'x', context: {}, at: time });
          case 'displayName': return cmd('player.set_profile', { playerId: fresh, displayName: text });
          case 'reason': return cmd('player.change_relationship', { playerId: fresh, targetId: scratchNpc, delta: 1, reason: text });
          case 'stage': return cmd('narrative.advance_plot', { plotId: 'main', stage: text });
          case 'choices': return cmd('narrative.advance_plot', { plotId: 'side', stage: 'a', choices: { c: text } });
          case 'flag value': return cmd('narrative.set_flag', { flag: 'f', value: text });
          case 'memory': return { url: `/v1/worlds/${scratch}/npcs/${scratchNpc}/memories`, body: { text, embedding: [1, 1] }, key: GAME_KEY };
          case 'world rollback': return rollback({ toPosition: 0, reason: text });
          case 'time rollback': return rollback({ toTime: time, reason: 'fuzz' });
          default: return rollback({ actorId: 'fuzz', since: time, reason: text });
        }
      })();
      return { family: `edge values (${where})`, method: 'POST', url, headers: { ...json, ...bearer(key) }, payload: JSON.stringify(body), mayBeAccepted: true };
    });

  /** After an accepted write, every projection (and in EventStoreDB mode its PostgreSQL mirror) catches up with the log. */
  const projectionsCatchUp = async () => {
    let last: unknown;
    for (const deadline = Date.now() + 5_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const res = await t.request({ method: 'GET', url: '/v1/admin/projections', key: ADMIN_KEY });
      const statuses = res.body as { name: string; checkpoint: unknown; lag: { events: number }; status: string }[];
      last = statuses.map((p) => [p.name, p.checkpoint, p.lag.events, p.status]);
      if (statuses.every((p) => p.lag.events === 0)) return;
    }
    throw new Error(`the projections did not catch up within 5 s (stalled by the event?): [name, checkpoint, lag, status] ${JSON.stringify(last)}`);
  };

  family('one field of a body wrong', () => oneFieldWrong, 800);
  family('refused by the domain or the log', () => refused, 100);
  family('bad credentials or role', () => badCredentials, 200);
  family('hostile path parameters', () => hostileIds, 500);
  family('bad bytes, content types and sizes', () => transport, 500);
  family('wrong methods', () => methods, 200);
  family('random queries, ids and tokens', () => queries, 1000);
  family('memory routes', () => memory, 150);

  it(
    'edge values the schema takes (NUL, lone surrogates, extreme dates): accepted or a 4xx, never a 5xx, and the read models keep up',
    async () => {
      await ok(`/v1/worlds/${scratch}/commands`, { commandId: randomUUID(), type: 'entity.spawn', payload: { entityId: scratchNpc, kind: 'npc', attributes: {} } });
      await fc.assert(
        fc.asyncProperty(edge.map((req) => Object.assign(req, { [fc.toStringMethod]: () => summary(req) })), async (req) => {
          const res = await exchange(req);
          if (res.statusCode < 300) await projectionsCatchUp();
        }),
        { numRuns: runs(80), endOnFailure: true },
      );
    },
    60_000,
  );
});
