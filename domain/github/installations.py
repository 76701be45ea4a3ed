"""What a webhook delivery says about the GitHub App's installations.

GitHub tells an app where it is installed through ``installation`` events
(``created``, ``deleted``, ``suspend``, ``unsuspend``, ``new_permissions_accepted``)
and ``installation_repositories`` events (repositories ``added`` / ``removed``);
every other delivery to an app names the installation it came through in
``installation.id``, from a repository of ``repository.owner.login``. Taskcluster
keeps one installation id per owner; Cairn keeps the same, and which
repositories it covers, for the ``repository`` endpoint.
"""

from __future__ import annotations

from typing import Any

#: ``installation`` actions after which the app can no longer act for the owner.
_GONE = frozenset({"deleted", "suspend"})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _names(repositories: Any) -> list[str] | None:
    """The names of a payload's repositories; None when the payload does not list them."""
    if not isinstance(repositories, list):
        return None
    return sorted({r["name"] for r in repositories if isinstance(r, dict) and _str(r.get("name"))})


def installation_change(event_name: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The one change this delivery makes to an owner's installation, or None.

    ``kind`` is ``installed`` (with ``repository_selection`` and ``repositories``, None when
    the payload does not list them),
    ``uninstalled``, ``repositories`` (``repository_selection``, ``added``, ``removed``)
    or ``seen`` (``repository``: a delivery came from it through the installation).
    """
    installation = body.get("installation")
    if not isinstance(installation, dict):
        return None
    installation_id = _int(installation.get("id"))
    if installation_id is None:
        return None
    account = installation.get("account")
    account_login = _str(account.get("login")) if isinstance(account, dict) else None
    selection = _str(installation.get("repository_selection"))
    action = body.get("action")
    if event_name == "installation" and account_login:
        if action in _GONE:
            return {"kind": "uninstalled", "owner": account_login, "installation_id": installation_id}
        return {
            "kind": "installed", "owner": account_login, "installation_id": installation_id,
            "repository_selection": selection, "repositories": _names(body.get("repositories")),
        }
    if event_name == "installation_repositories" and account_login:
        return {
            "kind": "repositories", "owner": account_login, "installation_id": installation_id,
            "repository_selection": selection,
            "added": _names(body.get("repositories_added")) or [],
            "removed": _names(body.get("repositories_removed")) or [],
        }
    repository = body.get("repository")
    if not isinstance(repository, dict):
        return None
    owner = repository.get("owner")
    login = _str(owner.get("login")) if isinstance(owner, dict) else None
    name = _str(repository.get("name"))
    if not login or not name:
        return None
    return {"kind": "seen", "owner": login, "installation_id": installation_id, "repository": name}
