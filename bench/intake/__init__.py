"""bench/intake: sustained registrations per second through the native API (see run.py)."""
