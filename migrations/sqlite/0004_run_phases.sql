-- The phases a run's workflow declared (`meta.phases` titles, a JSON array), so a run's
-- view can group its calls without the workflow file at hand.
ALTER TABLE runs ADD COLUMN phases TEXT;
