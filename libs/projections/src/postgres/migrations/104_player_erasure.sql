-- Erasure (GDPR) rewrites a player's rows in every world: find them by player alone.
CREATE INDEX player_state_player ON player_state (player_id);
CREATE INDEX player_history_player ON player_history (player_id, position);
