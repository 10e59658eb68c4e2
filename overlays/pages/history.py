"""Deployments as people read them: what changed, what ran, how long it took, how it ended.

A ``Deployment`` stores its files and commands as JSON for programs; the pages turn them
into rows of words (uploaded or removed, command and exit status) instead of showing JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodes.models import Deployment, DeploymentResult


@dataclass(frozen=True)
class FileChange:
    path: str
    action: str  # "uploaded" or "removed"
    sha256: str


@dataclass(frozen=True)
class CommandRun:
    command: str
    exit_status: int | None

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def outcome(self) -> str:
        if self.exit_status is None:
            return "not finished"
        return "succeeded" if self.ok else f"failed (exit status {self.exit_status})"


@dataclass(frozen=True)
class DeploymentView:
    deployment: Deployment
    files: tuple[FileChange, ...]
    commands: tuple[CommandRun, ...]

    @property
    def duration(self) -> str:
        """"1.3 s", "2 min 5 s", or "still running"."""
        seconds = self.deployment.duration
        if seconds is None:
            return "still running"
        if seconds < 60:
            return f"{seconds:.1f} s"
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest} s"

    @property
    def failed(self) -> bool:
        return self.deployment.result == DeploymentResult.FAILED

    @property
    def summary(self) -> str:
        """One line: the result and how much it did."""
        d = self.deployment
        if d.result == DeploymentResult.NO_CHANGE:
            return "nothing to change"
        parts = []
        if self.files:
            parts.append(f"{len(self.files)} file{'s' if len(self.files) != 1 else ''} changed")
        if self.commands:
            parts.append(f"{len(self.commands)} command{'s' if len(self.commands) != 1 else ''}"
                         " run")
        what = ", ".join(parts) or "no files changed"
        return f"{d.get_result_display()}: {what}"


def deployment_view(deployment: Deployment) -> DeploymentView:
    """A deployment's JSON columns as rows; unexpected shapes are shown, not dropped."""
    files = []
    for item in deployment.files_changed or []:
        if isinstance(item, dict):
            sha = item.get("sha256")
            files.append(FileChange(path=str(item.get("path", "?")),
                                    action="removed" if sha is None else "uploaded",
                                    sha256=str(sha or "")))
        else:
            files.append(FileChange(path=str(item), action="uploaded", sha256=""))
    commands = []
    for item in deployment.commands or []:
        if isinstance(item, dict):
            status = item.get("exit_status")
            commands.append(CommandRun(command=str(item.get("command", "?")),
                                       exit_status=status if isinstance(status, int) else None))
        else:
            commands.append(CommandRun(command=str(item), exit_status=None))
    return DeploymentView(deployment=deployment, files=tuple(files), commands=tuple(commands))
