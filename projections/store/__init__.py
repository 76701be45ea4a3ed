"""Storage: where Cairn's events and views are kept, in SQLite or PostgreSQL.

- ``event_log.py``: the one ordered log (``SqlEventLog``), as domain services
  see it through ``cairn.domain.event_log.EventLog``; ``codec.py`` turns an
  event's state into bytes; ``moved_topics.py`` keeps old topics readable.
- ``base.py``: the unit of work, reads and saves both back ends share;
  ``sqlite.py`` and ``postgres.py``: what differs.
- ``session.py``: a transaction's cursor with the named queries;
  ``queries.py``: the named SQL, loaded from ``projections/<context>/*.sql``.
- ``eventsourcing_adapter.py``: every private name of the eventsourcing
  library Cairn uses, pinned to the versions it was written against.
"""
