-- Which client made the visit.
ALTER TABLE visits ADD COLUMN agent text NOT NULL DEFAULT '';
