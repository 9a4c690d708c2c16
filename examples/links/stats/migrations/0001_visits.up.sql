CREATE TABLE visits (code text PRIMARY KEY, count bigint NOT NULL DEFAULT 0);
CREATE TABLE rollups (taken_at timestamptz PRIMARY KEY DEFAULT now(), links bigint, visits bigint);
