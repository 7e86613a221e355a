"""Pure rules of the User Profiles API: no web framework, no SQL."""
