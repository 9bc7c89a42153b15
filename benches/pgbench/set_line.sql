\set c random(1, 400000)
\set s random(1, 10000)
SELECT set_config('synchronous_commit', 'off', true), outcome FROM commerce_set_line('t', ('00000000-0000-7000-8000-' || lpad(to_hex(:c::int), 12, '0'))::uuid, 'SKU-' || :s, 1, 100, 1000, now() + interval '15 min', now(), '"2026-12-07T00:00:01Z"'::jsonb);
