//! The backend-agnostic conformance suite, against a fresh schema per case.

herald_store_conformance::store_conformance_tests!(crate::fixture::fresh());
