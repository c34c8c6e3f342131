"""One target under libFuzzer: ``python -m fuzz.run NAME [libFuzzer
flags]`` (``-runs=N``, ``-max_total_time=S``, ...)."""

import sys
import atheris

from .targets import TARGETS


def main(argv):
    name = argv[1]
    target, max_len = TARGETS[name]
    flags = [argv[0], f'-max_len={max_len}', *argv[2:]]
    atheris.Setup(flags, target)
    atheris.Fuzz()


if __name__ == '__main__':
    main(sys.argv)
