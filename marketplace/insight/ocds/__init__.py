"""The open-data feed in the Open Contracting Data Standard 1.1.5 (with the lots, techniques,
partyScale, subcontracting and UK extensions): the dynamic market (``market``), call-offs
(``call_offs``) and further competitions (``competitions``) as releases, and the feed itself
(``feed``: pages, records, the bulk file and ``stream_bulk_releases``, the bench's hook)."""
