\set c1 random(1, 400000)
\set c2 random(1, 400000)
\set c3 random(1, 400000)
\set c4 random(1, 400000)
\set s1 random(1, 2500)
\set s2 random(2501, 5000)
\set s3 random(5001, 7500)
\set s4 random(7501, 10000)
SELECT set_config('synchronous_commit', 'off', true), count(*) FROM commerce_set_line_batch('t',
 ARRAY['SKU-' || :s1, 'SKU-' || :s2, 'SKU-' || :s3, 'SKU-' || :s4],
 ARRAY[('00000000-0000-7000-8000-' || lpad(to_hex(:c1::int), 12, '0'))::uuid, ('00000000-0000-7000-8000-' || lpad(to_hex(:c2::int), 12, '0'))::uuid, ('00000000-0000-7000-8000-' || lpad(to_hex(:c3::int), 12, '0'))::uuid, ('00000000-0000-7000-8000-' || lpad(to_hex(:c4::int), 12, '0'))::uuid],
 ARRAY[1, 1, 1, 1], ARRAY[100, 100, 100, 100], ARRAY[1000, 1000, 1000, 1000],
 ARRAY[now() + interval '15 min', now() + interval '15 min', now() + interval '15 min', now() + interval '15 min'],
 ARRAY[now(), now(), now(), now()],
 ARRAY['"2026-12-07T00:00:01Z"'::jsonb, '"2026-12-07T00:00:01Z"'::jsonb, '"2026-12-07T00:00:01Z"'::jsonb, '"2026-12-07T00:00:01Z"'::jsonb]);
