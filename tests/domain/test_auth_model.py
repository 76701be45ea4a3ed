"""Clients and roles as aggregates: the events each change records, and the rules they keep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cairn.domain.aggregate import acting_as
from cairn.domain.auth.model import (
    CREATE_RETRY_WINDOW,
    LAST_USED_DELAY,
    Client,
    Role,
    check_grantable,
    refuse_static,
)
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.pulse_messages import messages_for

FIELDS = dict(
    client_id="team/ci",
    description="CI",
    expires="2031-01-01T00:00:00.000Z",
    scopes=["queue:a"],
    delete_on_expiration=False,
    sealed_token="sealed-1",
)


@pytest.fixture(autouse=True)
def actor():
    with acting_as("static/root"):
        yield


def event_names(aggregate) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def replay(aggregate):
    copy = None
    for event in aggregate.collect_events():
        copy = event.mutate(copy)
    return copy


def test_a_client_records_each_change_it_makes():
    client = Client(**FIELDS)
    client.update("CI bot", FIELDS["expires"], ["queue:a", "queue:b"], None)
    client.update("CI bot", FIELDS["expires"], ["queue:a", "queue:b"], None)  # nothing new
    client.reset_access_token("sealed-2")
    client.disable()
    client.disable()
    client.enable()
    assert event_names(client) == [
        "Created", "DescriptionChanged", "ScopesChanged", "AccessTokenReset", "Disabled", "Enabled",
    ]
    assert (client.description, client.scopes, client.sealed_token) == (
        "CI bot", ["queue:a", "queue:b"], "sealed-2",
    )


def test_every_event_names_who_caused_it():
    client = Client(**FIELDS)
    with acting_as("team/admin"):
        client.disable()
    assert [e.actor for e in client.collect_events()] == ["static/root", "team/admin"]


def test_recording_an_event_without_an_actor_is_an_error():
    with acting_as(""), pytest.raises(RuntimeError):
        Client(**FIELDS)


def test_a_deleted_client_refuses_changes_and_can_be_created_again():
    client = Client(**FIELDS)
    client.delete()
    client.delete()
    with pytest.raises(NotFound):
        client.reset_access_token("sealed-2")
    with pytest.raises(NotFound):
        client.update("x", FIELDS["expires"], [], None)
    client.recreate(**{**FIELDS, "description": "second life"})
    assert not client.deleted and client.description == "second life"
    with pytest.raises(Conflict):
        client.recreate(**FIELDS)
    assert event_names(client) == ["Created", "Deleted", "Recreated"]


def test_replaying_the_events_rebuilds_the_client():
    client = Client(**FIELDS)
    client.delete()
    client.recreate(**FIELDS)
    client.disable()
    copy = replay(client)
    assert vars(copy) == vars(client)
    assert copy.since > copy.created_on  # the time of the last (re)creation


def test_a_create_repeated_soon_with_the_same_values_is_a_retry():
    client = Client(**FIELDS)
    soon, later = client.since + timedelta(minutes=1), client.since + CREATE_RETRY_WINDOW
    same = (FIELDS["description"], FIELDS["expires"], FIELDS["scopes"])
    assert client.repeats(*same, soon)
    assert not client.repeats(*same, later)
    assert not client.repeats("other", FIELDS["expires"], FIELDS["scopes"], soon)
    assert not client.repeats(FIELDS["description"], FIELDS["expires"], ["queue:b"], soon)
    client.disable()
    assert not client.repeats(*same, soon)


def test_a_use_is_recorded_only_once_the_last_one_is_older_than_the_delay():
    client = Client(**FIELDS)
    assert client.last_used == client.since  # never used: its creation
    created = client.since
    assert LAST_USED_DELAY == timedelta(hours=6)  # Taskcluster's maxLastUsedDelay
    assert not client.record_use(created + timedelta(hours=5))
    later = created + timedelta(hours=7)
    with acting_as("team/ci"):
        assert client.record_use(later)
    assert not client.record_use(later + timedelta(hours=1))
    assert client.record_use(later + timedelta(seconds=2), delay=timedelta(seconds=1))
    events = client.collect_events()
    assert [type(e).__name__ for e in events] == ["Created", "Used", "Used"]
    copy = None
    for event in events:
        copy = event.mutate(copy)
    assert vars(copy) == vars(client)
    assert (copy.last_used, copy.since) == (later + timedelta(seconds=2), created)


def test_a_use_carries_its_time_and_the_client_as_actor_and_no_pulse_message():
    client = Client(**FIELDS)
    client.collect_events()
    when = client.since + timedelta(days=1)
    with acting_as("team/ci"):
        client.record_use(when)
    [used] = client.collect_events()
    assert (type(used).__qualname__, used.timestamp, used.actor) == ("Client.Used", when, "team/ci")
    assert messages_for(used, client) == []  # Taskcluster announces no client-updated for it


def test_a_disabled_or_deleted_client_is_not_used():
    client = Client(**FIELDS)
    far = client.since + timedelta(days=1)
    client.disable()
    assert not client.record_use(far)
    client.enable()
    client.delete()
    assert not client.record_use(far)
    assert "Used" not in event_names(client)


def test_scopes_added_are_those_the_client_lacks_verbatim():
    client = Client(**{**FIELDS, "scopes": ["queue:*", "a"]})
    assert client.scopes_added(["a", "queue:x", "b"]) == ["queue:x", "b"]


def test_static_clients_and_double_star_scopes_are_refused():
    with pytest.raises(InvalidInput, match="static/"):
        refuse_static("static/root")
    refuse_static("project/static/x")
    with pytest.raises(InvalidInput, match=r"\*\*"):
        check_grantable(["a:**"])
    check_grantable(["a:*", "b"])


def test_a_role_records_its_life():
    role = Role(role_id="team", description="the team", scopes=["a"])
    assert role.repeats("the team", ["a"])
    assert not role.repeats("the team", ["b"])
    role.update("the team", ["a", "b"])
    role.update("renamed", ["a", "b"])
    role.delete()
    with pytest.raises(NotFound):
        role.update("x", [])
    assert not role.repeats("renamed", ["a", "b"])
    role.recreate("back", [])
    with pytest.raises(Conflict):
        role.recreate("again", [])
    copy = replay(role)
    assert (copy.description, copy.scopes, copy.deleted, copy.version) == ("back", [], False, 5)


def test_role_events_are_named_for_what_happened():
    role = Role(role_id="team", description="the team", scopes=["a"])
    role.update("the team", ["a", "b"])
    role.update("renamed", ["a", "b"])
    role.delete()
    role.recreate("back", [])
    assert event_names(role) == ["Created", "ScopesChanged", "DescriptionChanged", "Deleted", "Recreated"]
