export * from './decider';
export * from './refusal';
export * from './entity';
export * from './world';
export * from './player';
export * from './narrative';
export * from './aggregates';
export * from './schema';
