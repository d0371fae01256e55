"""Pure rules of intake: no Flask, no SQLAlchemy."""
