"""What the run is doing, on stderr: on a terminal, one status line
rewritten in place (scenario, stack, batch i of n, elapsed, ETA) under the
messages; elsewhere (CI logs), plain lines only."""

import time


def _clock(seconds):
    seconds = max(0, round(seconds))
    return f'{seconds // 60}:{seconds % 60:02d}'


class Progress:
    """Progress of ``total`` timed batches, written to ``stream`` (or
    nowhere, if it is ``None``)."""

    def __init__(self, stream, total=0, clock=time.perf_counter):
        self.stream = stream
        self.tty = bool(stream is not None and _isatty(stream))
        self.total = total
        self.done = 0
        self.clock = clock
        self.started = clock()
        self._status = False
        #: when the first batch started: the ETA leaves the setup out
        self._first = None

    def add(self, count):
        """``count`` more batches to come."""
        self.total += count

    def timing(self):
        """``elapsed 0:12  ETA 1:03`` (the ETA once a batch is done)."""
        elapsed = self.clock() - self.started
        text = f'elapsed {_clock(elapsed)}'
        if self._first is not None and self.done > 1 and self.total:
            per_batch = (self.clock() - self._first) / (self.done - 1)
            left = per_batch * max(0, self.total - self.done + 1)
            text += f'  ETA {_clock(left)}'
        return text

    def step(self, label):
        """A batch of ``label`` (``scenario/stack``) is about to run."""
        self.done += 1
        if self._first is None:
            self._first = self.clock()
        if not self.tty:
            return
        line = f'{label}  batch {self.done} of {self.total}  {self.timing()}'
        self.stream.write('\r' + line + '\x1b[K')
        self.stream.flush()
        self._status = True

    def note(self, message, timing=False):
        """A line that stays (with the timing, if ``timing``)."""
        if self.stream is None:
            return
        if timing:
            message += f'  ({self.timing()})'
        if self._status:
            self.stream.write('\r\x1b[K')
            self._status = False
        self.stream.write(message + '\n')
        self.stream.flush()

    def close(self):
        """Clear the status line."""
        if self._status:
            self.stream.write('\r\x1b[K')
            self.stream.flush()
            self._status = False


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
