-- The application role may read the migration history, so that a
-- deployment check run with the service's own login (commerce_postgres::check,
-- `SHOP check`) can tell whether the database is behind the code. The
-- history names versions and checksums only; nothing of any tenant.
DO $$
BEGIN
    EXECUTE 'GRANT SELECT ON _sqlx_migrations TO commerce_app';
EXCEPTION
    WHEN undefined_table THEN NULL;
END
$$;
