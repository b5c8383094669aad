"""A rollback stack: what `create` did, undone in reverse on any failure."""


class Rollback:
    def __init__(self, log):
        self.log = log
        self._undo = []

    def push(self, what, fn, *args):
        self._undo.append((what, fn, args))

    def commit(self):
        """Keep everything: the operation succeeded."""
        self._undo.clear()

    def run(self):
        """Undo in reverse order; a failing step is logged and the rest still run."""
        while self._undo:
            what, fn, args = self._undo.pop()
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                self.log.warn(f"cleanup: {what}: {e}")

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.run()
        return False
