//! Own tests of the NotifyStore port (no conformance suite exists for it yet).
