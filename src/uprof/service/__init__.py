"""Use cases. Each owns its transaction: one unit of work handed to the database."""
