"""Pure rules of supervision: the finding lifecycle, the ladder, the checks' predicates (no Flask, no SQLAlchemy)."""
