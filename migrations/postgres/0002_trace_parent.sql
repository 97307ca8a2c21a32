-- The W3C `traceparent` of the run's span (docs/DESIGN.md §6 Telemetry), written only when
-- traces are exported: a resumed run's span links to the span of the copy before it.
ALTER TABLE runs ADD COLUMN trace_parent TEXT;
