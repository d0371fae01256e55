"""Building API representations of petitions (masked personal data, detection, case status)."""
from __future__ import annotations

from collections.abc import Sequence

from intake_svc.models import Petition
from intake_svc.pii import PiiVault, petitioner_view


#: The petition's column names, in table order (computed once).
COLUMNS = tuple(column.key for column in Petition.__table__.columns)


def petition_view(petition: Petition, vault: PiiVault, *, reveal: bool = False, existing: bool = False,
                  plain: Sequence[tuple[str | None, str | None]] = ()) -> dict:
    """``plain``: the petitioners' (identity number, phone) in clear when the caller has them (a
    registration just stored them), so they are masked without decrypting the stored values."""
    out = {key: getattr(petition, key) for key in COLUMNS}
    people = petition.petitioners
    out["petitioners"] = [petitioner_view(vault, p, reveal=reveal,
                                          plain=plain[i] if len(plain) == len(people) else None)
                          for i, p in enumerate(people)]
    out["detection"] = {"repeat_of": petition.repeat_of, "repeat_score": petition.repeat_score,
                        "repeat_reasons": petition.repeat_reasons or [], "reflow": petition.reflow,
                        "cross_level": petition.cross_level, "no_longer_accepted": petition.no_longer_accepted,
                        "repeat_of_display_no": petition.repeat_of_display_no}
    out["existing"] = existing
    return out
