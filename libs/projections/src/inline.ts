import type { RecordedEvent } from '@lorestore/event-store';
import { ALL_PROJECTIONS, applyHistoryErasure, applyHistoryReset, docKey, planBatch, type Doc, type HistoryRow, type Projection } from './projections';

export const historyKey = (row: HistoryRow) => `${row.worldId}|${row.playerId}|${row.revision}|${row.at}`;

/**
 * The projections applied in memory, with no sink: the reference that the
 * tests compare PostgreSQL and Redis against, and what a fresh fold of the
 * log looks like.
 */
export class InlineReadModels {
  readonly docs = new Map<string, Doc>();
  readonly history = new Map<string, HistoryRow>();

  constructor(private readonly projections: readonly Projection[] = ALL_PROJECTIONS) {}

  apply(events: readonly RecordedEvent[]): void {
    const changes = planBatch(this.projections, this.docs, events);
    for (const doc of changes.docs) this.docs.set(docKey(doc.table, doc.streamId), doc);
    for (const reset of changes.historyResets) applyHistoryReset(this.history.values(), reset);
    for (const erasure of changes.erasures ?? []) applyHistoryErasure(this.history.values(), erasure);
    for (const row of changes.history) if (!this.history.has(historyKey(row))) this.history.set(historyKey(row), row);
  }
}
