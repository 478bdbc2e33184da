"""Lab 3, CPU profiling: a Python shop in two versions, the second with its hot spot fixed, profiled by label."""

from __future__ import annotations

from pathlib import Path

from gadgetbook.labs.check import Question, columns, holds, rows
from gadgetbook.labs.podman import PYTHON_ENV, python_volumes
from gadgetbook.labs.scenarios.containers import ContainerScenario

HANDLERS = ("handle_upload", "handle_order")


def _top(handler: str):
    def first_is(df) -> bool:
        return str(df.iloc[0]["function"]).split(" ")[0] == handler

    return holds(first_is, "Its first row is not the handler with the most samples (sort by samples, largest first).")


class ProfilingLab(ContainerScenario):
    """`shop-v1` and `shop-v2` run the same Python shop (labels app=shop, version=v1 or v2); v2 checksums with
    zlib instead of a Python loop."""

    lab = "profiling"

    def start(self) -> None:
        from gadgetbook.labs import shop

        self.file("/app/shop.py", Path(shop.__file__).read_text())
        for version, checksum in (("v1", "python"), ("v2", "crc32")):
            self.container(f"shop-{version}", "exec python3 /app/shop.py", labels={"app": "shop", "version": version},
                           volumes=python_volumes(), env={**PYTHON_ENV, "SHOP_CHECKSUM": checksum})

    def questions(self) -> dict[str, Question]:
        def handlers(version: str, top: str) -> Question:
            return Question(
                f"Which request handler of {version} uses the most CPU?",
                columns("function", "samples"), rows(at_least=2), _top(top),
                hint="Sum `count` over the rows of prof.samples whose user_stack contains each handler's name "
                     f"({', '.join(HANDLERS)}), one row per handler, largest first.")

        return {"v1": handlers("v1", "handle_upload"), "v2": handlers("v2", "handle_order")}
