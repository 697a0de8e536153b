export * from './postgres/embedded';
export * from './postgres/migrate';
export * from './postgres/pool';
export * from './postgres/lease';
export * from './postgres/leader-loop';
