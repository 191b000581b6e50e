"""The catalogue's test factories, where they meet what the services write."""

from __future__ import annotations

import re

from marketplace.catalogue.services.listings import listing_reference
from tests.accreditation.builders import make_provider, make_world
from tests.catalogue.factories import make_listing


def test_a_listing_made_by_the_factory_never_takes_a_reference_the_service_gives(app):
    """The browser tests share one database between listings created on the pages (the service
    names each ``SL-`` and its key) and the listings their worlds make with this factory: a
    factory reference shaped like the service's clashed with the next listing created on a page
    (issue 18, P3 then P5 in one run)."""
    world = make_world()
    organisation, _ = make_provider("Hope Housing")
    made = make_listing(world.lot_a, organisation)
    assert re.fullmatch(r"SL-\d{6}", listing_reference(made.id))
    assert not re.fullmatch(r"SL-\d{6}", made.reference), made.reference
