"""After a change, the lab takes the newly rendered files and the proofs hold again.

Each change is imported on top of the generated cluster (the way an operator
applies an edited state file), and the lab is rebuilt from the world after the
change with the files rendered after it. As a control, the same world with
the files rendered *before* the change must fail: the change really matters.
"""

from __future__ import annotations

import pytest

from tests.dataplane import lab as lab_module
from tests.dataplane import proofs, world

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture(scope="module", params=sorted(world.CHANGES))
def change(request, render):
    base = world.generated_state()
    changed = world.CHANGES[request.param](base)
    before, after = render(base, changed)
    return request.param, changed, before, after


def all_proofs(lab) -> list[str]:
    return (proofs.vnic_reach_failures(lab) + proofs.admin_overlay_failures(lab)
            + proofs.path_failures(lab, proofs.path_samples(lab))
            + proofs.encrypted_failures(lab) + proofs.isolation_failures(lab))


def test_the_newly_rendered_files_pass_every_proof(change, lab_host, tmp_path):
    name, doc, _, after = change
    with lab_module.running(name, world.world_from_state(doc), after, tmp_path) as lab:
        assert all_proofs(lab) == []


def test_the_files_rendered_before_the_change_no_longer_do(change, lab_host, tmp_path):
    name, doc, before, _ = change
    with lab_module.running(f"{name}-stale", world.world_from_state(doc), before,
                            tmp_path) as lab:
        assert proofs.vnic_reach_failures(lab) != []
