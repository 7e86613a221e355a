"""HTTP: routing, headers, version negotiation, error rendering. No business rules."""
