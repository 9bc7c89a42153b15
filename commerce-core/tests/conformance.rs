//! The conformance kit against the in-memory store.

commerce_core::conformance_tests!(commerce_core::testkit::InMemoryFactory);
