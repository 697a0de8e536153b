export * from './types';
export * from './errors';
export * from './postgres/group-commit';
export * from './postgres/postgres-event-store';
export * from './event-ids';
