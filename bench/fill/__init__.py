"""The bulk fill (批量造数): the simulator's workload written straight into the services' databases.

``python -m bench.fill --cases 1000000 --backend postgres|sqlite --seed N`` draws the same petitions,
petitioners and repeats as ``xinfang simulate`` (``shared.simulator.workload``, same seed and parameters)
and writes, with COPY on PostgreSQL and executemany on SQLite, the rows the system writes when it
registers each petition and routes it — the state of every case right after 交办, before any unit acts.
See ``bench/fill/core.py`` for what is written and what deliberately is not, and bench/README.md.
"""
