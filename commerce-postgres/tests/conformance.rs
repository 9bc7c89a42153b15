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
