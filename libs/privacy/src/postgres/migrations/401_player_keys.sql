-- Personal data (GDPR): one data key per player, wrapped by the master key
-- (versions 401+). Erasure destroys the key and keeps a tombstone row, so the
-- player's personal data in the log, its mirrors and backups can never be
-- read again, and nothing new is sealed for them.
CREATE TABLE player_keys (
  player_id       uuid PRIMARY KEY,
  -- AES-256 key wrapped by `wrapped_by` (the master key's fingerprint or a KMS key id); NULL once erased.
  wrapped_key     bytea,
  wrapped_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  erased_at       timestamptz,
  erase_reason    text,
  erased_by       text,
  -- The position of the PlayerErased event, once it is appended.
  erase_position  bigint,
  CONSTRAINT player_keys_erased CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
