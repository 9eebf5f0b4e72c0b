-- Every request to /visit is recorded here.
CREATE TABLE visits (
  id bigserial PRIMARY KEY,
  path text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
