"""Scenarios made of busybox containers under podman: one root filesystem shared by the lab's containers, each
container labelled with the lab's tag (the selector the gadgets use) and its role, and removed by id."""

from __future__ import annotations

import shutil
from pathlib import Path

from gadgetbook.labs.podman import LabContainer, busybox_rootfs, remove_all, unique_name
from gadgetbook.labs.scenarios.base import Scenario


class ContainerScenario(Scenario):
    """`container(role, script)` starts one container; `selector` picks them all, `name(role)` names one."""

    def setup(self) -> None:
        self.tag = unique_name(self.lab)
        self.facts["selector"] = f"lab={self.tag}"
        self.facts["containers"] = {}
        self.containers: dict[str, LabContainer] = {}
        self.rootfs = Path(busybox_rootfs())
        self.on_close(lambda: shutil.rmtree(self.rootfs, ignore_errors=True))
        self.on_close(lambda: remove_all(self.containers.values()))  # by id, all in one call
        self.start()

    def start(self) -> None:
        """Start the lab's containers (subclasses)."""

    def file(self, path: str, text: str, mode: int = 0o644) -> Path:
        """A file in the containers' root filesystem (`path` as they see it)."""
        where = self.rootfs / path.lstrip("/")
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(text)
        where.chmod(mode)
        return where

    def container(self, role: str, script: str, labels: dict[str, str] | None = None, **kwargs) -> LabContainer:
        """Start a container running `script` (busybox sh) with labels lab=<tag> and app=<role> (or `labels`);
        removed on close. Keywords go to LabContainer (volumes, env, options, ...)."""
        name = f"{role}-{self.tag.rsplit('-', 1)[1]}"
        c = LabContainer(str(self.rootfs), name, script, {"app": role, **(labels or {}), "lab": self.tag}, **kwargs)
        self.containers[role] = c
        self.facts["containers"][role] = name
        return c

    @property
    def selector(self) -> str:
        return self.facts["selector"]

    def name(self, role: str) -> str:
        """The container of a role (its name in this run, or in the recorded one)."""
        return self.facts["containers"][role]
