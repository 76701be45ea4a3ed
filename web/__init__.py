"""Cairn's web UI: server-rendered pages over the read models, at Taskcluster's UI paths."""
