//! Upstream connectors: execute `UpstreamCmd`s and report `UpstreamEvent`s.
