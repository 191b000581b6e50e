"""Further competitions among the members of a lot and its areas: set-up and publishing, the
invited list, clarifications, sealed bids, evaluation and moderation, the award decision with
assessment summaries and standstill, and the award that becomes a call-off (see ``models``)."""
