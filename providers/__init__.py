"""Everything about each provider, one folder each: the outbound adapter,
its error classification and, as they move here, webhook checks, receipt
parsing and settings. Below both server/ and workflows/: imports neither."""
