export * from './snapshots';
export * from './state-at';
export * from './rollback';
export * from './world-state-at';
export * from './rebuild';
