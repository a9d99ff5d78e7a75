//! The public HTTP contract (API.md) over the domain crate, on plain `http` types.
