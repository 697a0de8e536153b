export * from './envelope';
export * from './master-key';
export * from './key-store';
export * from './personal-data';
