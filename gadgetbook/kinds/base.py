"""What every kind of gadget answers: columns, param checks, its source on a host, its result, its after-run."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from gadgetbook.catalog.spec import GadgetSpec
    from gadgetbook.frames.decode import ContainerNames
    from gadgetbook.protocol import Frame
    from gadgetbook.run_handle import Batch, Source
    from gadgetbook.targets.local import LocalContainers


class Kind:
    """One kind of gadget (trace, top, profile, ...). Front ends, the API and the cluster client ask it
    instead of testing the spec's kind; `gadgetbook.kinds.kind_of` is where a kind is chosen."""

    name: ClassVar[str]
    # How a terminal shows a run: "rows" streams rows as they come, "intervals" prints a table per
    # interval, "result" waits and prints the result (`print_result`).
    terminal: ClassVar[str] = "rows"
    # Kinds driven by verbs rather than run (a recorder: start, show, stop, list); see `command`.
    verbs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: GadgetSpec | None) -> None:
        self.spec = spec  # None for a recording replayed where its gadget is not installed

    # -- what a run reports --

    def columns(self) -> list[str]:
        """Column names of every batch and of the result's DataFrame, in order."""
        raise NotImplementedError

    def empty(self) -> Batch:
        """Zero rows with every column's dtype: the shape of a run that saw nothing."""
        raise NotImplementedError

    @property
    def categorical(self) -> frozenset[str]:
        """Columns (beyond the common ones) that become pandas categoricals."""
        return frozenset()

    def own_columns(self) -> tuple:
        """The gadget's own columns as its spec declares them (catalog Columns); none without a spec."""
        return ()

    def column_units(self) -> dict[str, str]:
        """Units the spec gives columns (`unit = "bytes"` in gadget.toml): views write values with them."""
        return {c.name: c.options["unit"] for c in self.own_columns() if "unit" in c.options}

    def tally(self, rows: int, attrs: dict[str, Any]) -> str:
        """What a run's rows are, counted for a header or a summary: "1,234 events"."""
        return f"{rows:,} event{'' if rows == 1 else 's'}"

    def empty_notes(self, attrs: dict[str, Any]) -> list[str]:
        """Why a run of this gadget may have seen nothing, and what to try."""
        from gadgetbook.hints import empty_result

        spec = self.spec
        return empty_result(attrs, spec.empty_hint if spec is not None else "",
                            {n: p.default for n, p in spec.params.items()} if spec is not None else {})

    def describe_columns(self) -> list[str]:
        """Lines for `describe`: the columns and what they mean."""
        return [f"  {name:<22} {meta.get('doc', '')}" for name, meta in self.spec.column_meta.items()]

    # -- before anything loads --

    def check(self, params: dict[str, Any]) -> None:
        """A GadgetError in one sentence for settings this kind cannot run with (checked on the client
        too, before any node is asked)."""

    # -- on a host --

    def open(self, params: dict[str, Any], *, mntns_ids: Iterable[int] | None, pid: int | None,
             ring_bytes: int | None, containers: LocalContainers, node: str, raw: bool = False) -> Source:
        """Load and attach the gadget on this host and return the source that feeds a Run.

        `raw`: a node pod's source, whose poll() hands over `protocol.Frame`s of what it read from the
        kernel (decoded by the client with `from_wire`), and which stops reading the kernel while too
        much waits to be sent (the kernel then counts what it cannot keep: memory stays bounded)."""
        raise NotImplementedError

    def from_wire(self, frame: Frame, params: dict[str, Any], names: ContainerNames, node: str) -> Batch:
        """A batch of this kind's columns from a frame its raw source made on a node."""
        raise NotImplementedError

    def wire(self, node: str) -> dict[str, Any]:
        """Fields a node's START message needs beyond the gadget's name and params (a program of one's own
        sends its object); catalog gadgets need none: the node has them."""
        return {}

    def reply(self) -> dict[str, Any]:
        """What a node's STARTED message says of an opened run beyond its columns (a bcc program: the record's
        layout, known only once the node has compiled it); nothing by default."""
        return {}

    def started(self, reply: dict[str, Any], node: str) -> None:
        """The client's side of `reply`: what a node said on starting."""

    # -- after the run --

    def result(self, df: Any) -> Any:
        """The run's result built from its DataFrame (the DataFrame itself unless the kind has its own type)."""
        return df

    def result_with_tables(self, df: Any, tables: dict) -> Any:
        """The result of a run whose sources also handed over tables (a program's maps); kinds that make none
        build it from the DataFrame alone."""
        return self.result(df)

    def after_run(self, result: Any) -> None:
        """Write what the params asked for beyond the result (files); nothing by default."""

    # -- front ends --

    def command(self, argv: list[str], prog: str) -> Any:
        """Carry out one verb (`argv[0]` in `verbs`) with its flags; the result goes to `show`/`print_result`."""
        raise NotImplementedError

    def live_view(self) -> type | None:
        """The notebook's live view class for a running gadget, or None to wait and then show the result."""
        from gadgetbook.views.live import LiveTable

        return LiveTable

    def show(self, result: Any, table: bool = True) -> None:
        """Display a result in a notebook (kinds without a live view); `table` False when the notebook
        displays the returned value itself."""
        from IPython.display import display

        display(result)

    def print_result(self, result: Any) -> int:
        """Print a result in a terminal (kinds whose `terminal` is "result"); returns the exit status."""
        raise NotImplementedError


class DecodedKind(Kind):
    """A kind whose columns, empty batch and categoricals are those of its record decoder (trace, top)."""

    def decoder(self) -> Any:
        """A decoder for this spec with no containers to name: enough for columns and dtypes."""
        raise NotImplementedError

    @functools.cached_property
    def _decoder(self) -> Any:
        return self.decoder()

    def columns(self) -> list[str]:
        return self._decoder.names()

    def empty(self) -> Batch:
        return self._decoder.empty()

    @property
    def categorical(self) -> frozenset[str]:
        return self._decoder.categorical
