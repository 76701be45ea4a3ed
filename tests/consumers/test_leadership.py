"""One leader per named consumer among processes, through a PostgreSQL advisory lock."""

from __future__ import annotations

from cairn.consumers.leadership import Leadership
from tests.integration.private_postgres import private_cluster


def test_after_a_database_restart_the_old_leader_stands_down_before_another_leads():
    with private_cluster() as cluster:
        first, second = Leadership(cluster.url, "pulse"), Leadership(cluster.url, "pulse")
        other = Leadership(cluster.url, "indexer")
        try:
            assert first.held()
            assert not second.held()
            assert other.held()  # each name has its own leader
            assert first.held()  # and keeps it while nothing happens

            cluster.stop("fast")
            cluster.start()
            # The restart took every lock: whoever asks first leads. The old
            # leader, asked next, must know it no longer does, within the
            # few seconds it would otherwise go on trusting its lock.
            assert second.held()
            assert not first.held()
            assert second.held()
        finally:
            for leadership in (first, second, other):
                leadership.release()
