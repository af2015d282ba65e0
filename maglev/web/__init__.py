"""The web UI: one Klein application over one or more maglevd data sources."""
