"""The arena: blind pairwise human votes over the images the benchmark made.

``pairs`` picks what to show (from the warehouse's image manifest), ``store``
keeps votes durable (SQLite, WAL, synchronous=FULL), ``tokens`` signs what the
server hands out, ``app`` is the ASGI web app, ``ratings`` fits Bradley–Terry
ratings and ``agreement`` measures how often each metric agrees with people.
"""
