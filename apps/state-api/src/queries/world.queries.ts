import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { deciders, streamIds, type NarrativeState, type WorldState } from '@lorestore/domain';
import { isPointInTime, type PointInTime } from './point-in-time';
import { ReadModels } from './read-models';
import { StateReader } from './state-reader';

/** Current state from the read model, or as of a point by folding the log; revision -1 for a world with no events. */
const load = async <S>(reader: StateReader, readModels: ReadModels, aggregate: 'world' | 'narrative', worldId: string, at: PointInTime) => {
  if (isPointInTime(at)) {
    const { state, last } = await reader.load<S>(aggregate, aggregate === 'world' ? streamIds.world(worldId) : streamIds.narrative(worldId), at);
    return { state, revision: last ? Number(last.revision) : -1 };
  }
  const doc = await readModels.doc(aggregate === 'world' ? 'world_state' : 'narrative_state', worldId, worldId, at.fence);
  return doc ? { state: doc.state as S, revision: Number(doc.revision) } : { state: deciders[aggregate].initialState() as S, revision: -1 };
};

/** A world needs no creation command: one without events answers its initial state at revision -1. */
export class GetWorldState {
  constructor(
    readonly worldId: string,
    readonly at: PointInTime,
  ) {}
}

@QueryHandler(GetWorldState)
export class GetWorldStateHandler implements IQueryHandler<GetWorldState> {
  constructor(
    private readonly reader: StateReader,
    private readonly readModels: ReadModels,
  ) {}

  async execute({ worldId, at }: GetWorldState) {
    const { state, revision } = await load<WorldState>(this.reader, this.readModels, 'world', worldId, at);
    return { time: state.time, weather: state.weather, factions: state.factions, revision };
  }
}

export class GetNarrative {
  constructor(
    readonly worldId: string,
    readonly at: PointInTime,
  ) {}
}

@QueryHandler(GetNarrative)
export class GetNarrativeHandler implements IQueryHandler<GetNarrative> {
  constructor(
    private readonly reader: StateReader,
    private readonly readModels: ReadModels,
  ) {}

  async execute({ worldId, at }: GetNarrative) {
    const { state, revision } = await load<NarrativeState>(this.reader, this.readModels, 'narrative', worldId, at);
    return { plots: state.plots, flags: state.flags, revision };
  }
}
