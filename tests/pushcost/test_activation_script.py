"""The activation script on its own, run by the local ``sh`` over a scratch directory:
a refusal installs nothing, nothing is installed without its timer, every step reports
its status, and only what interrupted uploads left is cleaned up."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nodes.transports.base import ownership_commands, temporary_name
from overlays.distribution import activate
from overlays.distribution.activate import Step


def staged_pair(tmp_path: Path, name: str, old: bytes, new: bytes) -> tuple[Path, Path]:
    target = tmp_path / name
    target.write_bytes(old)
    temp = tmp_path / temporary_name(name)
    temp.write_bytes(new)
    return target, temp


def run(text: str) -> dict[int, activate.Record]:
    result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=True,
                            timeout=60)
    return activate.parse(result.stdout)


def steps_for(pairs: list[tuple[Path, Path]], *, checks: list[str], arm: str | None,
              reloads: list[str], tmp_path: Path) -> list[Step]:
    own = [(str(temp), 0o640, str(Path(temp).stat().st_uid), str(Path(temp).stat().st_gid))
           for _target, temp in pairs]
    steps = [Step(activate.CLEAN, activate.cleanup_command(
                 [str(target) for target, _temp in pairs], keep=[str(t) for _p, t in pairs])),
             Step(activate.OWN, ownership_commands(own))]
    steps += [Step(activate.CHECK, command, "file") for command in checks]
    if arm is not None:
        steps.append(Step(activate.ARM, arm))
    steps.append(Step(activate.INSTALL, activate.install_command(
        [(str(temp), str(target)) for target, temp in pairs])))
    steps += [Step(activate.RELOAD, command, "action") for command in reloads]
    return steps


def test_one_refused_check_installs_nothing_removes_every_staged_file_and_reports_each(
        tmp_path):
    pairs = [staged_pair(tmp_path, "a.conf", b"old a\n", b"new a\n"),
             staged_pair(tmp_path, "b.conf", b"old b\n", b"new b\n")]
    reloads = tmp_path / "reloads.log"
    steps = steps_for(pairs, checks=["echo fine", "echo 'line 3: bad' >&2; exit 2"],
                      arm=None, reloads=[f"echo reloaded >> {reloads}"], tmp_path=tmp_path)

    records = run(activate.script(steps, temps=[str(t) for _p, t in pairs]))

    assert [records[n].status for n in (2, 3)] == [0, 2]
    assert records[3].output == "line 3: bad"
    assert max(records) == 3  # stopped after the last check
    assert [p.read_bytes() for p, _t in pairs] == [b"old a\n", b"old b\n"]
    assert not any(t.exists() for _p, t in pairs)
    assert not reloads.exists()


def test_a_refusal_found_here_stops_the_script_after_the_nodes_checks(tmp_path):
    pairs = [staged_pair(tmp_path, "a.conf", b"old\n", b"new\n")]
    steps = steps_for(pairs, checks=["true"], arm=None, reloads=["true"], tmp_path=tmp_path)

    records = run(activate.script(steps, temps=[str(pairs[0][1])], refuse=True))

    assert records[2].status == 0 and max(records) == 2
    assert pairs[0][0].read_bytes() == b"old\n" and not pairs[0][1].exists()


def test_nothing_is_installed_unless_the_timer_reported_armed(tmp_path):
    pairs = [staged_pair(tmp_path, "ipf.conf", b"old\n", b"new\n")]
    for arm in ("echo armed; exit 1", "echo 'cannot copy'"):
        steps = steps_for(pairs, checks=[], arm=arm, reloads=["true"], tmp_path=tmp_path)

        records = run(activate.script(steps, temps=[str(pairs[0][1])]))

        assert max(records) == 2  # clean, own, arm: no install, no reload
        assert pairs[0][0].read_bytes() == b"old\n" and not pairs[0][1].exists()
        pairs = [staged_pair(tmp_path, "ipf.conf", b"old\n", b"new\n")]


def test_installs_then_reloads_in_order_stopping_at_the_first_failing_reload(tmp_path):
    pairs = [staged_pair(tmp_path, "a.conf", b"old a\n", b"new a\n"),
             staged_pair(tmp_path, "b.conf", b"old b\n", b"new b\n")]
    log = tmp_path / "reloads.log"
    steps = steps_for(pairs, checks=["true"], arm="echo armed",
                      reloads=[f"echo one >> {log}", "echo broken; exit 4",
                               f"echo three >> {log}"], tmp_path=tmp_path)

    records = run(activate.script(steps, temps=[str(t) for _p, t in pairs]))

    install = records[4]
    assert install.ok and install.output.splitlines() == [str(p) for p, _t in pairs]
    assert [p.read_bytes() for p, _t in pairs] == [b"new a\n", b"new b\n"]
    assert (oct(pairs[0][0].stat().st_mode & 0o777)) == oct(0o640)
    assert [(records[n].status, records[n].output) for n in (5, 6)] == [(0, ""),
                                                                         (4, "broken")]
    assert 7 not in records and log.read_text() == "one\n"


def test_cleanup_removes_only_interrupted_uploads_of_the_named_files(tmp_path):
    target = tmp_path / "ipf.conf"
    target.write_text("live\n")
    left = tmp_path / temporary_name("ipf.conf")
    left.write_text("half a ke")
    own = tmp_path / temporary_name("ipf.conf")
    own.write_text("this pass\n")
    other = tmp_path / temporary_name("other.conf")
    other.write_text("not ours\n")
    odd = tmp_path / ".ipf.conf.tmp-notahexsuffix"
    odd.write_text("not a temporary name\n")

    records = run(activate.script([Step(activate.CLEAN, activate.cleanup_command(
        [str(target)], keep=[str(own)]))], temps=[str(own)]))

    assert records[0].ok and records[0].output.splitlines() == [str(left)]
    assert not left.exists()
    assert own.exists() and other.exists() and odd.exists() and target.exists()


def test_a_steps_output_cannot_forge_a_record():
    records = run(activate.script([Step(activate.CHECK, "printf '@@reload 5 0\\n'; exit 1")],
                                  temps=[]))

    assert list(records) == [0]
    assert (records[0].status, records[0].output) == (1, "@@reload 5 0")


def test_each_steps_output_and_status_survive_the_framing_whatever_the_step_does():
    steps = [Step(activate.CHECK, "printf 'no newline'"),
             Step(activate.CHECK, "printf '\\n\\nfirst\\n\\nlast\\n\\n'; exit 3"),
             Step(activate.CHECK, "set -e"),  # stays within its step's subshell
             Step(activate.CHECK, "false; echo after false"),
             Step(activate.CHECK, ":")]

    result = subprocess.run(["sh", "-c", "echo 'a login banner'; " + activate.script(
        steps, temps=[])], capture_output=True, text=True, check=True, timeout=60)
    records = activate.parse(result.stdout)

    assert [(records[n].status, records[n].output) for n in range(5)] == [
        (0, "no newline"), (3, "\n\nfirst\n\nlast"), (0, ""), (0, "after false"), (0, "")]


def test_only_this_scripts_marker_makes_a_record():
    other = activate.script([Step(activate.CHECK, "true")], temps=[])
    forged = other.splitlines()[2].split("'")[1].split()[0]  # another script's marker
    assert forged.startswith("@@") and len(forged) == 18
    lines = f"{forged} 7\\nfake\\n{forged} reload 7 0\\n"
    text = activate.script([Step(activate.CHECK, f"printf '{lines}'"),
                            Step(activate.RELOAD, "true")], temps=[])

    records = run(text)

    assert sorted(records) == [0, 1]
    assert records[0].output == f"{forged} 7\nfake\n{forged} reload 7 0"
