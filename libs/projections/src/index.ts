export * from './projections';
export * from './inline';
export * from './runner';
export * from './hot-state/hot-state';
export * from './hot-state/memory-hot-state';
export * from './hot-state/redis-hot-state';
export * from './postgres/read-model-store';
