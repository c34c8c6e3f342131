"""Coverage-guided fuzzing of the parsers that face the network, with
atheris (libFuzzer for Python)::

    pip install atheris
    python -m fuzz --runs 200000            # every target, one by one
    python -m fuzz token next --runs 500000 # some of them
    python -m fuzz --list

Targets (:mod:`fuzz.targets`): ``cookie`` (a session cookie's value, as
the Redis namespaces decode it), ``cookie_header`` (a whole ``Cookie``
header, read by both kinds of namespace), ``token`` (cross-domain
tokens), ``next`` (``next`` URLs), ``body`` (the JSON and form bodies of
the session views) and ``host`` (the cross-domain flows with any
``Host``, path, query and cookies). Each runs in its own process; an
input that breaks a target is saved under ``fuzz/crashes/`` and the
command exits with status 1. Not part of the test suite: ``make test``
runs the Hypothesis tests of the same parsers.
"""
