import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { streamIds, type NarrativeState, type WorldState } from '@lorestore/domain';
import type { PointInTime } from './point-in-time';
import { StateReader } from './state-reader';

/** A world needs no creation command: one without events answers its initial state at revision -1. */
export class GetWorldState {
  constructor(
    readonly worldId: string,
    readonly at: PointInTime,
  ) {}
}

@QueryHandler(GetWorldState)
export class GetWorldStateHandler implements IQueryHandler<GetWorldState> {
  constructor(private readonly reader: StateReader) {}

  async execute({ worldId, at }: GetWorldState) {
    const { state, last } = await this.reader.load<WorldState>('world', streamIds.world(worldId), at);
    return { time: state.time, weather: state.weather, factions: state.factions, revision: last ? Number(last.revision) : -1 };
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
  constructor(private readonly reader: StateReader) {}

  async execute({ worldId, at }: GetNarrative) {
    const { state, last } = await this.reader.load<NarrativeState>('narrative', streamIds.narrative(worldId), at);
    return { plots: state.plots, flags: state.flags, revision: last ? Number(last.revision) : -1 };
  }
}
