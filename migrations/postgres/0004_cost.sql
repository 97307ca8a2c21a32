-- What a call cost in US dollars, from its usage and [prices."MODEL"] of booflow.toml
-- (docs/DESIGN.md §4); NULL: unknown (its model has no price), never $0.
ALTER TABLE calls ADD COLUMN cost_usd DOUBLE PRECISION;
