"""Reading the log for a replay: pages of events in log order, the next read while one is folded."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def pages(
    event_log: Any, after: int, stop: int, topics: Sequence[str], read_batch: int
) -> Iterator[list[tuple[int, Any]]]:
    """Batches of ``(position, event)`` in ``(after, stop]``, of the ``topics`` given (else all).

    The next batch is read while one is decoded and folded. The reading
    thread only waits for rows: decoding them there too would make the two
    threads take turns at the interpreter lock, which costs more than it
    overlaps.
    """
    stored = stored_rows(event_log, after, stop, list(topics), read_batch)
    decode = event_log.decode_events
    with ThreadPoolExecutor(1, thread_name_prefix="cairn-replay-read") as reader:
        coming = reader.submit(next, stored, None)
        try:
            while (rows := coming.result()) is not None:
                coming = reader.submit(next, stored, None)
                yield decode(rows)
        finally:
            coming.cancel() or coming.exception()
            reader.submit(stored.close).result()


def stored_rows(
    event_log: Any, after: int, stop: int, topics: list[str], read_batch: int
) -> Iterator[list[tuple[int, str, int, str, bytes]]]:
    """Pages of stored ``(position, originator_id, originator_version, topic, state)`` rows in
    ``(after, stop]``, in log order, of the ``topics`` given (else all).

    On PostgreSQL one query runs through the range with a server-side
    cursor, in binary; the rows are decoded in bulk (``SqlEventLog.decode_events``).
    """
    recorder = event_log.recorder
    if event_log.store.dialect != "postgres":
        while after < stop:
            notifications = recorder.select_notifications(
                start=after, limit=read_batch, stop=stop, topics=topics, inclusive_of_start=False
            )
            if not notifications:
                return
            yield [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]
            after = notifications[-1].id
        return
    import psycopg.rows

    sql = (
        "SELECT notification_id, originator_id, originator_version, topic, state "
        f"FROM {recorder.events_table_name} WHERE notification_id > %s AND notification_id <= %s"
    )
    params: list[Any] = [after, stop]
    if topics:
        sql += " AND topic = ANY(%s)"
        params.append(topics)
    with recorder.datastore.get_connection() as conn, conn.transaction():
        # Folding a page may take a while; the cursor's transaction waits, idle, meanwhile.
        conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        with conn.cursor("cairn_replay", row_factory=psycopg.rows.tuple_row) as cursor:
            cursor.execute(sql + " ORDER BY notification_id", params, binary=True)
            while rows := cursor.fetchmany(read_batch):
                yield rows
