"""The bulk fill (批量造数): the simulator's workload written straight into the services' databases.

``python -m bench.fill --cases 1000000 --backend postgres|sqlite --seed N`` draws the same petitions,
petitioners and repeats as ``xinfang simulate`` (``shared.simulator.workload``, same seed and parameters),
plays the units' handling after 交办 as the simulator drives it (``bench/fill/handling.py``; off with
``--no-replay``) and writes, with COPY on PostgreSQL (shards by petitioner in worker processes, writer
threads, indexes built after the load) and executemany on SQLite, the rows the system writes for all of it.  See ``bench/fill/core.py`` for what is
written and what deliberately is not, and bench/README.md.
"""
