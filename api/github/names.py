"""The patterns of the github service's route parameters.

An owner or repository appears as GitHub names it or as builds record it
(Taskcluster writes ``.`` as ``%``); a branch is one path segment, as in
Taskcluster's routes; a commit is its full sha.
"""

from __future__ import annotations

OWNER_REPO = {"owner": r"[a-zA-Z0-9_.%-]{1,100}", "repo": r"[a-zA-Z0-9_.%-]{1,100}"}
BRANCH = {**OWNER_REPO, "branch": r"[^/\x00-\x1f\x7f]{1,255}"}
SHA = {**OWNER_REPO, "sha": r"[0-9a-fA-F]{40}"}
ISSUE = {**OWNER_REPO, "number": r"[0-9]{1,10}"}
