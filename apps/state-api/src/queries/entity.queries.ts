import { Inject } from '@nestjs/common';
import { QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { streamIds, type EntityState } from '@lorestore/domain';
import type { EventStore } from '@lorestore/event-store';
import { Problem, validationProblem } from '../http/problem';
import { EVENT_STORE } from '../persistence/tokens';
import { isPointInTime, type PointInTime } from './point-in-time';
import { ReadModels } from './read-models';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
import { StateReader } from './state-reader';

export type EntityView = {
  id: string;
  kind: string;
  attributes: Record<string, unknown>;
  locationId: string | null;
  revision: number;
  spawnedAt: string;
  updatedAt: string;
  memoryCount: number;
};

const view = (state: Extract<EntityState, { status: 'active' }>, revision: bigint): EntityView => ({
  id: state.entityId,
  kind: state.kind,
  attributes: state.attributes,
  locationId: state.locationId,
  revision: Number(revision),
  spawnedAt: state.spawnedAt,
  updatedAt: state.updatedAt,
  memoryCount: state.memoryCount,
});

export class GetEntity {
  constructor(
    readonly worldId: string,
    readonly entityId: string,
    readonly at: PointInTime,
  ) {}
}

@QueryHandler(GetEntity)
export class GetEntityHandler implements IQueryHandler<GetEntity, EntityView> {
  constructor(
    private readonly reader: StateReader,
    private readonly readModels: ReadModels,
  ) {}

  async execute({ worldId, entityId, at }: GetEntity): Promise<EntityView> {
    const { state, last } = isPointInTime(at)
      ? await this.reader.load<EntityState>('entity', streamIds.entity(worldId, entityId), at)
      : await this.current(worldId, entityId, at.fence);
    if (state.status === 'unspawned' || !last) throw new Problem(404, 'not-found', 'Entity not found', `entity ${entityId} was never spawned in world ${worldId}`);
    if (state.status === 'despawned') {
      throw new Problem(410, 'gone', 'Entity despawned', `entity ${entityId} was despawned at ${state.despawnedAt}`, {
        despawnedAt: state.despawnedAt,
        reason: state.reason,
        revision: Number(last.revision),
      });
    }
    return view(state, last.revision);
  }

  /** From the read model (hot state, then PostgreSQL). */
  private async current(worldId: string, entityId: string, fence?: bigint): Promise<{ state: EntityState; last: { revision: bigint } | undefined }> {
    const doc = await this.readModels.doc('entities', worldId, entityId, fence);
    return doc ? { state: doc.state as EntityState, last: { revision: doc.revision } } : { state: { status: 'unspawned' }, last: undefined };
  }
}

export class ListEntities {
  constructor(
    readonly worldId: string,
    readonly filter: { kind?: string; locationId?: string; updatedSince?: string },
    readonly limit: number,
    readonly cursor: string | undefined,
    readonly at: PointInTime,
  ) {}
}

export type EntityPage = { items: EntityView[]; nextCursor: string | null };

/** Streams folded per page request; bounds the work of a page whose filter matches little. */
const SCAN_LIMIT = 1000;
const PARALLEL_READS = 8;

@QueryHandler(ListEntities)
export class ListEntitiesHandler implements IQueryHandler<ListEntities, EntityPage> {
  constructor(
    private readonly reader: StateReader,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly readModels: ReadModels,
  ) {}

  async execute(query: ListEntities): Promise<EntityPage> {
    return isPointInTime(query.at) ? this.folded(query) : this.fromReadModel(query);
  }

  /**
   * The `entities` table: active entities of the world in id order, after the
   * cursor (the last id of the previous page), filtered in SQL on indexed columns.
   */
  private async fromReadModel({ worldId, filter, limit, cursor, at }: ListEntities): Promise<EntityPage> {
    const params: unknown[] = [worldId];
    const where = ['world_id = $1', "status = 'active'"];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (cursor !== undefined) {
      if (!UUID.test(cursor)) throw validationProblem([{ path: 'cursor', message: 'not a cursor this service issued' }]);
      add('entity_id > ?::uuid', cursor);
    }
    if (filter.kind !== undefined) add('kind = ?', filter.kind);
    if (filter.locationId !== undefined) add('location_id = ?::uuid', filter.locationId);
    if (filter.updatedSince !== undefined) add('updated_at >= ?::timestamptz', filter.updatedSince);
    params.push(limit + 1);
    const { rows } = await this.readModels.query<{ data: EntityState; revision: string }>(
      `SELECT data, revision FROM entities WHERE ${where.join(' AND ')} ORDER BY entity_id LIMIT $${params.length}`,
      params,
      at.fence,
    );
    const items = rows.slice(0, limit).map((r) => view(r.data as Extract<EntityState, { status: 'active' }>, BigInt(r.revision)));
    return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
  }

  /** A page as it was at a point in time: the world's entity streams, folded. */
  private async folded({ worldId, filter, limit, cursor, at }: ListEntities): Promise<EntityPage> {
    const items: EntityView[] = [];
    let after = cursor;
    let scanned = 0;
    while (items.length < limit && scanned < SCAN_LIMIT) {
      const heads = await this.store.listStreams({ worldId, category: 'entity', after, limit: Math.min(100, SCAN_LIMIT - scanned) });
      if (heads.length === 0) return { items, nextCursor: null };
      for (let i = 0; i < heads.length && items.length < limit; i += PARALLEL_READS) {
        const chunk = heads.slice(i, i + PARALLEL_READS);
        const loaded = await Promise.all(chunk.map((h) => this.reader.load<EntityState>('entity', h.streamId, at)));
        for (let j = 0; j < chunk.length; j++) {
          after = chunk[j]!.streamId;
          scanned++;
          const { state, last } = loaded[j]!;
          if (state.status !== 'active' || !last) continue;
          if (filter.kind !== undefined && state.kind !== filter.kind) continue;
          if (filter.locationId !== undefined && state.locationId !== filter.locationId) continue;
          if (filter.updatedSince !== undefined && Date.parse(state.updatedAt) < Date.parse(filter.updatedSince)) continue;
          items.push(view(state, last.revision));
          if (items.length === limit) break;
        }
      }
      if (heads.length < 100 && items.length < limit && scanned < SCAN_LIMIT) return { items, nextCursor: null };
    }
    return { items, nextCursor: after ?? null };
  }
}
