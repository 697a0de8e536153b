import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { configSchema, loadConfig } from '../../apps/state-api/src/config';

/**
 * There is no Docker engine where the tests run: docker/compose.yml is checked
 * for what can go wrong without one — it parses, every service it names in
 * depends_on exists, every lorestore service sets only variables the service
 * reads, and each one's environment passes the service's own configuration check.
 */
describe('docker/compose.yml', () => {
  type Service = { image?: string; build?: unknown; profiles?: string[]; depends_on?: Record<string, unknown>; environment?: Record<string, string>; ports?: string[] };
  const compose = parse(readFileSync(path.join(__dirname, '../../docker/compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
  const lorestore = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

  it('parses, names an image or a build for every service, and depends only on services it defines', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'lorestore', 'kurrentdb', 'lorestore-esdb']));
    for (const [name, service] of Object.entries(compose.services)) {
      expect({ name, ok: service.image !== undefined || service.build !== undefined }).toEqual({ name, ok: true });
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(compose.services).toHaveProperty(dependency);
    }
  });

  it('gives each lorestore service only variables the service reads, and a configuration it accepts', () => {
    const known = new Set(Object.keys(configSchema.shape));
    expect(lorestore.map(([name]) => name).sort()).toEqual(['lorestore', 'lorestore-esdb']);
    for (const [name, service] of lorestore) {
      const env = service.environment ?? {};
      for (const key of Object.keys(env)) expect({ name, key, known: known.has(key) }).toEqual({ name, key, known: true });
      expect(() => loadConfig(env)).not.toThrow();
    }
  });

  it('runs EventStoreDB mode only in the esdb profile, against the KurrentDB service, on its own schema', () => {
    const esdb = compose.services['lorestore-esdb']!;
    expect(esdb.profiles).toEqual(['esdb']);
    expect(compose.services.kurrentdb!.profiles).toEqual(['esdb']);
    const config = loadConfig(esdb.environment);
    expect(config.EVENT_STORE).toBe('esdb');
    expect(config.EVENTSTORE_CONNECTION_STRING).toMatch(/^esdb:\/\/kurrentdb:2113/);
    expect(config.DATABASE_SCHEMA).not.toBe(loadConfig(compose.services.lorestore!.environment).DATABASE_SCHEMA);
    expect(esdb.depends_on).toHaveProperty('kurrentdb');
  });
});
