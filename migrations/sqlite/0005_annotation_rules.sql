-- The workflow's `meta.annotations` (a JSON object: annotation key → result path whose values
-- it may take), so an annotation is checked without the workflow file at hand.
ALTER TABLE runs ADD COLUMN annotation_rules TEXT;
