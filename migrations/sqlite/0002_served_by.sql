-- Which agent process served a call: "warm (pid N)" or "cold start (pid N)" (ACP agents).
ALTER TABLE calls ADD COLUMN served_by TEXT;
