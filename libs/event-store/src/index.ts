export * from './types';
export * from './errors';
export * from './postgres/micro-batcher';
export * from './postgres/postgres-event-store';
export * from './event-ids';
export * from './esdb/esdb-event-store';
export * from './esdb/esdb-mirror';
export * from './esdb/mirrored-event-store';
