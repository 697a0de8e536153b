import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { configSchema, loadConfig } from '../../apps/state-api/src/config';

/**
 * There is no Docker engine where the tests run: docker/compose.yml is checked
 * for what can go wrong without one — it parses, every service, volume and
 * network it refers to is defined, every lorestore service sets only variables
 * the service reads and each one's environment passes the service's own
 * configuration check, the topology is the production one (KurrentDB,
 * PostgreSQL primary and streaming replicas, a six-node Redis Cluster, two APIs,
 * two projectors), and the scripts it mounts exist, are executable and parse.
 */
describe('docker/compose.yml', () => {
  type Service = {
    image?: string;
    build?: unknown;
    profiles?: string[];
    depends_on?: Record<string, { condition?: string }>;
    environment?: Record<string, string>;
    ports?: string[];
    command?: string[] | string;
    entrypoint?: string[] | string;
    volumes?: string[];
    networks?: string[] | Record<string, unknown>;
    healthcheck?: { test?: string[] | string; disable?: boolean };
    restart?: string;
  };
  type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown>; networks?: Record<string, unknown> };

  const dockerDir = path.join(__dirname, '../../docker');
  /** What `docker compose` would substitute: `${VAR:?message}` and `${VAR:-default}` from this environment. */
  const COMPOSE_ENV: Record<string, string> = { LORESTORE_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') };
  const required: string[] = [];
  const interpolated = readFileSync(path.join(dockerDir, 'compose.yml'), 'utf8').replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_, name: string, op?: string, rest?: string) => {
    if (op === '?') required.push(name);
    return COMPOSE_ENV[name] ?? (op === '-' ? (rest ?? '') : '');
  });
  const compose = parse(interpolated, { merge: true }) as Compose;
  const services = compose.services;
  const lorestore = Object.entries(services).filter(([, s]) => s.build !== undefined);
  const inDefaultStack = ([, s]: [string, Service]) => s.profiles === undefined;

  /**
   * Added by the scale issue (replica reads, pool sizing); remove from this list once
   * config.ts has them. A name here that configSchema already knows is validated normally.
   */
  const known = new Set(Object.keys(configSchema.shape));
  const env = (name: string) => services[name]?.environment ?? {};

  const words = (value: string[] | string | undefined) => (Array.isArray(value) ? value : (value ?? '').split(/\s+/)).filter((w) => w !== '');
  /** Host-side scripts a service bind-mounts from docker/ (./x.sh:/in/container.sh). */
  const mountedScripts = (service: Service) =>
    (service.volumes ?? [])
      .map((v) => v.split(':'))
      .filter(([source]) => source!.startsWith('.') && source!.endsWith('.sh'))
      .map(([source, target]) => ({ file: path.resolve(dockerDir, source!), target: target! }));
  /** A script without its comment lines. */
  const code = (script: string) => script.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
  /** The text a service runs: its entrypoint and command, and the mounted script the entrypoint names. */
  const runs = (service: Service) => {
    const argv = [...words(service.entrypoint), ...words(service.command)];
    const scripts = mountedScripts(service).filter(({ target }) => argv.includes(target));
    return { argv, scripts: scripts.map(({ file }) => code(readFileSync(file, 'utf8'))).join('\n') };
  };
  const redisNodes = Object.keys(services).filter((name) => /^redis-\d+$/.test(name)).sort();
  const replicas = Object.keys(services).filter((name) => /^postgres-replica-\d+$/.test(name)).sort();
  const stateApis = Object.entries(services).filter((entry) => /^state-api-\d+$/.test(entry[0]) && inDefaultStack(entry));
  const projectors = Object.entries(services).filter((entry) => /^projector-\d+$/.test(entry[0]) && inDefaultStack(entry));

  it('parses, names an image or a build for every service, and refers only to services, volumes and networks it defines', () => {
    const volumes = new Set(Object.keys(compose.volumes ?? {}));
    const networks = new Set(Object.keys(compose.networks ?? {}));
    for (const [name, service] of Object.entries(services)) {
      expect({ name, ok: service.image !== undefined || service.build !== undefined }).toEqual({ name, ok: true });
      for (const dependency of Object.keys(service.depends_on ?? {})) expect({ name, dependency, defined: dependency in services }).toEqual({ name, dependency, defined: true });
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('.') || source.startsWith('/')) continue;
        expect({ name, volume: source, declared: volumes.has(source) }).toEqual({ name, volume: source, declared: true });
      }
      const serviceNetworks = Array.isArray(service.networks) ? service.networks : Object.keys(service.networks ?? {});
      for (const network of serviceNetworks) expect({ name, network, declared: networks.has(network) }).toEqual({ name, network, declared: true });
    }
  });

  it('keeps every stateful service on a named volume, and restarts the long-running ones', () => {
    const stateful = ['kurrentdb', 'postgres-primary', ...replicas, ...redisNodes];
    for (const name of stateful) {
      const named = (services[name]!.volumes ?? []).map((v) => v.split(':')[0]!).filter((s) => !s.startsWith('.') && !s.startsWith('/'));
      expect({ name, named: named.length }).toEqual({ name, named: 1 });
    }
    for (const [name, service] of Object.entries(services)) {
      if (name === 'redis-cluster-init') continue;
      expect({ name, restart: service.restart }).toEqual({ name, restart: 'unless-stopped' });
    }
  });

  it('takes the master key from the environment (compose refuses to start without it), never from the file', () => {
    expect(required).toContain('LORESTORE_MASTER_KEY');
    expect(readFileSync(path.join(dockerDir, 'compose.yml'), 'utf8')).toMatch(/LORESTORE_MASTER_KEY: "\$\{LORESTORE_MASTER_KEY:\?/);
  });

  it('gives each lorestore service only variables the service reads and a configuration it accepts', () => {
    expect(lorestore.map(([name]) => name).sort()).toEqual(['projector-1', 'projector-2', 'state-api-1', 'state-api-2', 'state-api-pg']);
    for (const [name, service] of lorestore) {
      const environment = service.environment ?? {};
      for (const key of Object.keys(environment)) {
        expect({ name, key, known: known.has(key) }).toEqual({ name, key, known: true });
      }
      expect(() => loadConfig(environment)).not.toThrow();
      expect(loadConfig(environment).NODE_ENV).toBe('production');
    }
  });

  it('runs KurrentDB in the default stack, and both APIs and both projectors in EventStoreDB mode against it', () => {
    expect(inDefaultStack(['kurrentdb', services.kurrentdb!])).toBe(true);
    expect(words(services.kurrentdb!.healthcheck?.test).join(' ')).toContain('/health/live');
    expect(stateApis.map(([name]) => name)).toEqual(['state-api-1', 'state-api-2']);
    expect(projectors.map(([name]) => name)).toEqual(['projector-1', 'projector-2']);
    for (const [name, service] of [...stateApis, ...projectors]) {
      const config = loadConfig(service.environment ?? {});
      expect({ name, store: config.EVENT_STORE }).toEqual({ name, store: 'esdb' });
      expect(config.EVENTSTORE_CONNECTION_STRING).toBe('esdb://kurrentdb:2113?tls=false');
      expect(service.depends_on?.kurrentdb?.condition).toBe('service_healthy');
    }
  });

  it('runs the projections in the two projectors only: the APIs are PROJECTOR=external, the projectors have no HTTP health check', () => {
    expect(stateApis.map(([, s]) => s.environment?.PROJECTOR)).toEqual(['external', 'external']);
    expect(stateApis.map(([, s]) => s.ports)).toEqual([['3000:3000'], ['3001:3000']]);
    for (const [name, service] of projectors) {
      expect({ name, command: words(service.command) }).toEqual({ name, command: ['node', '--enable-source-maps', 'dist/apps/projector/src/main.js'] });
      expect({ name, healthcheck: service.healthcheck }).toEqual({ name, healthcheck: { disable: true } });
      expect(service.ports).toBeUndefined();
    }
  });

  it('has a PostgreSQL primary with WAL for replication, and streaming replicas cloned from it with pg_basebackup -R', () => {
    const primary = services['postgres-primary']!;
    expect(primary.image).toBe('postgres:16');
    const settings = words(primary.command).join(' ');
    for (const setting of ['wal_level=replica', 'max_wal_senders=', 'hot_standby=on']) expect(settings).toContain(setting);
    const init = mountedScripts(primary).filter(({ target }) => target.startsWith('/docker-entrypoint-initdb.d/'));
    expect(init).toHaveLength(1);
    const initScript = code(readFileSync(init[0]!.file, 'utf8'));
    expect(initScript).toMatch(/REPLICATION LOGIN/);
    expect(initScript).toMatch(/host replication/);

    expect(replicas.length).toBeGreaterThanOrEqual(2);
    const slots = new Set<string>();
    for (const name of replicas) {
      const replica = services[name]!;
      expect(replica.image).toBe('postgres:16');
      expect(replica.depends_on?.['postgres-primary']?.condition).toBe('service_healthy');
      expect(words(replica.healthcheck?.test).join(' ')).toContain('pg_isready');
      const { scripts } = runs(replica);
      expect(scripts).toMatch(/pg_basebackup[^\n]*(\\\n[^\n]*)*-R\b/);
      expect(scripts).toMatch(/-X stream/);
      expect(replica.environment?.PRIMARY_HOST).toBe('postgres-primary');
      slots.add(replica.environment?.REPLICA_SLOT ?? '');
    }
    expect(slots.size).toBe(replicas.length);

    for (const [name, service] of [...stateApis, ...projectors]) {
      expect({ name, url: new URL(service.environment!.DATABASE_URL!).host }).toEqual({ name, url: 'postgres-primary:5432' });
    }
    for (const [name, service] of stateApis) {
      const urls = service.environment!.DATABASE_REPLICA_URLS!.split(',').map((u) => new URL(u));
      expect({ name, replicas: urls.map((u) => u.hostname).sort() }).toEqual({ name, replicas });
      for (const url of urls) expect(url.protocol).toBe('postgres:');
      expect(Object.keys(service.depends_on ?? {})).toEqual(expect.arrayContaining(['postgres-primary', ...replicas]));
    }
  });

  it('has a six-node Redis Cluster, formed once by redis-cluster-init, that the lorestore services name node by node', () => {
    expect(redisNodes).toHaveLength(6);
    for (const name of redisNodes) {
      const node = services[name]!;
      expect(node.image).toBe('redis:7');
      const argv = words(node.command).join(' ');
      expect(argv).toContain('--cluster-enabled yes');
      expect(argv).toContain('--cluster-config-file');
      expect(argv).toContain('--appendonly yes');
      expect(argv).toContain(`--cluster-announce-hostname ${name}`);
      expect(argv).toContain('--cluster-preferred-endpoint-type hostname');
    }

    const init = services['redis-cluster-init']!;
    for (const name of redisNodes) expect(init.depends_on?.[name]?.condition).toBe('service_healthy');
    const { argv, scripts } = runs(init);
    expect(scripts).toContain('--cluster create');
    expect(scripts).toContain('--cluster-replicas 1');
    expect(scripts).toContain('--cluster-yes');
    expect(scripts).toContain('cluster_state');
    const seeds = redisNodes.map((name) => `${name}:6379`);
    expect(argv.filter((a) => /^redis-\d+:\d+$/.test(a)).sort()).toEqual(seeds);

    for (const [name, service] of lorestore) {
      expect({ name, nodes: service.environment?.REDIS_CLUSTER_NODES?.split(',').sort() }).toEqual({ name, nodes: seeds });
      expect({ name, init: service.depends_on?.['redis-cluster-init']?.condition }).toEqual({ name, init: 'service_completed_successfully' });
    }
  });

  it('keeps PostgreSQL mode (its own schema and key prefix, projections in process) in a profile', () => {
    const pg = services['state-api-pg']!;
    expect(pg.profiles).toEqual(['postgres']);
    const config = loadConfig(pg.environment ?? {});
    expect(config.EVENT_STORE).toBe('postgres');
    expect(config.PROJECTOR).toBe('inline');
    const main = loadConfig(env('state-api-1'));
    expect(config.DATABASE_SCHEMA).not.toBe(main.DATABASE_SCHEMA);
    expect(config.REDIS_KEY_PREFIX).not.toBe(main.REDIS_KEY_PREFIX);
    expect(pg.depends_on).not.toHaveProperty('kurrentdb');
  });

  it('mounts only scripts that exist under docker/, are executable, and parse (bash -n)', () => {
    const scripts = new Set(Object.values(services).flatMap((s) => mountedScripts(s).map(({ file }) => file)));
    expect(scripts.size).toBeGreaterThanOrEqual(3);
    for (const file of scripts) {
      expect({ file, under: path.relative(dockerDir, file).startsWith('..') }).toEqual({ file, under: false });
      expect({ file, exists: existsSync(file) }).toEqual({ file, exists: true });
      expect(() => accessSync(file, constants.X_OK)).not.toThrow();
      expect(readFileSync(file, 'utf8').startsWith('#!/usr/bin/env bash\n')).toBe(true);
      expect(() => execFileSync('bash', ['-n', file], { stdio: 'pipe' })).not.toThrow();
    }
  });
});
