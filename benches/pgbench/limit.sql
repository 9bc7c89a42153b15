\set s random(1, 10000)
WITH x AS (SELECT set_config('synchronous_commit', 'off', true) AS v)
UPDATE counters SET n = n + 1 FROM x WHERE id = :s;
