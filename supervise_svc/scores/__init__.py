"""三率三色 scorecards, the lagging check (工作被动落后), follow-up calls (回访) and reports.

- ``domain``: pure rules (settings, rates, score, ranks, colours, streaks, follow-up sample);
- ``facts``: per case and local month, what the case contributes (kept by the projection's session hook);
- ``aggregate``: the month's counts as one SQL GROUP BY over the month's facts (the former counting over
  the case views and their stage rows kept as the reference);
- ``compute``: compute/recompute a month, the lagging check;
- ``followups``: record a call, the worklist;
- ``reports``: monthly bulletin, quarterly ranking, annual evaluation (JSON and xlsx).
"""
from __future__ import annotations

from supervise_svc.scores.domain import ScoreSettings, load_settings

#: ``runtime.extras`` key of the settings in force (tests may put their own there).
SETTINGS_KEY = "scorecard_settings"


def settings_of(runtime) -> ScoreSettings:
    """The scorecard settings of this runtime (loaded once from ``data/scorecard.yaml``)."""
    current = runtime.extras.get(SETTINGS_KEY)
    if current is None:
        current = runtime.extras[SETTINGS_KEY] = load_settings()
    return current
