"""SQL only: tables, queries, connections. Every profile query takes the organization."""
