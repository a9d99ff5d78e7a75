//! Spin adapters: the domain's storage, clock and config ports on spin-sdk.
