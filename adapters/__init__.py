"""mmsq.adapters (the repository folder `adapters/`, installed under the `mmsq` import name)."""

if __name__ != "mmsq.adapters":  # pragma: no cover - a packaging guard
    raise ImportError(
        f"'adapters' must be imported as 'mmsq.adapters' (got {__name__!r}); install mmsq with "
        "'pip install -e .' and do not put the repository root on sys.path"
    )
