"""mmsq.simulators (the repository folder `simulators/`, installed under the `mmsq` import name)."""

if __name__ != "mmsq.simulators":  # pragma: no cover - a packaging guard
    raise ImportError(
        f"'simulators' must be imported as 'mmsq.simulators' (got {__name__!r}); install mmsq with "
        "'pip install -e .' and do not put the repository root on sys.path"
    )
