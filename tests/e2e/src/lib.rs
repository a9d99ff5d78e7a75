//! End-to-end tests: the real components, served by minispin, driven over HTTP.
