//! Configuration: TOML file → validated `GatewayConfig` + `IoConfig`.
