"""Building API representations of petitions (masked personal data, detection, case status)."""
from __future__ import annotations

from intake_svc.models import Petition
from intake_svc.pii import PiiVault, petitioner_view


def petition_view(petition: Petition, vault: PiiVault, *, reveal: bool = False, existing: bool = False) -> dict:
    out = {column.key: getattr(petition, column.key) for column in Petition.__table__.columns}
    out["petitioners"] = [petitioner_view(vault, p, reveal=reveal) for p in petition.petitioners]
    out["detection"] = {"repeat_of": petition.repeat_of, "repeat_score": petition.repeat_score,
                        "repeat_reasons": petition.repeat_reasons or [], "reflow": petition.reflow,
                        "cross_level": petition.cross_level, "no_longer_accepted": petition.no_longer_accepted,
                        "repeat_of_display_no": petition.repeat_of_display_no}
    out["existing"] = existing
    return out
