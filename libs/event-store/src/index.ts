export * from './types';
export * from './errors';
export * from './postgres/micro-batcher';
export * from './postgres/postgres-event-store';
export * from './event-ids';
