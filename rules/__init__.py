"""mmsq.rules (the repository folder `rules/`, installed under the `mmsq` import name)."""

if __name__ != "mmsq.rules":  # pragma: no cover - a packaging guard
    raise ImportError(
        f"'rules' must be imported as 'mmsq.rules' (got {__name__!r}); install mmsq with "
        "'pip install -e .' and do not put the repository root on sys.path"
    )
