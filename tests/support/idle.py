"""A run source with nothing behind it: feeds a Run when only what consumes its batches is measured or tested."""


class IdleSource:
    name = "idle"

    def poll(self):
        return None

    def finish(self) -> None:
        pass

    def lost(self) -> int:
        return 0

    def close(self) -> None:
        pass
