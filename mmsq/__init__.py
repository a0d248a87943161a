"""mmsq: MMS delivery quality and subscriber recovery engine.

The distribution has one import name. The repository folders ``adapters/``, ``simulators/`` and
``rules/`` are installed as ``mmsq.adapters``, ``mmsq.simulators`` and ``mmsq.rules``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
