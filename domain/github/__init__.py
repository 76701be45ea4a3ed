"""CI from GitHub: the pure parts (webhook interpretation, ``.taskcluster.yml``) live in sub-modules."""
