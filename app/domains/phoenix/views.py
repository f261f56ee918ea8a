"""Phoenix's query API: one talent's progress, one coach's weekly activity.

Answers use the published snapshot shape (the ``*_view`` functions), never the raw table state, so the API and
the snapshot topics agree and the per-appointment bookkeeping stays internal.
"""

from app.core.runtime import Runtime, table_query
from app.domains.phoenix.state import (
    COACH_ACTIVITY_TABLE,
    TALENT_PROGRESS_TABLE,
    coach_activity_view,
    talent_progress_view,
)

TALENT_PROGRESS_PATH = "/api/phoenix/talents/{talentId}/progress"
COACH_WEEKS_PATH = "/api/phoenix/coaches/{coachId}/weeks"


def register(runtime: Runtime) -> None:
    table_query(
        runtime,
        TALENT_PROGRESS_PATH,
        "phoenix",
        TALENT_PROGRESS_TABLE,
        "talentId",
        render=talent_progress_view,
    )
    table_query(
        runtime, COACH_WEEKS_PATH, "phoenix", COACH_ACTIVITY_TABLE, "coachId", render=coach_activity_view
    )
