//! The conformance kit against PostgreSQL, once per reservation strategy,
//! each scenario on a fresh database with the production migrations.

mod single_statement {
    commerce_core::conformance_tests!(
        commerce_postgres::testkit::PgFactory::from_env(
            commerce_postgres::ReservationStrategy::SingleStatement
        )
        .await
    );
}

mod advisory_lock {
    commerce_core::conformance_tests!(
        commerce_postgres::testkit::PgFactory::from_env(
            commerce_postgres::ReservationStrategy::AdvisoryLock
        )
        .await
    );
}

mod grouped {
    commerce_core::conformance_tests!(
        commerce_postgres::testkit::PgFactory::from_env(
            commerce_postgres::ReservationStrategy::Grouped
        )
        .await
    );
}

/// The whole kit through PgBouncer in transaction pooling (`bash
/// .ci/pgbouncer.sh`), logged in as the least-privileged role, in pooled
/// mode: unnamed statements in explicit transactions, the role and tenant
/// pinned per transaction.
mod through_pooler {
    commerce_core::conformance_tests!(
        commerce_postgres::testkit::PgFactory::through_pooler(
            commerce_postgres::ReservationStrategy::SingleStatement
        )
        .await
    );
}

/// The default strategy with every reservation committed synchronously
/// (the other modules run the default, asynchronous reservation commit).
mod grouped_synchronous_commit {
    commerce_core::conformance_tests!(
        commerce_postgres::testkit::PgFactory::from_env(
            commerce_postgres::ReservationStrategy::Grouped
        )
        .await
        .with_reservation_commit(commerce_postgres::ReservationCommit::Synchronous)
    );
}
