//! The shared-service-account family: user-facing work done under a backend identity, so the
//! EHR's audit trail cannot say which user read what (45 CFR 164.312(b)).
