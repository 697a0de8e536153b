export const PG_POOL = Symbol('PG_POOL');
export const EVENT_STORE = Symbol('EVENT_STORE');

/** EventStoreDB mode: the mirror of its log into PostgreSQL (null in PostgreSQL mode). */
export const ESDB_MIRROR = Symbol('ESDB_MIRROR');

/** The pools, the replica router and the autoscale signal (class Database). */
export const DATABASE = Symbol('DATABASE');
